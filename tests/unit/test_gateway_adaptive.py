"""The adaptive rate wired into the gateway: what each answer does to the token bucket that
paces both paths, at exact instants of a fake clock (no network, no Redis).

Spotify's defaults: rate 10 req/s, burst 20. AIMD defaults (core/adaptive.py): decrease x0.5,
step 0.1 x rate, quiet 2 s, hold 1 s, plateau 0.9 x the refused rate, probe_after 300 s.
"""

from __future__ import annotations

from typing import Any

import pytest
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler

from scrapy_apigw.core.clock import FakeClock
from scrapy_apigw.core.outcome import Outcome
from scrapy_apigw.exceptions import ConfigError
from scrapy_apigw.gateway import Gateway, ProviderState
from scrapy_apigw.settings import GatewaySettings

WALL = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def gateway(clock: FakeClock, providers: dict[str, Any] | None = None) -> Gateway:
    values = {"APIGW_PROVIDERS": providers} if providers else {}
    settings = GatewaySettings.from_settings(Settings(values), environ={})
    return Gateway(get_crawler(), settings, clock=clock, wall=FakeClock(WALL))


def stat(gw: Gateway, state: ProviderState, key: str) -> Any:
    return gw.stats.get_value(f"apigw/{state.name}/{key}")


def test_a_rate_limit_halves_the_buckets_rate_and_burst_at_that_instant() -> None:
    clock = FakeClock(100.0)
    gw = gateway(clock)
    state = gw.states["spotify"]
    assert (state.bucket.rate, state.bucket.burst) == (10.0, 20)
    gw.record_pacing(state, Outcome.RATE_LIMITED, {"retry-after": "1"}, sent_at=99.9)
    assert (state.bucket.rate, state.bucket.burst) == (5.0, 10)
    assert stat(gw, state, "rate/effective") == 5.0
    assert stat(gw, state, "burst/effective") == 10
    assert stat(gw, state, "rate/decreases") == 1
    # The Retry-After pause holds as before; the refill after it is at the lowered rate.
    assert state.bucket.blocked_until == 101.0
    clock.set(101.0)
    assert state.bucket.try_acquire()
    assert state.bucket.time_until() == pytest.approx(0.2)  # 1 / 5 req/s


def test_a_burst_of_rate_limits_sent_before_the_first_answer_is_one_decrease() -> None:
    clock = FakeClock(100.0)
    gw = gateway(clock)
    state = gw.states["spotify"]
    # 20 requests sent back to back at 100.00..100.19; their 429s come back from 100.2 on.
    for n in range(20):
        clock.set(100.2 + n * 0.01)
        gw.record_pacing(state, Outcome.RATE_LIMITED, {}, sent_at=100.0 + n * 0.01)
    assert (state.bucket.rate, state.bucket.burst) == (5.0, 10)
    assert stat(gw, state, "rate/decreases") == 1
    # A request sent after the decrease's hold (100.2 + 1 s) and refused is a new event.
    clock.set(101.5)
    gw.record_pacing(state, Outcome.RATE_LIMITED, {}, sent_at=101.3)
    assert (state.bucket.rate, state.bucket.burst) == (2.5, 5)
    assert stat(gw, state, "rate/decreases") == 2


def test_answers_whose_send_time_is_unknown_are_one_event_within_the_hold() -> None:
    clock = FakeClock(100.0)
    gw = gateway(clock)
    state = gw.states["spotify"]
    gw.record_pacing(state, Outcome.RATE_LIMITED, {})
    clock.set(100.9)
    gw.record_pacing(state, Outcome.RATE_LIMITED, {})
    assert state.bucket.rate == 5.0
    clock.set(101.0)
    gw.record_pacing(state, Outcome.RATE_LIMITED, {})
    assert state.bucket.rate == 2.5


def test_successes_raise_the_rate_one_step_per_quiet_interval_then_the_burst() -> None:
    clock = FakeClock(100.0)
    gw = gateway(clock)
    state = gw.states["spotify"]
    gw.record_pacing(state, Outcome.RATE_LIMITED, {}, sent_at=100.0)
    rates = []
    for t in (101.0, 102.0, 103.0, 104.0, 106.0, 108.0, 110.0, 112.0):
        clock.set(t)
        gw.record_pacing(state, Outcome.SUCCESS, {})
        rates.append(state.bucket.rate)
    # +1 req/s at 102, 104, 106, 108; 9 req/s is the plateau below the refused 10 req/s.
    assert rates == pytest.approx([5.0, 6.0, 6.0, 7.0, 8.0, 9.0, 9.0, 9.0])
    assert state.bucket.burst == 10
    # 300 s without a rate limit: the refused rate is forgotten, the rate climbs to the ceiling,
    # then the burst one token per quiet interval.
    for t in (400.0, 402.0, 404.0):
        clock.set(t)
        gw.record_pacing(state, Outcome.NOT_FOUND, {})
    assert (state.bucket.rate, state.bucket.burst) == (10.0, 12)
    assert stat(gw, state, "rate/effective") == 10.0
    assert stat(gw, state, "burst/effective") == 12


def test_a_refusal_in_or_after_a_burst_drops_the_burst_until_a_later_send_is_answered() -> None:
    clock = FakeClock(100.0)
    gw = gateway(clock)
    state = gw.states["spotify"]  # 10 req/s, burst 20
    for _ in range(3):
        assert state.bucket.try_acquire()  # a burst: 20 / 10 req/s ahead, until 102.0
    assert state.bucket.ahead_until == 102.0
    clock.set(100.2)
    gw.record_pacing(state, Outcome.RATE_LIMITED, {}, sent_at=100.0)
    # The burst was too large: it drops to 1; the rate only steps a 5 % margin below.
    assert (state.bucket.rate, state.bucket.burst) == (9.5, 1)
    assert stat(gw, state, "rate/decreases") == 1
    clock.set(100.6)
    gw.record_pacing(state, Outcome.SUCCESS, {}, sent_at=100.5)  # still sent ahead of pace
    clock.set(101.6)  # after the hold (100.2 + 1 s), the burst not yet absorbed
    gw.record_pacing(state, Outcome.RATE_LIMITED, {}, sent_at=101.5)
    # The burst's again: nothing left to lower (burst 1, the rate at its margin), no event.
    assert (state.bucket.rate, state.bucket.burst) == (9.5, 1)
    assert stat(gw, state, "rate/decreases") == 1
    clock.set(102.1)
    gw.record_pacing(state, Outcome.SUCCESS, {}, sent_at=102.0)  # paced, answered: absorbed
    clock.set(103.1)  # after the hold (101.6 + 1 s): an evenly paced send refused
    gw.record_pacing(state, Outcome.RATE_LIMITED, {}, sent_at=103.0)
    assert (state.bucket.rate, state.bucket.burst) == (4.75, 1)
    assert stat(gw, state, "rate/decreases") == 2


def test_an_evenly_paced_refusal_halves_the_rate_and_holds_it_until_probe_max() -> None:
    clock = FakeClock(100.0)
    gw = gateway(clock)
    state = gw.states["musicbrainz"]  # 1 req/s, burst 1: never ahead of its pace
    assert state.bucket.try_acquire()
    clock.set(100.3)
    gw.record_pacing(state, Outcome.RATE_LIMITED, {}, sent_at=100.0)
    assert (state.bucket.rate, state.bucket.burst) == (0.5, 1)
    rates = []
    for t in (102.3, 104.3, 400.3, 2500.2, 2500.3, 2502.3):
        clock.set(t)
        gw.record_pacing(state, Outcome.SUCCESS, {}, sent_at=t - 0.1)
        rates.append(state.bucket.rate)
    # Held at 0.5 req/s until probe_max (2,400 s) after the refusal (2500.3): no sign that the
    # quota moves. Then one step per quiet 2 s.
    assert rates == pytest.approx([0.5, 0.5, 0.5, 0.5, 0.6, 0.7])


def test_refusals_until_a_request_sent_after_the_decrease_is_answered_are_one_event() -> None:
    clock = FakeClock(100.0)
    gw = gateway(clock)
    state = gw.states["musicbrainz"]  # 1 req/s, burst 1; hold 1 s
    assert state.bucket.try_acquire()
    clock.set(100.3)
    gw.record_pacing(state, Outcome.RATE_LIMITED, {}, sent_at=100.0)
    assert state.bucket.rate == 0.5
    clock.set(103.0)  # sent after the hold, but nothing sent since 100.3 was answered
    gw.record_pacing(state, Outcome.RATE_LIMITED, {}, sent_at=102.9)
    assert (state.bucket.rate, stat(gw, state, "rate/decreases")) == (0.5, 1)
    clock.set(105.0)
    gw.record_pacing(state, Outcome.SUCCESS, {}, sent_at=104.9)
    clock.set(107.0)  # now absorbed: refused at the rate held, a new event
    gw.record_pacing(state, Outcome.RATE_LIMITED, {}, sent_at=106.9)
    assert (state.bucket.rate, stat(gw, state, "rate/decreases")) == (0.25, 2)


def test_server_errors_raise_no_step_and_network_errors_change_nothing() -> None:
    clock = FakeClock(100.0)
    gw = gateway(clock)
    state = gw.states["spotify"]
    gw.record_pacing(state, Outcome.RATE_LIMITED, {}, sent_at=100.0)
    clock.set(102.0)
    for outcome in (Outcome.NETWORK_ERROR, Outcome.SERVER_ERROR, Outcome.MALFORMED):
        gw.record_pacing(state, outcome, {})
        assert state.bucket.rate == 5.0, outcome
    gw.record_pacing(state, Outcome.CLIENT_ERROR, {})  # an answer: the request was refused
    assert state.bucket.rate == 6.0


@pytest.mark.parametrize(
    ("provider", "overrides", "headers", "ceiling"),
    [
        # IETF draft-10: the policy the RateLimit item names: 100 per 60 s -> 99/60 req/s.
        (
            "spotify",
            None,
            {"ratelimit-policy": '"burst";q=100;w=60', "ratelimit": '"burst";r=50;t=30'},
            (99 / 60, 1),
        ),
        # Older drafts: RateLimit-Limit with its quota policy, 10 per 1 s -> 9 req/s.
        ("spotify", None, {"ratelimit-limit": "10, 10;w=1", "ratelimit-remaining": "4"}, (9.0, 1)),
        # X-RateLimit-*: no window announced; the provider's documented one (30 s) is used.
        (
            "spotify",
            {"spotify": {"window_limit": 450, "window": 30}},
            {"x-ratelimit-limit": "120", "x-ratelimit-remaining": "7"},
            (119 / 30, 1),
        ),
        # Discogs: 25 per its 60 s moving window (unauthenticated) -> 24/60 req/s.
        (
            "discogs",
            None,
            {"x-discogs-ratelimit": "25", "x-discogs-ratelimit-remaining": "20"},
            (0.4, 1),
        ),
    ],
)
def test_an_announced_quota_is_the_ceiling_of_every_header_family(
    provider: str, overrides: Any, headers: dict[str, str], ceiling: tuple[float, int]
) -> None:
    gw = gateway(FakeClock(100.0), overrides)
    state = gw.states[provider]
    gw.record_pacing(state, Outcome.SUCCESS, headers)
    assert state.bucket.rate == pytest.approx(ceiling[0])
    assert state.bucket.burst == ceiling[1]
    assert stat(gw, state, "rate/decreases") is None  # an announcement is no congestion event


def test_a_higher_announcement_lets_the_rate_climb_back_to_the_configured_one() -> None:
    clock = FakeClock(100.0)
    gw = gateway(clock)
    state = gw.states["spotify"]
    gw.record_pacing(state, Outcome.SUCCESS, {"ratelimit-policy": '"q";q=51;w=10'})
    assert (state.bucket.rate, state.bucket.burst) == (5.0, 1)
    gw.record_pacing(state, Outcome.SUCCESS, {"ratelimit-policy": '"q";q=1001;w=10'})
    assert state.bucket.rate == 6.0  # one step, the next one a quiet interval later
    clock.set(101.0)
    gw.record_pacing(state, Outcome.SUCCESS, {"ratelimit-policy": '"q";q=1001;w=10'})
    assert state.bucket.rate == 6.0
    clock.set(102.0)
    gw.record_pacing(state, Outcome.SUCCESS, {"ratelimit-policy": '"q";q=1001;w=10'})
    assert state.bucket.rate == 7.0
    assert state.bucket.burst == 1  # a window quota allows no burst on top of its rate


@pytest.mark.parametrize(
    ("headers", "paused_until"),
    [
        # GitHub: the reset is a UTC epoch, 30 s after the wall clock's now.
        ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(WALL) + 30)}, 130.0),
        # ... measured against the response's Date when it has one (a skewed local clock).
        (
            {
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": str(int(WALL) + 30),
                "date": "Wed, 31 Dec 2025 23:59:50 GMT",  # the server is 10 s behind
            },
            140.0,
        ),
        # Others send delta-seconds.
        ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "12"}, 112.0),
        ({"ratelimit": '"q";r=0;t=7', "ratelimit-policy": '"q";q=10;w=60'}, 107.0),
        # Retry-After takes precedence over the reset (draft-10 section 7).
        ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "12", "retry-after": "3"}, 103.0),
    ],
)
def test_a_used_up_quota_pauses_until_its_reset_epoch_or_delta(
    headers: dict[str, str], paused_until: float
) -> None:
    gw = gateway(FakeClock(100.0))
    state = gw.states["spotify"]
    gw.record_pacing(state, Outcome.RATE_LIMITED, headers, sent_at=100.0)
    assert state.bucket.blocked_until == paused_until


def test_remaining_quota_is_no_pause() -> None:
    gw = gateway(FakeClock(100.0))
    state = gw.states["spotify"]
    gw.record_pacing(
        state, Outcome.SUCCESS, {"x-ratelimit-remaining": "1", "x-ratelimit-reset": "12"}
    )
    assert state.bucket.blocked_until <= 100.0


def test_adaptive_off_paces_at_the_configured_values() -> None:
    clock = FakeClock(100.0)
    gw = gateway(clock, {"spotify": {"adaptive": False}})
    state = gw.states["spotify"]
    assert state.adaptive is None
    gw.record_pacing(state, Outcome.RATE_LIMITED, {"ratelimit-policy": '"q";q=51;w=10'})
    assert (state.bucket.rate, state.bucket.burst) == (10.0, 20)
    assert stat(gw, state, "rate/effective") is None


def test_the_adaptive_field_must_be_a_boolean() -> None:
    with pytest.raises(ConfigError, match=r"APIGW_PROVIDERS\[\"spotify\"\]\[\"adaptive\"\]"):
        gateway(FakeClock(), {"spotify": {"adaptive": "sometimes"}})


def test_time_constants_follow_the_sandbox_speed() -> None:
    clock = FakeClock(100.0)
    settings = GatewaySettings.from_settings(
        Settings(
            {
                "APIGW_SANDBOX": True,
                "APIGW_SANDBOX_URL": "http://127.0.0.1:1",
                "APIGW_SANDBOX_SPEED": 10,
            }
        ),
        environ={},
    )
    gw = Gateway(get_crawler(), settings, clock=clock, wall=FakeClock(WALL))
    state = gw.states["musicbrainz"]  # 1 req/s, burst 1, x10
    gw.record_pacing(state, Outcome.RATE_LIMITED, {}, sent_at=100.0)
    assert state.bucket.rate == 5.0
    clock.set(100.2)  # quiet: 2 s / 10
    gw.record_pacing(state, Outcome.SUCCESS, {})
    assert state.bucket.rate == 6.0


def test_a_decrease_seen_in_the_fleets_rate_starts_this_process_recovery_wait() -> None:
    clock = FakeClock(100.0)
    gw = gateway(clock)
    state = gw.states["spotify"]
    clock.set(100.5)
    gw._fleet_rate_seen("spotify", 10.0, 20)  # unchanged: no decrease seen
    assert state.decreased_at == float("-inf")
    gw._fleet_rate_seen("spotify", 5.0, 20)  # another process lowered the fleet's rate
    assert (state.decreased_at, state.bucket.rate) == (100.5, 5.0)
    clock.set(101.0)
    gw._fleet_rate_seen("spotify", 6.0, 20)  # an increase is no decrease
    assert state.decreased_at == 100.5
    gw.reset_limits("spotify")
    assert state.decreased_at == float("-inf")
