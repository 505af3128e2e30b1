"""AIMD adaptive rate at exact fake-clock instants: decrease, congestion events, increase."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from scrapy_apigw.core.adaptive import (
    AdaptiveRate,
    AdaptiveState,
    AimdConfig,
    on_announced,
    on_rate_limited,
    on_success,
    quota_ceiling,
    refused_after_burst,
)
from scrapy_apigw.core.clock import FakeClock

# rate 10 req/s, burst 8; steps of 1 req/s every 2 s; floor 1 req/s; plateau at 0.9 x refused.
CONFIG = AimdConfig(
    rate=10.0,
    burst=8,
    decrease=0.5,
    step=0.1,
    floor=0.1,
    quiet=2.0,
    hold=1.0,
    plateau=0.9,
    probe_after=300.0,
)
PLAIN = AimdConfig(rate=10.0, burst=8, quiet=2.0, hold=1.0, plateau=1.0)  # no plateau


def limited_at(now: float, sent_at: float | None = None, config: AimdConfig = CONFIG) -> Any:
    """The state after one congestion event at *now*, from the initial state."""
    return on_rate_limited(AdaptiveState.initial(config), config, now, sent_at)


def successes(state: AdaptiveState, config: AimdConfig, times: list[float]) -> list[Any]:
    """(rate, burst) after a success at each of *times*, in order."""
    seen = []
    for t in times:
        state = on_success(state, config, t)
        seen.append((state.rate, state.burst))
    return seen


def test_defaults_are_the_documented_constants() -> None:
    config = AimdConfig(rate=10.0, burst=20)
    assert (config.decrease, config.step, config.floor) == (0.5, 0.1, 0.1)
    assert (config.quiet, config.hold, config.plateau, config.probe_after) == (2.0, 1.0, 0.9, 300.0)
    assert (config.min_rate, config.rate_step) == (1.0, 1.0)


def test_initial_state_runs_at_the_configured_rate_and_burst() -> None:
    state = AdaptiveState.initial(CONFIG)
    assert (state.rate, state.burst, state.ceiling_rate, state.ceiling_burst) == (10.0, 8, 10.0, 8)
    assert (state.decreases, state.increases, state.refused_rate) == (0, 0, math.inf)


def test_each_congestion_event_halves_rate_and_burst_down_to_the_floor_and_one() -> None:
    state = AdaptiveState.initial(CONFIG)
    seen = []
    for k in range(6):
        state = on_rate_limited(state, CONFIG, now=10.0 * k)  # 10 s apart: always a new event
        seen.append((state.rate, state.burst))
    assert seen == [(5.0, 4), (2.5, 2), (1.25, 1), (1.0, 1), (1.0, 1), (1.0, 1)]
    assert state.decreases == 6


def test_a_burst_of_429s_sent_before_the_first_answer_is_one_congestion_event() -> None:
    # 8 requests sent at t = 0.0 .. 0.7, all refused, answered 0.5 s later: the first answer
    # (at 0.5) decreases and sets hold_until = 1.5; then one sent at 1.49 and one at 1.5.
    state = AdaptiveState.initial(CONFIG)
    for k in range(8):
        sent = k / 10
        state = on_rate_limited(state, CONFIG, now=sent + 0.5, sent_at=sent)
    assert (state.rate, state.burst, state.decreases) == (5.0, 4, 1)
    assert state.hold_until == 1.5
    state = on_rate_limited(state, CONFIG, now=1.99, sent_at=1.49)
    assert (state.rate, state.decreases) == (5.0, 1)
    state = on_rate_limited(state, CONFIG, now=2.0, sent_at=1.5)
    assert (state.rate, state.burst, state.decreases) == (2.5, 2, 2)


@pytest.mark.parametrize(
    ("sent_at", "now", "decreases", "rate"),
    [
        (4.0, 4.1, 1, 5.0),  # sent before the decrease at 5.0: the same event
        (5.5, 5.6, 1, 5.0),  # sent after it but within the hold (hold_until = 6.0)
        (5.999, 7.0, 1, 5.0),  # answered late, still sent within the hold
        (6.0, 6.1, 2, 2.5),  # sent exactly at hold_until: a new event
        (None, 5.999, 1, 5.0),  # unknown send time counts as sent now: within the hold
        (None, 6.0, 2, 2.5),
    ],
)
def test_second_rate_limit_decreases_again_only_for_requests_sent_from_hold_until(
    sent_at: float | None, now: float, decreases: int, rate: float
) -> None:
    state = limited_at(5.0)  # decrease at 5.0, hold_until 6.0
    state = on_rate_limited(state, CONFIG, now, sent_at)
    assert (state.decreases, state.rate) == (decreases, rate)


@pytest.mark.parametrize("hold", [0.0, 1.0])
def test_hold_zero_leaves_only_the_send_time_rule(hold: float) -> None:
    config = AimdConfig(rate=10.0, burst=8, hold=hold)
    state = on_rate_limited(AdaptiveState.initial(config), config, now=5.0)
    state = on_rate_limited(state, config, now=5.2, sent_at=5.1)
    assert state.decreases == (2 if hold == 0.0 else 1)


def test_increase_steps_once_per_quiet_interval_up_to_the_plateau() -> None:
    state = limited_at(0.0)  # refused at 10 req/s: rate 5, burst 4, plateau 9, next step at 2.0
    assert (state.refused_rate, state.next_increase) == (10.0, 2.0)
    times = [1.999, 2.0, 2.5, 3.999, 4.0, 6.0, 8.0, 10.0, 12.0, 100.0]
    assert successes(state, CONFIG, times) == [
        (5.0, 4),
        (6.0, 4),
        (6.0, 4),
        (6.0, 4),
        (7.0, 4),
        (8.0, 4),
        (9.0, 4),
        (9.0, 4),  # at the plateau 0.9 x 10: held below the refused rate
        (9.0, 4),
        (9.0, 4),
    ]


def test_the_increase_waits_a_full_quiet_interval_after_the_previous_step() -> None:
    state = limited_at(0.0)
    state = on_success(state, CONFIG, 3.0)  # due since 2.0: step at 3.0, next due 5.0
    assert (state.rate, state.next_increase) == (6.0, 5.0)
    assert successes(state, CONFIG, [4.999, 5.0]) == [(6.0, 4), (7.0, 4)]


def test_an_idle_provider_gains_one_step_per_success_not_one_per_quiet_interval() -> None:
    state = limited_at(0.0)
    assert successes(state, CONFIG, [100.0, 100.5, 102.0]) == [(6.0, 4), (6.0, 4), (7.0, 4)]


def test_a_rate_limit_of_the_same_event_still_postpones_the_next_increase() -> None:
    state = limited_at(0.0)  # next step due 2.0
    state = on_rate_limited(state, CONFIG, now=1.5, sent_at=-0.5)  # same event: no decrease
    assert (state.decreases, state.next_increase, state.refused_at) == (1, 3.5, 1.5)
    assert successes(state, CONFIG, [2.0, 3.499, 3.5]) == [(5.0, 4), (5.0, 4), (6.0, 4)]


def test_the_rate_comes_back_before_the_burst_and_both_stop_at_the_configured_values() -> None:
    state = limited_at(0.0, config=PLAIN)  # rate 5, burst 4
    times = [2.0 * k for k in range(1, 12)]
    assert successes(state, PLAIN, times) == [
        (6.0, 4),
        (7.0, 4),
        (8.0, 4),
        (9.0, 4),
        (10.0, 4),
        (10.0, 5),
        (10.0, 6),
        (10.0, 7),
        (10.0, 8),
        (10.0, 8),
        (10.0, 8),
    ]


def test_an_increase_at_a_cap_spends_no_step() -> None:
    state = limited_at(0.0, config=PLAIN)
    for t in [2.0 * k for k in range(1, 10)]:
        state = on_success(state, PLAIN, t)
    assert (state.rate, state.burst, state.increases, state.next_increase) == (10.0, 8, 9, 20.0)
    assert on_success(state, PLAIN, 20.0) is state
    assert on_success(AdaptiveState.initial(PLAIN), PLAIN, 0.0) == AdaptiveState.initial(PLAIN)


@pytest.mark.parametrize(
    ("t", "rate"),
    [(299.999, 9.0), (300.0, 10.0)],
)
def test_the_refused_rate_is_forgotten_probe_after_seconds_after_the_last_rate_limit(
    t: float, rate: float
) -> None:
    state = limited_at(0.0)
    for k in range(1, 6):
        state = on_success(state, CONFIG, 2.0 * k)
    assert state.rate == 9.0
    state = on_success(state, CONFIG, t)
    assert state.rate == rate
    assert state.refused_rate == (math.inf if t >= 300.0 else 10.0)


def test_a_decrease_from_a_lower_rate_lowers_the_plateau_too() -> None:
    state = limited_at(0.0)
    for k in range(1, 6):
        state = on_success(state, CONFIG, 2.0 * k)  # up to 9.0 at 10.0
    state = on_rate_limited(state, CONFIG, now=20.0)  # refused at 9: rate 4.5, plateau 8.1
    assert (state.rate, state.refused_rate) == (4.5, 9.0)
    times = [22.0, 24.0, 26.0, 28.0, 30.0]
    assert [r for r, _ in successes(state, CONFIG, times)] == [5.5, 6.5, 7.5, 8.1, 8.1]


# --- what the refused request's send says: a burst too large, or a rate too high -------------


def test_a_refused_burst_drops_the_burst_to_one_and_takes_the_rate_a_margin_below_once() -> None:
    # Rate 10, burst 8; refused requests of a burst sent at 0.0, answered from 0.5 on.
    state = on_rate_limited(AdaptiveState.initial(CONFIG), CONFIG, 0.5, 0.0, after_burst=True)
    assert (state.rate, state.burst, state.decreases) == (9.5, 1, 1)
    assert (state.refused_rate, state.rate_cap, state.burst_cap) == (10.0, 9.5, 1)
    assert (state.hold_until, state.next_increase) == (1.5, 2.5)
    assert state.probe_wait == 0.0  # a burst refused says nothing of the rate: probe_after
    # Burst 1 and the rate at its margin: nothing left to lower, not a congestion event.
    state = on_rate_limited(state, CONFIG, 1.6, 1.5, after_burst=True)
    assert (state.rate, state.burst, state.decreases) == (9.5, 1, 1)
    assert (state.hold_until, state.next_increase, state.refused_at) == (1.5, 3.6, 1.6)


def test_after_a_refused_burst_nothing_climbs_until_probe_after_then_the_held_rate_is_good() -> (
    None
):
    state = on_rate_limited(AdaptiveState.initial(CONFIG), CONFIG, 0.5, 0.0, after_burst=True)
    assert successes(state, CONFIG, [2.5, 4.5, 100.0, 300.4]) == [(9.5, 1)] * 4
    state = on_success(state, CONFIG, 300.5)  # 300 s after the refusal at 0.5: a probe
    assert (state.rate, state.burst, state.good_rate) == (10.0, 1, 9.5)
    assert (state.refused_rate, state.rate_cap, state.burst_cap) == (math.inf, math.inf, 0)
    assert successes(state, CONFIG, [302.5 + 2 * k for k in range(8)]) == [
        (10.0, 2),
        (10.0, 3),
        (10.0, 4),
        (10.0, 5),
        (10.0, 6),
        (10.0, 7),
        (10.0, 8),
        (10.0, 8),
    ]


def test_a_margin_of_one_leaves_the_rate_of_a_refused_burst_alone() -> None:
    config = AimdConfig(rate=10.0, burst=8, margin=1.0)
    state = on_rate_limited(AdaptiveState.initial(config), config, 0.5, 0.0, after_burst=True)
    assert (state.rate, state.burst, state.refused_rate) == (10.0, 1, 10.0)


def test_an_evenly_paced_refusal_halves_the_rate_only_and_holds_it_until_probe_max() -> None:
    state = on_rate_limited(AdaptiveState.initial(CONFIG), CONFIG, 0.5, 0.4, after_burst=False)
    assert (state.rate, state.burst, state.decreases) == (5.0, 8, 1)
    assert (state.refused_rate, state.rate_cap, state.good_rate) == (10.0, 5.0, 0.0)
    assert (state.probe_wait, state.moved) == (2400.0, 0)
    # No climb toward 0.9 x 10: a rate refused while evenly paced measured the quota below it;
    # with no sign that the quota moves, no blind probe before probe_max (2,400 s).
    assert successes(state, CONFIG, [2.5, 10.0, 300.5, 2400.4]) == [(5.0, 8)] * 4
    assert successes(state, CONFIG, [2400.5, 2401.0, 2402.5]) == [(6.0, 8), (6.0, 8), (7.0, 8)]


def test_once_the_quota_has_moved_an_evenly_paced_refusal_is_probed_after_probe_after() -> None:
    state = replace(AdaptiveState.initial(CONFIG), moved=1)
    state = on_rate_limited(state, CONFIG, 0.5, 0.4, after_burst=False)
    assert (state.rate, state.probe_wait, state.moved) == (5.0, 0.0, 1)
    assert successes(state, CONFIG, [300.4, 300.5]) == [(5.0, 8), (6.0, 8)]


def test_a_good_rate_refused_shows_the_quota_moves() -> None:
    # Held at 5 until the blind probe at 2400.5 (the good rate 5), the probe refused: back to 5.
    state = on_rate_limited(AdaptiveState.initial(CONFIG), CONFIG, 0.5, 0.4, after_burst=False)
    state = on_success(state, CONFIG, 2400.5)
    state = on_rate_limited(state, CONFIG, 2401.0, 2400.9, after_burst=False)
    assert (state.rate, state.good_rate, state.probe_wait, state.moved) == (5.0, 5.0, 2400.0, 0)
    # 5 itself refused 5 s later, not at its edge: the provider lowered its quota.
    state = on_rate_limited(state, CONFIG, 2406.0, 2405.9, after_burst=False)
    assert (state.rate, state.good_rate, state.probe_wait, state.moved) == (2.5, 0.0, 0.0, 1)
    assert successes(state, CONFIG, [2705.9, 2706.0]) == [(2.5, 8), (3.5, 8)]


def test_a_refused_probe_returns_to_the_good_rate_and_holds_there() -> None:
    state = replace(AdaptiveState.initial(CONFIG), moved=1)  # a quota seen to move
    state = on_rate_limited(state, CONFIG, 0.5, 0.4, after_burst=False)
    for t in (300.5, 302.5):
        state = on_success(state, CONFIG, t)
    assert (state.rate, state.good_rate) == (7.0, 5.0)
    state = on_rate_limited(state, CONFIG, 303.0, 302.9, after_burst=False)
    assert (state.rate, state.rate_cap, state.good_rate, state.refused_rate) == (5.0, 5.0, 5.0, 7.0)
    assert state.decreases == 2
    assert state.probe_wait == 600.0  # the next probe waits twice as long
    assert state.hold_until == 305.0  # a hold of one quiet interval: the probe's excess
    state = on_rate_limited(state, CONFIG, 304.9, 304.8, after_burst=False)
    assert (state.rate, state.decreases) == (5.0, 2)
    # The probe 600 s after the last rate limit (304.9, of the same event).
    assert successes(state, CONFIG, [305.0, 904.8]) == [(5.0, 8), (5.0, 8)]
    assert successes(state, CONFIG, [904.9]) == [(6.0, 8)]


def test_each_refused_probe_doubles_the_wait_before_the_next_up_to_probe_max() -> None:
    config = AimdConfig(rate=10.0, burst=8, probe_after=300.0, probe_max=1000.0)
    state = replace(AdaptiveState.initial(config), moved=1)  # a quota seen to move
    state = on_rate_limited(state, config, 0.5, 0.4, after_burst=False)
    assert (state.rate, state.probe_wait) == (5.0, 0.0)
    refused = 0.5
    for wait in (600.0, 1000.0, 1000.0):
        previous = state.probe_wait or 300.0
        assert on_success(state, config, refused + previous - 0.001).rate == 5.0
        state = on_success(state, config, refused + previous)  # the probe: one step up
        assert (state.rate, state.good_rate) == (6.0, 5.0)
        refused = refused + previous + 0.5
        state = on_rate_limited(state, config, refused, refused - 0.1, after_burst=False)
        assert (state.rate, state.probe_wait) == (5.0, wait)
    # The good rate itself refused: halved, and the wait back to probe_after.
    state = on_rate_limited(state, config, refused + 5.0, refused + 4.9, after_burst=False)
    assert (state.rate, state.good_rate, state.probe_wait) == (2.5, 0.0, 0.0)


@pytest.mark.parametrize(
    ("now", "rate", "decreases"),
    [
        (10.499, 2.5, 2),  # 9.999 s after the decrease: held not long enough, halved
        (10.5, 4.75, 2),  # held steady 10 s: its edge, only 5 % lower
        (200.0, 4.75, 2),
    ],
)
def test_a_rate_held_steady_and_refused_goes_only_a_margin_lower(
    now: float, rate: float, decreases: int
) -> None:
    state = on_rate_limited(AdaptiveState.initial(CONFIG), CONFIG, 0.5, 0.4, after_burst=False)
    state = on_rate_limited(state, CONFIG, now, now - 0.1, after_burst=False)
    assert (state.rate, state.rate_cap, state.decreases) == (rate, rate, decreases)
    # Still held at the new rate until probe_after.
    assert successes(state, CONFIG, [now + 2.0, now + 299.0]) == [(rate, 8), (rate, 8)]


def test_a_refused_burst_then_a_steady_rate_refused_at_its_edge() -> None:
    # A 10 per second window: the burst halves, the rate goes to 9.5; 7 s later an evenly
    # paced send is refused (a stalled sender catching up): 9.025, not 4.75.
    state = on_rate_limited(AdaptiveState.initial(CONFIG), CONFIG, 0.5, 0.0, after_burst=True)
    state = on_rate_limited(state, CONFIG, 10.5, 10.4, after_burst=False)
    assert (state.rate, state.burst, state.decreases) == (9.025, 1, 2)
    # The edge keeps the wait before the next probe (probe_after: the burst's refusal).
    assert (state.probe_wait, state.moved) == (0.0, 0)


def test_an_edge_refusal_keeps_a_backed_off_probe_wait() -> None:
    state = replace(AdaptiveState.initial(CONFIG), moved=1)
    state = on_rate_limited(state, CONFIG, 0.5, 0.4, after_burst=False)  # 5, held
    state = on_success(state, CONFIG, 300.5)  # the probe: 6, good rate 5
    state = on_rate_limited(state, CONFIG, 301.0, 300.9, after_burst=False)  # back to 5
    assert (state.rate, state.probe_wait) == (5.0, 600.0)
    state = on_rate_limited(state, CONFIG, 400.0, 399.9, after_burst=False)  # 5 at its edge
    assert (state.rate, state.good_rate, state.probe_wait, state.moved) == (4.75, 5.0, 600.0, 1)


def test_a_refused_good_rate_is_halved_and_forgotten() -> None:
    # The provider lowered its quota: the rate held probe_after s is refused at that rate.
    state = replace(AdaptiveState.initial(CONFIG), moved=1)
    state = on_rate_limited(state, CONFIG, 0.5, 0.4, after_burst=False)
    state = on_success(state, CONFIG, 300.5)
    state = on_rate_limited(state, CONFIG, 303.0, 302.9, after_burst=False)  # probe: back to 5
    state = on_rate_limited(state, CONFIG, 306.0, 305.9, after_burst=False)  # 5 itself refused
    assert (state.rate, state.rate_cap, state.good_rate, state.decreases) == (2.5, 2.5, 0.0, 3)


def test_refusals_before_the_decrease_is_absorbed_are_the_same_event_whenever_sent() -> None:
    # Back at the good rate after a refused probe, MusicBrainz still refuses paced sends until
    # the backlog of the refused ones drains: sent after the hold, but nothing sent since the
    # decrease has been answered yet.
    state = replace(AdaptiveState.initial(CONFIG), moved=1)
    state = on_rate_limited(state, CONFIG, 0.5, 0.4, after_burst=False)
    state = on_success(state, CONFIG, 300.5)
    state = on_rate_limited(state, CONFIG, 303.0, 302.9, after_burst=False)  # probe: back to 5
    assert (state.rate, state.hold_until, state.decreases) == (5.0, 305.0, 2)
    state = on_rate_limited(state, CONFIG, 306.0, 305.9, after_burst=False, recovered=False)
    assert (state.rate, state.good_rate, state.decreases) == (5.0, 5.0, 2)
    assert (state.refused_at, state.next_increase) == (306.0, 308.0)
    state = on_rate_limited(state, CONFIG, 307.0, 306.9, after_burst=False, recovered=True)
    assert (state.rate, state.good_rate, state.decreases) == (2.5, 0.0, 3)


def test_unknown_send_leaves_the_plain_rules() -> None:
    initial = AdaptiveState.initial(CONFIG)
    assert on_rate_limited(initial, CONFIG, 0.5, 0.4, after_burst=None) == on_rate_limited(
        initial, CONFIG, 0.5, 0.4
    )
    state = on_rate_limited(initial, CONFIG, 0.5, 0.4)
    assert (state.rate, state.burst, state.rate_cap, state.burst_cap) == (5.0, 4, math.inf, 0)


@pytest.mark.parametrize(
    ("sent_at", "ahead_until", "answered_sent_at", "expected"),
    [
        (5.0, -math.inf, 4.0, False),  # the bucket never sent ahead of its pace
        (5.0, -math.inf, -math.inf, False),
        (0.99, 1.0, -math.inf, True),  # sent while ahead (in the burst)
        (0.5, 1.0, 3.0, True),  # sent while ahead, answered late
        (2.0, 1.0, -math.inf, True),  # paced after the burst, nothing answered since
        (2.0, 1.0, 0.99, True),  # the last answered request was sent while ahead
        (2.0, 1.0, 1.0, False),  # a request sent from ahead_until on was answered: absorbed
        (1.0, 1.0, 1.5, False),
    ],
)
def test_a_refusal_is_the_bursts_until_a_request_sent_after_it_is_answered(
    sent_at: float, ahead_until: float, answered_sent_at: float, expected: bool
) -> None:
    assert refused_after_burst(sent_at, ahead_until, answered_sent_at) is expected


def test_an_announced_quota_lowers_the_ceiling_and_the_effective_values_at_once() -> None:
    state = on_announced(AdaptiveState.initial(CONFIG), CONFIG, rate=4.0, burst=1)
    assert (state.rate, state.burst, state.ceiling_rate, state.ceiling_burst) == (4.0, 1, 4.0, 1)
    assert state.decreases == 0  # not a congestion event
    assert successes(state, CONFIG, [0.0, 2.0, 10.0]) == [(4.0, 1)] * 3


def test_an_announced_quota_above_the_configured_values_changes_nothing() -> None:
    initial = AdaptiveState.initial(CONFIG)
    assert on_announced(initial, CONFIG, rate=50.0, burst=100) == initial


def test_a_higher_announcement_lets_the_rate_climb_back_additively() -> None:
    state = on_announced(AdaptiveState.initial(CONFIG), CONFIG, rate=4.0, burst=1)
    state = on_announced(state, CONFIG, rate=7.5, burst=3)
    assert (state.rate, state.burst, state.ceiling_rate, state.ceiling_burst) == (4.0, 1, 7.5, 3)
    assert successes(state, CONFIG, [0.0, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0]) == [
        (5.0, 1),
        (5.0, 1),
        (6.0, 1),
        (7.0, 1),
        (7.5, 1),
        (7.5, 2),
        (7.5, 3),
        (7.5, 3),
    ]


def test_a_higher_announcement_forgets_a_held_refused_rate_and_the_quota_moves() -> None:
    state = on_announced(AdaptiveState.initial(CONFIG), CONFIG, rate=6.0, burst=2)
    state = on_rate_limited(state, CONFIG, 0.5, 0.4, after_burst=False)  # 6 refused: held at 3
    assert (state.rate, state.rate_cap, state.probe_wait) == (3.0, 3.0, 2400.0)
    # The same announcement again (on every answer) is no news: still held.
    state = on_announced(state, CONFIG, rate=6.0, burst=2)
    assert (state.rate_cap, state.refused_rate, state.probe_wait, state.moved) == (
        3.0,
        6.0,
        2400.0,
        0,
    )
    # The provider announces more room (9 req/s): no blind probe needed, the climb goes on.
    state = on_announced(state, CONFIG, rate=9.0, burst=2)
    assert (state.rate_cap, state.refused_rate, state.probe_wait, state.moved) == (
        math.inf,
        math.inf,
        0.0,
        1,
    )
    assert (state.rate, state.ceiling_rate) == (3.0, 9.0)
    assert successes(state, CONFIG, [2.5, 4.5]) == [(4.0, 2), (5.0, 2)]


def test_an_announcement_not_above_the_held_rate_keeps_the_hold() -> None:
    state = on_announced(AdaptiveState.initial(CONFIG), CONFIG, rate=2.0, burst=1)
    state = on_rate_limited(state, CONFIG, 0.5, 0.4, after_burst=False)  # 2 refused: held at 1
    state = on_announced(state, CONFIG, rate=1.0, burst=1)  # lower: not room
    state = on_announced(state, CONFIG, rate=1.0, burst=1)
    assert (state.rate, state.rate_cap, state.probe_wait, state.moved) == (1.0, 1.0, 2400.0, 0)


def test_an_announced_ceiling_below_the_floor_wins_over_the_floor() -> None:
    state = on_announced(AdaptiveState.initial(CONFIG), CONFIG, rate=0.5, burst=1)
    state = on_rate_limited(state, CONFIG, now=0.0)
    assert (state.rate, state.burst, state.decreases) == (0.5, 1, 1)


@pytest.mark.parametrize(
    ("rate", "burst"),
    [(0.0, 1), (-1.0, 1), (math.nan, 1), (math.inf, 1), (5.0, 0)],
)
def test_invalid_announcements_are_ignored(rate: float, burst: int) -> None:
    initial = AdaptiveState.initial(CONFIG)
    assert on_announced(initial, CONFIG, rate, burst) == initial


@pytest.mark.parametrize(
    ("limit", "window", "expected"),
    [
        (60, 60.0, (59 / 60, 1)),  # Discogs authenticated: one request of margin
        (25, 60.0, (0.4, 1)),  # Discogs unauthenticated
        (100, 10.0, (9.9, 1)),
        (2, 1.0, (1.0, 1)),
        (1, 1.0, (1.0, 1)),
        (1, 30.0, (1 / 30, 1)),
    ],
)
def test_quota_ceiling_of_a_window_quota(
    limit: int, window: float, expected: tuple[float, int]
) -> None:
    assert quota_ceiling(limit, window) == expected


@pytest.mark.parametrize(("limit", "window"), [(0, 60.0), (10, 0.0), (10, math.inf), (10, -1.0)])
def test_quota_ceiling_rejects_invalid_quotas(limit: int, window: float) -> None:
    with pytest.raises(ValueError):
        quota_ceiling(limit, window)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rate": 0.0}, "rate"),
        ({"rate": math.inf}, "rate"),
        ({"burst": 0}, "burst"),
        ({"decrease": 1.0}, "decrease"),
        ({"decrease": 0.0}, "decrease"),
        ({"step": 0.0}, "step"),
        ({"floor": 1.5}, "floor"),
        ({"plateau": 0.0}, "plateau"),
        ({"quiet": 0.0}, "quiet"),
        ({"probe_after": math.nan}, "probe_after"),
        ({"hold": -1.0}, "hold"),
        ({"margin": 0.0}, "margin"),
        ({"probe_backoff": 0.5}, "probe_backoff"),
        ({"probe_max": 100.0}, "probe_max"),
        ({"steady": 0.0}, "steady"),
        ({"margin": 1.5}, "margin"),
    ],
)
def test_config_rejects_values_out_of_range_naming_the_field(
    changes: dict[str, Any], message: str
) -> None:
    values: dict[str, Any] = {"rate": 10.0, "burst": 8, **changes}
    with pytest.raises(ValueError, match=message):
        AimdConfig(**values)


def test_controller_reads_its_clock_and_reports_what_changed() -> None:
    clock = FakeClock(100.0)
    controller = AdaptiveRate(CONFIG, clock)
    assert (controller.rate, controller.burst) == (10.0, 8)
    assert controller.rate_limited(sent_at=99.9) is True
    assert controller.rate_limited(sent_at=99.95) is False  # same congestion event
    assert (controller.rate, controller.burst) == (5.0, 4)
    clock.set(101.999)
    assert controller.success() is False
    clock.set(102.0)
    assert controller.success() is True
    assert controller.rate == 6.0
    assert controller.announced(rate=59 / 60, burst=1) is True
    assert (controller.rate, controller.burst) == (59 / 60, 1)
    assert controller.announced(rate=59 / 60, burst=1) is False
    assert controller.state.ceiling_rate == 59 / 60


def test_controller_passes_how_the_refused_request_was_sent() -> None:
    clock = FakeClock(100.0)
    controller = AdaptiveRate(CONFIG, clock)
    assert controller.rate_limited(sent_at=99.9, after_burst=True) is True
    assert (controller.rate, controller.burst) == (9.5, 1)
    clock.set(102.0)
    assert controller.rate_limited(sent_at=101.9, after_burst=False) is True
    assert (controller.rate, controller.burst) == (4.75, 1)
