"""The gateway's pacing and retry decisions, shared by both paths (fake clock, no network)."""

import pytest
import pytest_twisted
from scrapy.settings import Settings
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from scrapy_apigw.core.clock import FakeClock
from scrapy_apigw.core.outcome import Outcome
from scrapy_apigw.gateway import Gateway
from scrapy_apigw.settings import GatewaySettings


def gateway(clock=None):
    crawler = get_crawler()
    settings = GatewaySettings.from_settings(Settings({}), environ={})
    return Gateway(crawler, settings, clock=clock or FakeClock(100.0))


@pytest.mark.parametrize(
    "outcome, retry_after, expected",
    [
        (Outcome.RATE_LIMITED, 7.0, 7.0),  # the hint, on both paths
        (Outcome.SERVER_ERROR, 120.0, 120.0),  # a 503 "back in 2 minutes" too
        (Outcome.RATE_LIMITED, None, 0.0),  # its backoff pause already holds the provider
        (Outcome.RATE_LIMITED, 86400.0, None),  # over max_retry_after (600 s): give up
    ],
)
def test_retry_delay_is_one_rule_for_both_paths(outcome, retry_after, expected):
    gw = gateway()
    assert gw.retry_delay(gw.states["spotify"], outcome, 1, retry_after) == expected


def test_retry_delay_without_a_hint_is_the_jittered_backoff():
    gw = gateway()
    delays = [
        gw.retry_delay(gw.states["spotify"], Outcome.SERVER_ERROR, 3, None) for _ in range(50)
    ]
    assert all(4 * 0.8 <= d <= 4 * 1.2 for d in delays)


@pytest.mark.parametrize("outcome", [Outcome.RATE_LIMITED, Outcome.SERVER_ERROR])
def test_any_retry_after_on_a_retryable_answer_pauses_the_whole_provider(outcome):
    clock = FakeClock(100.0)
    gw = gateway(clock)
    state = gw.states["musicbrainz"]
    hint = gw.record_pacing(state, outcome, {"retry-after": "30"})
    assert hint == 30.0
    assert state.bucket.blocked_until == 130.0


def test_a_retry_after_on_a_refused_request_is_no_pause():
    clock = FakeClock(100.0)
    gw = gateway(clock)
    state = gw.states["musicbrainz"]
    gw.record_pacing(state, Outcome.CLIENT_ERROR, {"retry-after": "30"})
    assert state.bucket.blocked_until <= 100.0


def test_discogs_quota_header_sets_the_window_below_the_announced_limit():
    gw = gateway()
    state = gw.states["discogs"]
    assert state.window.limit == 59
    gw.record_pacing(
        state, Outcome.SUCCESS, {"x-discogs-ratelimit": "25", "x-discogs-ratelimit-remaining": "20"}
    )
    assert state.window.limit == 24
    gw.record_pacing(state, Outcome.SUCCESS, {"x-discogs-ratelimit-remaining": "5"})
    assert state.window.limit == 24  # no limit announced: kept


def test_providers_buckets_credit_no_lateness_by_default():
    # Off: with shared limits, a credited local release let 3 requests of a 3-process fleet
    # into one 0.1 s window at rate 10 / burst 1 (tests/integration/test_fleet_crawl.py, 3 of 5
    # runs); the floor provider (Discogs, a window quota) never had it.
    gw = gateway()
    credits = {name: state.bucket.late_credit for name, state in gw.states.items()}
    assert set(credits.values()) == {0.0}


@pytest_twisted.ensureDeferred
async def test_the_pacers_lateness_goes_to_the_stats_at_close():
    gw = gateway()
    late = gw.states["discogs"].pacer.lateness
    for seconds in (0.004, 0.0, 0.0306):
        late.add(seconds)
    await gw.close()
    stats = gw.stats.get_stats()
    assert stats["apigw/discogs/pacer/timed_releases"] == 3
    assert stats["apigw/discogs/pacer/late_ms"] == 35  # 34.6 ms, rounded
    assert stats["apigw/discogs/pacer/late_max_ms"] == 31
    assert "apigw/spotify/pacer/timed_releases" not in stats  # no timed release there


def test_counts_reach_the_crawls_stats_even_after_they_are_replaced():
    gw = gateway()
    gw.inc("spotify/cache/hit")
    gw.inc("spotify/cache/hit", 2)
    assert gw.stats.get_value("apigw/spotify/cache/hit") == 3
    gw.stats.set_stats({"other": 1})  # a new dict: counting goes on in it
    gw.inc("spotify/cache/hit")
    assert gw.stats.get_stats() == {"other": 1, "apigw/spotify/cache/hit": 1}


class CountingStats(MemoryStatsCollector):
    """A stats collector of a project's own: its inc_value must be the one called."""

    def inc_value(self, key, count=1, start=0, spider=None):
        super().inc_value(key, count * 10, start)


def test_a_stats_collector_of_its_own_counts_its_own_way():
    crawler = get_crawler(settings_dict={"STATS_CLASS": CountingStats})
    settings = GatewaySettings.from_settings(Settings({}), environ={})
    gw = Gateway(crawler, settings, clock=FakeClock(100.0))
    gw.inc("discogs/requests")
    assert crawler.stats.get_value("apigw/discogs/requests") == 10
