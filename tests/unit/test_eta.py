"""The ETA arithmetic and its formatting: known values, no clock."""

import math

import pytest

from scrapy_apigw.ops.eta import (
    calls_per_item,
    crawl_eta,
    format_duration,
    format_rate,
    provider_eta,
    queued_calls,
)


def test_the_issue_example_412_calls_at_1_per_second_take_6_min_52_s():
    eta = provider_eta(412, 1.0)
    assert eta == 412.0
    assert format_duration(eta) == "6 min 52 s"


def test_calls_per_item_is_the_average_of_the_finished_items_and_1_before_any():
    assert calls_per_item(0, 0) == 1.0
    assert calls_per_item(30, 20) == 1.5
    assert calls_per_item(0, 7) == 0.0  # every item was a cache hit
    # Early in a crawl: 415 items at Spotify and 23 through it made 480 requests: 1.1 per
    # item that got there (over the 23 alone it would be 20.9).
    assert calls_per_item(480, 23, 415) == pytest.approx(480 / 438)
    assert calls_per_item(10, 0, 5) == 2.0


def test_queued_calls_count_the_pacer_queue_the_items_ahead_and_the_rest_of_those_at_it():
    # 3 waiting now, 10 items still to come at 1.5 calls each, 5 items here with half a call left
    assert queued_calls(3, 10, 5, 1.5) == 3 + 15 + 2.5
    # one call per item: the items here are all in the pacer queue (or in flight) already
    assert queued_calls(12, 4, 12, 1.0) == 16
    # fewer than one call per item (cache hits, batches): nothing more for the items here
    assert queued_calls(2, 10, 3, 0.25) == 2 + 2.5


def test_tokens_in_the_bucket_go_at_once_and_a_pause_comes_first():
    assert provider_eta(10, 5.0, tokens=1.0) == pytest.approx(1.8)
    assert provider_eta(10, 2.0, tokens=1.0, paused_for=3.0) == pytest.approx(7.5)
    assert provider_eta(2, 1.0, tokens=5.0) == 0.0
    assert provider_eta(0, 1.0, paused_for=30.0) == 0.0  # nothing queued: nothing to wait for


@pytest.mark.parametrize(
    "args",
    [(1, 0.0), (1, -1.0), (1, math.inf), (1, math.nan), (-1, 1.0), (1, 1.0, -1.0)],
)
def test_provider_eta_refuses_nonsense(args):
    with pytest.raises(ValueError):
        provider_eta(*args)


def test_negative_counts_are_refused():
    with pytest.raises(ValueError):
        queued_calls(-1, 0, 0, 1.0)
    with pytest.raises(ValueError):
        calls_per_item(-1, 2)


def test_the_crawl_eta_is_the_slowest_provider():
    assert crawl_eta([12.0, 412.0, 3.0]) == 412.0
    assert crawl_eta([]) == 0.0


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "0.0 s"),
        (0.44, "0.4 s"),
        (9.9, "9.9 s"),
        (9.96, "10 s"),
        (42.4, "42 s"),
        (59.6, "1 min 0 s"),
        (412, "6 min 52 s"),
        (3599.6, "1 h 00 min"),
        (7500, "2 h 05 min"),
        (90061, "25 h 01 min"),
    ],
)
def test_durations_read_naturally(seconds, text):
    assert format_duration(seconds) == text


def test_a_negative_duration_is_refused():
    with pytest.raises(ValueError):
        format_duration(-1)


@pytest.mark.parametrize(
    "rate, text", [(1.0, "1.0"), (0.5, "0.5"), (12.3, "12"), (100, "100"), (0.05, "0.05")]
)
def test_rates_read_naturally(rate, text):
    assert format_rate(rate) == text
