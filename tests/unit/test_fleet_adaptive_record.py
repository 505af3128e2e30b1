"""The fleet's adaptive record (fleet/adaptive.py): every AIMD field as text and back."""

from __future__ import annotations

import math
from dataclasses import replace

from scrapy_apigw.core.adaptive import AdaptiveState, AimdConfig, on_rate_limited
from scrapy_apigw.fleet.adaptive import state_fields, state_from_fields

CONFIG = AimdConfig(rate=10.0, burst=8)


def test_the_caps_and_the_good_rate_round_trip_exactly() -> None:
    state = on_rate_limited(AdaptiveState.initial(CONFIG), CONFIG, 0.5, 0.0, after_burst=True)
    fields = state_fields(state)
    assert (fields["rate_cap"], fields["burst_cap"], fields["good_rate"]) == ("9.5", "1", "0.0")
    assert fields["refused_rate"] == "10.0"
    assert state_from_fields(fields, CONFIG) == state


def test_the_moved_flag_round_trips_and_an_old_record_reads_it_unset() -> None:
    state = replace(AdaptiveState.initial(CONFIG), moved=1, probe_wait=2400.0)
    fields = state_fields(state)
    assert (fields["moved"], fields["probe_wait"]) == ("1", "2400.0")
    assert state_from_fields(fields, CONFIG) == state
    assert state_from_fields({"rate": "5.0"}, CONFIG).moved == 0


def test_a_record_without_the_new_fields_reads_them_as_unset() -> None:
    # A record written before the caps existed (an older process of the fleet).
    old = {"rate": "5.0", "burst": "4", "refused_rate": "10.0", "refused_at": "3.0"}
    state = state_from_fields(old, CONFIG)
    assert (state.rate, state.burst, state.refused_rate) == (5.0, 4, 10.0)
    assert (state.rate_cap, state.burst_cap, state.good_rate) == (math.inf, 0, 0.0)


def test_a_good_rate_above_this_process_configured_rate_is_capped() -> None:
    fields = state_fields(AdaptiveState.initial(AimdConfig(rate=20.0, burst=8)))
    fields["good_rate"] = "15.0"
    assert state_from_fields(fields, CONFIG).good_rate == 10.0
