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


def test_merged_histograms_answer_the_percentiles_of_all_their_durations() -> None:
    # Two processes: 60 round trips of 0.5 ms and one of 3.4 ms; 40 of 0.8 ms.
    first, second, fleet = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    for _ in range(60):
        first.add(0.000500)
    first.add(0.003456)
    for _ in range(40):
        second.add(0.000800)
    fleet.merge(first.buckets(), first.max_us)
    # As JSON carries them: string keys.
    fleet.merge({str(k): v for k, v in second.buckets().items()}, second.max_us)
    assert fleet.count == 101
    assert fleet.percentile(50) == 500
    assert fleet.percentile(99) == 800  # the 100th shortest of 101
    assert fleet.percentile(100) == 3400
    assert fleet.max_us == 3456
    assert first.buckets() == {500: 60, 3400: 1}  # a copy: merging did not change it


def test_a_negative_bucket_or_count_is_refused() -> None:
    histogram = LatencyHistogram()
    with pytest.raises(ValueError, match="bucket"):
        histogram.merge({"-5": 1})
    with pytest.raises(ValueError, match="bucket"):
        histogram.merge({5: -1})
    assert histogram.count == 0
