"""The latency histogram: buckets of two significant digits, nearest-rank percentiles."""

from __future__ import annotations

import pytest

from scrapy_apigw.core.latency import LatencyHistogram


def test_percentiles_are_nearest_rank_in_two_digit_buckets() -> None:
    histogram = LatencyHistogram()
    # 98 round trips of 0.25 ms, one of 1.234 ms, one of 7.89 ms.
    for _ in range(98):
        histogram.add(0.000250)
    histogram.add(0.001234)
    histogram.add(0.007890)
    assert histogram.count == 100
    assert histogram.percentile(50) == 250
    assert histogram.percentile(98) == 250
    assert histogram.percentile(99) == 1200  # the 99th shortest, 1234 µs, in its bucket
    assert histogram.percentile(100) == 7800
    assert histogram.max_us == 7890


def test_short_durations_keep_microsecond_steps_and_negative_counts_as_zero() -> None:
    histogram = LatencyHistogram()
    for seconds in (0.000042, 0.000099, -0.001):
        histogram.add(seconds)
    assert [histogram.percentile(q) for q in (1, 50, 100)] == [0, 42, 99]


def test_an_empty_histogram_answers_zero_and_a_bad_percentile_is_refused() -> None:
    histogram = LatencyHistogram()
    assert (histogram.count, histogram.percentile(99), histogram.max_us) == (0, 0, 0)
    with pytest.raises(ValueError, match="percentile"):
        histogram.percentile(0)
    with pytest.raises(ValueError, match="percentile"):
        histogram.percentile(101)


def test_many_durations_take_a_few_hundred_buckets() -> None:
    histogram = LatencyHistogram()
    for n in range(200_000):
        histogram.add(n * 5e-8)  # 0 to 10 ms in 0.05 µs steps
    assert histogram.count == 200_000
    assert len(histogram._counts) <= 300
    assert histogram.percentile(50) == 5000
