"""Rate-limit models with an injected clock: exact numbers at exact instants."""

from __future__ import annotations

import pytest

from scrapy_apigw.sandbox.limits import Decision, Gcra, SlidingWindow, retry_after_header


def test_sliding_window_admits_limit_per_window() -> None:
    window = SlidingWindow(10.0)
    assert [window.acquire(t, 3).allowed for t in (0.0, 1.0, 2.0)] == [True, True, True]
    refused = window.acquire(3.0, 3)
    assert not refused.allowed and refused.retry_after == pytest.approx(7.0)
    assert (refused.used, refused.remaining) == (3, 0)
    assert not window.acquire(9.99, 3).allowed  # rejected requests are not counted
    fresh = window.acquire(10.0, 3)  # the arrival at 0.0 has left the window
    assert fresh.allowed and fresh.used == 3
    assert window.used(12.5) == 1  # 1.0 and 2.0 left, 10.0 stays


def test_sliding_window_quota_per_request() -> None:
    window = SlidingWindow(60.0)
    for t in range(25):
        assert window.acquire(float(t) / 10, 25).allowed
    assert not window.acquire(3.0, 25).allowed  # unauthenticated quota exhausted
    allowed = window.acquire(3.0, 60)  # an authenticated request still fits
    assert allowed.allowed and (allowed.used, allowed.remaining) == (26, 34)
    assert window.peek(3.0, 60) == Decision(True, limit=60, used=26)
    window.reset()
    assert window.used(3.0) == 0


def test_gcra_burst_then_rate() -> None:
    bucket = Gcra(rate=1.0, burst=3)
    assert [bucket.acquire(0.0).allowed for _ in range(3)] == [True] * 3
    refused = bucket.acquire(0.0)
    assert not refused.allowed and refused.retry_after == pytest.approx(1.0)
    assert not bucket.acquire(0.99).allowed
    assert bucket.acquire(1.0).allowed
    assert not bucket.acquire(1.0).allowed
    assert bucket.acquire(2.0).allowed
    bucket.reset()
    assert all(bucket.acquire(2.0).allowed for _ in range(3))


def test_gcra_scaled_rate() -> None:
    bucket = Gcra(rate=125.0, burst=25)  # Last.fm at speed 25
    assert sum(bucket.acquire(0.0).allowed for _ in range(40)) == 25
    assert sum(bucket.acquire(0.1).allowed for _ in range(40)) == 12  # 12.5 tokens refilled


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError):
        SlidingWindow(0)
    with pytest.raises(ValueError):
        Gcra(0, 1)
    with pytest.raises(ValueError):
        Gcra(1, 0)


@pytest.mark.parametrize(("wait", "header"), [(0.0, "1"), (0.2, "1"), (1.0, "1"), (2.01, "3")])
def test_retry_after_header_rounds_up(wait: float, header: str) -> None:
    assert retry_after_header(wait) == header


def test_gcra_counting_refused_requests_refuses_a_client_until_its_rate_falls() -> None:
    bucket = Gcra(rate=1.0, burst=3, count_refused=True, max_backlog=10)
    assert [bucket.acquire(0.0).allowed for _ in range(4)] == [True] * 3 + [False]
    assert not bucket.acquire(1.0).allowed  # the refused one at 0.0 counted
    assert not bucket.acquire(2.0).allowed  # and so did this one at 1.0
    assert bucket.acquire(4.0).allowed  # quiet for 2 s: the rate fell below 1/s
    lenient = Gcra(rate=1.0, burst=3)
    assert [lenient.acquire(0.0).allowed for _ in range(4)] == [True] * 3 + [False]
    assert lenient.acquire(1.0).allowed  # without counting, refused requests were free


def test_gcra_backlog_of_refused_requests_is_capped() -> None:
    storm = Gcra(rate=1.0, burst=3, count_refused=True, max_backlog=10)
    assert sum(storm.acquire(0.0).allowed for _ in range(100)) == 3
    probe = Gcra(rate=1.0, burst=3, count_refused=True, max_backlog=10)
    for _ in range(100):
        probe.acquire(0.0)
    assert not probe.acquire(10.9).allowed  # 97 refused, but only 10 s of them remembered
    assert storm.acquire(11.0).allowed
