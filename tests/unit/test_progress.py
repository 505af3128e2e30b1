"""The progress snapshot reads a real gateway's pacer queues and the items in flight."""

import pytest
import pytest_twisted
from scrapy.settings import Settings
from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.test import get_crawler
from twisted.internet.task import Clock

from scrapy_apigw.core.clock import FakeClock
from scrapy_apigw.gateway import Gateway
from scrapy_apigw.ops.progress import Progress, ProviderProgress, take_snapshot
from scrapy_apigw.settings import GatewaySettings


class InFlight:
    """The two things the snapshot asks of the pipeline."""

    def __init__(self, providers, in_flight):
        self.providers = providers
        self._in_flight = [frozenset(f) for f in in_flight]

    def in_flight(self):
        return list(self._in_flight)


def gateway(clock):
    crawler = get_crawler()
    crawler.stats.open_spider()
    settings = GatewaySettings.from_settings(Settings({}), environ={})
    return Gateway(crawler, settings, clock=clock, reactor=Clock())


def test_the_issue_example_line():
    mb = ProviderProgress("musicbrainz", waiting=412, ahead=0, at=0, per_item=1.0, rate=1.0)
    assert mb.describe() == "musicbrainz: 412 queued at 1.0/s, ETA 6 min 52 s"
    idle = ProviderProgress("spotify", waiting=0, ahead=0, at=3, per_item=0.5, rate=10.0)
    line = Progress(120, 88, (idle, mb)).line()
    assert line == (
        "apigw: progress: 120 items enriched, 88 in the pipeline; spotify: 0 queued at 10/s; "
        "musicbrainz: 412 queued at 1.0/s, ETA 6 min 52 s; "
        "ETA 6 min 52 s for the items scraped so far"
    )


def test_nothing_queued_gives_no_eta():
    idle = ProviderProgress("spotify", waiting=0, ahead=0, at=0, per_item=1.0, rate=10.0)
    assert Progress(5, 0, (idle,)).line() == (
        "apigw: progress: 5 items enriched, 0 in the pipeline; spotify: 0 queued at 10/s"
    )


def test_snapshot_counts_the_pacer_queue_and_the_items_ahead_of_and_at_each_provider():
    clock = FakeClock(100.0)
    gw = gateway(clock)
    mb = gw.states["musicbrainz"]  # 1 req/s, burst 1
    turns = [mb.pacer.turn() for _ in range(5)]
    assert turns[0].called and not any(t.called for t in turns[1:])  # 1 token, 4 wait
    stats = gw.stats
    stats.set_value("apigw/musicbrainz/requests", 6)
    stats.set_value("apigw/musicbrainz/results/ok", 2)
    stats.set_value("apigw/items/completed", 4)
    stats.set_value("apigw/items/skipped", 1)
    pipeline = InFlight(
        ("spotify", "musicbrainz", "discogs"),
        [set(), {"spotify"}, {"spotify"}, {"spotify", "musicbrainz"}],
    )
    progress = take_snapshot(gw, pipeline, stats)  # type: ignore[arg-type]
    assert (progress.done, progress.in_pipeline) == (5, 4)
    assert [p.name for p in progress.providers] == ["spotify", "musicbrainz", "discogs"]
    by_name = {p.name: p for p in progress.providers}
    got = by_name["musicbrainz"]
    # 1 item ahead, 2 here, 1 past it; 6 requests made by the 3 items through it and the 2
    # here: 1.2 per item
    assert (got.waiting, got.ahead, got.at, got.per_item) == (4, 1, 2, 1.2)
    assert got.queued == pytest.approx(4 + 1 * 1.2 + 2 * 0.2)
    assert got.rate == 1.0 and got.tokens == 0.0
    assert got.eta == pytest.approx(5.6)
    assert (by_name["discogs"].ahead, by_name["discogs"].at) == (3, 1)
    assert by_name["spotify"].at == 1
    assert "musicbrainz: 6 queued at 1.0/s, ETA 5.6 s" in progress.line()


def test_a_pause_and_an_open_circuit_are_said_and_the_pause_counts_in_the_eta():
    clock = FakeClock(100.0)
    gw = gateway(clock)
    mb = gw.states["musicbrainz"]
    turns = [mb.pacer.turn() for _ in range(3)]
    gw.pause(mb, 30.0, "Retry-After: 30")
    progress = take_snapshot(gw, None, gw.stats)
    got = {p.name: p for p in progress.providers}["musicbrainz"]
    assert got.waiting == 2 and got.paused_for == 30.0
    assert got.eta == 30.0 + (2 - 1) / 1.0  # one token when the pause ends
    assert got.describe() == "musicbrainz: 2 queued at 1.0/s, ETA 31 s (paused 30 s)"
    for _ in range(mb.config.failure_threshold):
        mb.breaker.record_failure()
    got = {p.name: p for p in take_snapshot(gw, None, gw.stats).providers}["musicbrainz"]
    assert got.describe().endswith("(circuit open)")
    assert turns  # kept alive until here


def test_a_window_quota_lowers_the_rate_to_its_average():
    clock = FakeClock(100.0)
    gw = gateway(clock)
    discogs = gw.states["discogs"]
    assert discogs.window is not None
    window_rate = discogs.window.limit / discogs.window.window
    got = {p.name: p for p in take_snapshot(gw, None, gw.stats).providers}["discogs"]
    assert got.rate == min(discogs.bucket.rate, window_rate)
    assert got.rate < discogs.bucket.rate  # 59 per 60 s below its 1 req/s bucket


async def settle():
    """A few turns of the real reactor, so tasks just created reach their first wait."""
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    for _ in range(3):
        await deferLater(reactor, 0)


@pytest_twisted.ensureDeferred
async def test_retries_sleeping_before_their_turn_count_as_waiting():
    reactor = Clock()
    gw = Gateway(
        get_crawler(),
        GatewaySettings.from_settings(Settings({}), environ={}),
        clock=reactor.seconds,
        reactor=reactor,
    )
    mb = gw.states["musicbrainz"]
    sleeping = [deferred_from_coro(gw.sleep(mb, 5.0)) for _ in range(2)]
    queued = [deferred_from_coro(gw.acquire(mb)) for _ in range(3)]  # 1 token: 2 wait
    await settle()
    got = {p.name: p for p in take_snapshot(gw, None, gw.stats).providers}["musicbrainz"]
    assert (mb.waits.sleeping, mb.pacer.queued) == (2, 2)
    assert got.waiting == 4
    reactor.advance(5.0)  # the sleeps end; the pacer released one more
    for d in [*sleeping, queued[0], queued[1]]:
        await d
    got = {p.name: p for p in take_snapshot(gw, None, gw.stats).providers}["musicbrainz"]
    assert (mb.waits.sleeping, got.waiting) == (0, 1)
    reactor.advance(1.0)
    await queued[2]
    assert {p.name: p for p in take_snapshot(gw, None, gw.stats).providers}[
        "musicbrainz"
    ].waiting == 0
