"""The gateway treats a provider that keeps rate limiting as unavailable, on both paths.

Fake clock for the bucket and the rule, Twisted's ``task.Clock`` as the reactor of the pacer and
the retry sleeps: exact instants, no sleeping.
"""

from __future__ import annotations

import logging

import pytest
import pytest_twisted
from scrapy.settings import Settings
from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.test import get_crawler
from twisted.internet.task import Clock, deferLater

from scrapy_apigw.core.outcome import Outcome
from scrapy_apigw.exceptions import CircuitOpenError, RateLimitedError
from scrapy_apigw.gateway import Gateway
from scrapy_apigw.settings import GatewaySettings


def gateway(providers=None):
    reactor = Clock()
    reactor.advance(100.0)
    crawler = get_crawler()
    settings = GatewaySettings.from_settings(
        Settings({"APIGW_PROVIDERS": providers or {}}), environ={}
    )
    gw = Gateway(crawler, settings, clock=reactor.seconds, reactor=reactor)
    return gw, reactor, crawler.stats


async def settle():
    """Let the tasks just created run up to their first wait: a few turns of the real reactor
    (this test runs as a Twisted coroutine; no time passes on the fake clocks)."""
    from twisted.internet import reactor

    for _ in range(3):
        await deferLater(reactor, 0)


def refused(gw, state, retry_after="20"):
    """One rate-limited answer as both paths record it; returns the retry delay."""
    hint = gw.record_pacing(state, Outcome.RATE_LIMITED, {"retry-after": retry_after})
    return gw.retry_delay(state, Outcome.RATE_LIMITED, 1, hint)


def test_after_the_streak_calls_fail_at_once_until_the_hint_has_passed(caplog):
    gw, reactor, stats = gateway({"spotify": {"max_rate_limit_streak": 3}})
    state = gw.states["spotify"]
    caplog.set_level(logging.WARNING, "scrapy_apigw.gateway")
    assert refused(gw, state) == 20.0  # t=100
    reactor.advance(20)
    assert refused(gw, state) == 20.0  # t=120
    reactor.advance(20)
    assert refused(gw, state) is None  # t=140: the third refused pause in a row
    with pytest.raises(RateLimitedError) as error:
        gw.fail_fast(state)
    assert error.value.reason == "rate limited (unavailable for 20 s)"
    assert error.value.retry_in == 20.0
    with pytest.raises(RateLimitedError):
        gw.check_circuit(state)
    assert stats.get_value("apigw/spotify/rate_limit/unavailable") == 1
    assert stats.get_value("apigw/spotify/rate_limit/rejected") == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "apigw: spotify is treated as unavailable for 20.0 s (3 rate-limited answers in a row): "
        "its calls fail at once and items move on without it"
    ]
    reactor.advance(19.999)
    with pytest.raises(RateLimitedError):
        gw.fail_fast(state)
    reactor.advance(0.001)  # t=160: the hint has passed
    gw.fail_fast(state)
    gw.check_circuit(state)
    # One more refusal puts it straight back, for its own hint.
    assert refused(gw, state, "5") is None
    with pytest.raises(RateLimitedError) as error:
        gw.fail_fast(state)
    assert error.value.retry_in == 5.0
    assert stats.get_value("apigw/spotify/rate_limit/unavailable") == 2


def test_a_success_ends_the_streak():
    gw, reactor, _ = gateway({"spotify": {"max_rate_limit_streak": 2, "max_rate_limit_wait": 0}})
    state = gw.states["spotify"]
    for _ in range(5):
        assert refused(gw, state) == 20.0
        reactor.advance(20)
        gw.record_pacing(state, Outcome.SUCCESS, {})
    gw.fail_fast(state)


def test_the_total_wait_rule_without_retry_after_uses_the_backoff_pauses():
    # No hint: pauses are the backoff of the streak (1, 2, 4... s, jitter 0 here).
    gw, reactor, _ = gateway(
        {"spotify": {"max_rate_limit_streak": 0, "max_rate_limit_wait": 7, "jitter": 0}}
    )
    state = gw.states["spotify"]
    for pause in (1.0, 2.0):
        gw.record_pacing(state, Outcome.RATE_LIMITED, {})
        assert state.bucket.blocked_until == reactor.seconds() + pause
        reactor.advance(pause)
        gw.fail_fast(state)
    gw.record_pacing(state, Outcome.RATE_LIMITED, {})  # 1 + 2 + 4 = 7 s in a row
    with pytest.raises(RateLimitedError) as error:
        gw.fail_fast(state)
    assert error.value.retry_in == 4.0


def test_a_retry_after_over_max_retry_after_makes_it_unavailable_at_once():
    gw, _, stats = gateway()
    state = gw.states["spotify"]
    assert refused(gw, state, "86400") is None
    with pytest.raises(RateLimitedError) as error:
        gw.fail_fast(state)
    assert error.value.retry_in == 86400.0
    assert stats.get_value("apigw/spotify/rate_limit/unavailable") == 1


def test_the_breaker_is_still_checked_after_the_rate_limit_rule():
    gw, _, _ = gateway({"discogs": {"failure_threshold": 1}})
    state = gw.states["discogs"]
    gw.record_breaker(state, Outcome.SERVER_ERROR)
    with pytest.raises(CircuitOpenError):
        gw.fail_fast(state)


@pytest_twisted.ensureDeferred
async def test_waiting_calls_fail_the_moment_the_provider_becomes_unavailable():
    gw, reactor, stats = gateway({"spotify": {"max_rate_limit_streak": 1}})
    state = gw.states["spotify"]
    gw.pause(state, 30.0, "test")  # callers queue behind a pause
    queued = [deferred_from_coro(gw.acquire(state)) for _ in range(3)]
    sleeping = deferred_from_coro(gw.sleep(state, 10.0))  # a retry's backoff
    await settle()
    assert not any(d.called for d in queued) and not sleeping.called
    assert len(state.waits) == 4
    refused(gw, state, "40")  # t=100: unavailable until 140
    errors = []
    for d in [*queued, sleeping]:
        d.addErrback(lambda f: errors.append(f.trap(RateLimitedError)))
        await d
    assert errors == [RateLimitedError] * 4
    assert len(state.waits) == 0
    # No timer is left: neither the sleep's nor the pacer's (armed for the pause's end).
    assert reactor.getDelayedCalls() == []
    assert stats.get_value("apigw/spotify/requests") is None
    assert stats.get_value("apigw/spotify/rate_limit/rejected") == 4
    assert len(state.pacer._queue) == 0
