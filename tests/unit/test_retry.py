"""Retry policy (backoff spread, Retry-After precedence, decisions) and Retry-After parsing."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Iterator
from typing import Any

import pytest

from scrapy_apigw.core.outcome import Outcome
from scrapy_apigw.core.retry import RetryPolicy, parse_retry_after

# --- backoff ---------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5, 6, 7, 8])
def test_backoff_samples_stay_within_jitter_band_and_average_to_the_capped_doubling(
    attempt: int,
) -> None:
    policy = RetryPolicy(backoff_base=1.0, backoff_cap=60.0, jitter=0.2, rng=random.Random(attempt))
    center = min(2.0 ** (attempt - 1), 60.0)
    samples = [policy.backoff(attempt) for _ in range(10_000)]
    assert all(0.8 * center <= s <= 1.2 * center for s in samples)
    assert statistics.fmean(samples) == pytest.approx(center, rel=0.01)
    # The jitter really spreads both ways across the whole band.
    assert min(samples) < 0.81 * center and max(samples) > 1.19 * center


def test_backoff_applies_the_cap_before_the_jitter_so_it_may_exceed_the_cap() -> None:
    policy = RetryPolicy(backoff_cap=60.0, jitter=0.2, rng=random.Random(7))
    samples = [policy.backoff(7) for _ in range(1000)]  # 2**6 = 64, capped to 60
    assert 60.0 < max(samples) <= 72.0
    assert 48.0 <= min(samples) < 60.0


@pytest.mark.parametrize(
    ("base", "cap", "expected"),
    [
        (1.0, 60.0, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]),
        (0.5, 5.0, [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0]),
        (0.0, 60.0, [0.0] * 8),
    ],
)
def test_backoff_without_jitter_doubles_from_base_up_to_cap(
    base: float, cap: float, expected: list[float]
) -> None:
    policy = RetryPolicy(backoff_base=base, backoff_cap=cap, jitter=0.0)
    assert [policy.backoff(n) for n in range(1, 9)] == expected


def test_backoff_of_a_huge_attempt_is_the_cap_not_an_overflow() -> None:
    assert RetryPolicy(jitter=0.0).backoff(100_000) == 60.0


@pytest.mark.parametrize("hint", [0.0, 7.0, 45.5, 120.0, 86_400.0])
def test_delay_is_exactly_the_retry_after_hint_never_jittered_nor_capped(hint: float) -> None:
    policy = RetryPolicy(backoff_cap=60.0, jitter=0.2, rng=random.Random(1))
    assert {policy.delay(n, retry_after=hint) for n in range(1, 6) for _ in range(200)} == {hint}


def test_delay_without_a_hint_is_the_backoff() -> None:
    policy = RetryPolicy(rng=random.Random(42))
    twin = RetryPolicy(rng=random.Random(42))
    assert [policy.delay(n) for n in range(1, 9)] == [twin.backoff(n) for n in range(1, 9)]


RETRYABLE = {Outcome.RATE_LIMITED, Outcome.SERVER_ERROR, Outcome.NETWORK_ERROR, Outcome.MALFORMED}


@pytest.mark.parametrize("outcome", list(Outcome))
def test_should_retry_only_retryable_outcomes_up_to_max_retries(outcome: Outcome) -> None:
    policy = RetryPolicy(max_retries=2)
    expected = outcome in RETRYABLE
    assert [policy.should_retry(outcome, n) for n in (1, 2, 3, 10)] == [
        expected,
        expected,
        False,
        False,
    ]


def test_zero_max_retries_never_retries() -> None:
    policy = RetryPolicy(max_retries=0)
    assert not policy.should_retry(Outcome.SERVER_ERROR, 1)


@pytest.mark.parametrize(
    "call",
    [
        lambda: RetryPolicy(max_retries=-1),
        lambda: RetryPolicy(backoff_base=-1.0),
        lambda: RetryPolicy(backoff_cap=-1.0),
        lambda: RetryPolicy(backoff_cap=float("inf")),
        lambda: RetryPolicy(jitter=1.0),
        lambda: RetryPolicy(jitter=-0.1),
        lambda: RetryPolicy().backoff(0),
        lambda: RetryPolicy().delay(0, retry_after=5.0),
        lambda: RetryPolicy().should_retry(Outcome.SERVER_ERROR, 0),
    ],
)
def test_invalid_retry_arguments_raise_value_error(call: Any) -> None:
    with pytest.raises(ValueError):
        call()


# --- Retry-After -----------------------------------------------------------------------------

# Sun, 06 Nov 1994 08:49:37 GMT (the RFC 9110 example date) as epoch seconds.
T0 = 784_111_777.0
DATE = "Sun, 06 Nov 1994 08:49:37 GMT"


@pytest.mark.parametrize(
    ("value", "now", "date", "expected"),
    [
        ("7", T0, None, 7.0),
        (" 7 ", T0, None, 7.0),
        (b"120", T0, None, 120.0),
        ("0", T0, None, 0.0),
        # IMF-fixdate 30 s after the server's Date; the local clock is an hour off.
        ("Sun, 06 Nov 1994 08:50:07 GMT", T0 + 3600.0, DATE, 30.0),
        ("Sun, 06 Nov 1994 08:50:07 GMT", T0 - 3600.0, b"Sun, 06 Nov 1994 08:49:37 GMT", 30.0),
        # Without a Date header, measured against now.
        ("Sun, 06 Nov 1994 08:50:07 GMT", T0, None, 30.0),
        # A malformed Date header is ignored: measured against now.
        ("Sun, 06 Nov 1994 08:50:07 GMT", T0 + 10.0, "yesterday", 20.0),
        # Obsolete forms recipients must accept (RFC 9110 §5.6.7).
        ("Sunday, 06-Nov-94 08:50:07 GMT", T0, None, 30.0),
        ("Sun Nov  6 08:50:07 1994", T0, None, 30.0),
        ("Sun Nov  6 08:50:07 1994", T0 + 999.0, DATE, 30.0),
        # A date in the past: go now.
        ("Sun, 06 Nov 1994 08:49:07 GMT", T0, None, 0.0),
        ("Sun, 06 Nov 1994 08:49:07 GMT", T0 - 3600.0, DATE, 0.0),
        # Malformed or absent: None (the caller falls back to its backoff).
        ("soon", T0, None, None),
        ("-5", T0, None, None),
        ("", T0, None, None),
        ("   ", T0, None, None),
        (None, T0, DATE, None),
        ("7.5", T0, None, None),
        ("+7", T0, None, None),
        ("1e3", T0, None, None),
        ("7 7", T0, None, None),
        ("9" * 400, T0, None, None),
    ],
)
def test_parse_retry_after_table(
    value: str | bytes | None, now: float, date: str | bytes | None, expected: float | None
) -> None:
    assert parse_retry_after(value, now, date) == expected


@pytest.fixture
def new_york_local_time() -> Iterator[None]:
    """Run with a local zone 5 hours off UTC, restoring the original zone afterwards."""
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset is POSIX only")
    mp = pytest.MonkeyPatch()
    mp.setenv("TZ", "EST+5")
    time.tzset()
    try:
        yield
    finally:
        mp.undo()
        time.tzset()


@pytest.mark.usefixtures("new_york_local_time")
def test_zoneless_asctime_dates_are_read_as_utc_not_local_time() -> None:
    assert time.localtime(0).tm_hour == 19  # the zone change took effect
    assert parse_retry_after("Sun Nov  6 08:50:07 1994", T0) == 30.0
