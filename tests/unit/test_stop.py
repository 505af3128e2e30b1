"""The graceful stop: the engine-close hook, the gateway's stopping state, the item run.

Twisted's ``task.Clock`` drives every timer: exact instants, no sleeping.
"""

from __future__ import annotations

import logging

import pytest
import pytest_twisted
from scrapy.settings import Settings
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from scrapy.utils.test import get_crawler
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater

from scrapy_apigw.closing import watch_engine_close
from scrapy_apigw.enrichment.run import INTERRUPTED, ItemRun, item_timeout_reason
from scrapy_apigw.enrichment.waterfall import Waterfall
from scrapy_apigw.exceptions import Interrupted
from scrapy_apigw.gateway import Gateway
from scrapy_apigw.providers.base import ApiAnswer, ApiCall, ProviderResult, TrackContext
from scrapy_apigw.settings import GatewaySettings


async def settle():
    """A few turns of the real reactor, so tasks just created reach their first wait."""
    from twisted.internet import reactor

    for _ in range(3):
        await deferLater(reactor, 0)


# -- the engine-close hook ----------------------------------------------------------------------


class Engine:
    def __init__(self):
        self.closed_with = []

    async def close_spider_async(self, *, reason="cancelled"):
        self.closed_with.append(reason)


class Crawler:
    def __init__(self, engine):
        self.engine = engine


@pytest_twisted.ensureDeferred
async def test_the_hook_runs_before_the_engine_closes_and_only_once_per_engine():
    engine = Engine()
    seen = []
    assert watch_engine_close(
        Crawler(engine), lambda reason: seen.append((reason, engine.closed_with[:]))
    )
    assert watch_engine_close(Crawler(engine), seen.append)  # idempotent: not wrapped twice
    await deferred_from_coro(engine.close_spider_async(reason="shutdown"))
    assert seen == [("shutdown", [])]  # told before the engine did anything
    assert engine.closed_with == ["shutdown"]


@pytest_twisted.ensureDeferred
async def test_an_error_in_the_hook_never_prevents_the_close(caplog):
    engine = Engine()

    def broken(reason):
        raise RuntimeError("boom")

    watch_engine_close(Crawler(engine), broken)
    await deferred_from_coro(engine.close_spider_async(reason="closespider_itemcount"))
    assert engine.closed_with == ["closespider_itemcount"]
    assert "error while starting the graceful stop" in caplog.text


def test_an_engine_without_a_known_close_method_is_reported_once(caplog):
    assert not watch_engine_close(Crawler(object()), lambda reason: None)
    assert "cannot see when the engine starts closing" in caplog.text


# -- the gateway's stopping state ---------------------------------------------------------------


def gateway(**settings):
    reactor = Clock()
    reactor.advance(50.0)
    crawler = get_crawler()
    parsed = GatewaySettings.from_settings(Settings(settings), environ={})
    return Gateway(crawler, parsed, clock=reactor.seconds, reactor=reactor), reactor


@pytest_twisted.ensureDeferred
async def test_stopping_cuts_every_wait_and_refuses_new_calls_on_both_paths(caplog):
    gw, reactor = gateway(APIGW_SHUTDOWN_TIMEOUT=3)
    told = []
    gw.on_stop(lambda: told.append(reactor.seconds()))
    mb, discogs = gw.states["musicbrainz"], gw.states["discogs"]
    gw.pause(mb, 20.0, "test")
    waiting = [deferred_from_coro(gw.acquire(mb)), deferred_from_coro(gw.sleep(discogs, 30.0))]
    await settle()
    assert not any(d.called for d in waiting)
    caplog.set_level(logging.INFO, "scrapy_apigw.gateway")
    gw.stop("shutdown")
    gw.stop("shutdown")  # idempotent
    errors = []
    for d in waiting:
        d.addErrback(lambda f: errors.append(f.trap(Interrupted)))
        await d
    assert errors == [Interrupted, Interrupted]
    assert reactor.getDelayedCalls() == []  # the sleep's and the pacer's timers are gone
    assert told == [50.0]
    assert "spider closing (shutdown): 2 provider wait(s) cut short" in caplog.text
    for call in (gw.fail_fast, gw.check_circuit):
        with pytest.raises(Interrupted) as error:
            call(mb)
        assert error.value.reason == "interrupted"
    assert gw.stop_remaining() == 3.0
    reactor.advance(2.5)
    assert gw.stop_remaining() == 0.5
    reactor.advance(1.0)
    assert gw.stop_remaining() == 0.0


@pytest_twisted.ensureDeferred
async def test_after_the_stop_began_only_cache_hits_answer_and_nothing_is_sent(tmp_path):
    from scrapy_apigw.cache import open_cache
    from scrapy_apigw.transport import Transport

    gw, _ = gateway()
    cache = await deferred_from_coro(open_cache(None, tmp_path / "cache.sqlite3"))
    transport = Transport(gw, cache)
    cached = ApiCall("musicbrainz", "isrc", "/isrc/GBAAA9900303")
    await deferred_from_coro(cache.put(cached, ApiAnswer("ok", 200, {"recordings": []}), 3600))
    gw.stop("closespider_itemcount")
    try:
        answer = await deferred_from_coro(transport.fetch(cached))
        assert (answer.kind, answer.data, answer.from_cache) == ("ok", {"recordings": []}, True)
        with pytest.raises(Interrupted) as error:
            await deferred_from_coro(
                transport.fetch(ApiCall("musicbrainz", "isrc", "/isrc/USRC17607839"))
            )
        assert error.value.reason == "interrupted"
        assert transport._client is None  # no HTTP client was ever needed
    finally:
        await deferred_from_coro(cache.close())


# -- one item's run -----------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_run_ended_by_its_deadline_keeps_its_results_and_cancels_the_work():
    reactor = Clock()
    run = ItemRun(reactor)
    never: Deferred[None] = Deferred()
    cancelled = []
    never.addErrback(lambda f: cancelled.append(f.type.__name__))

    async def work():
        run.results["spotify"] = ProviderResult("ok", {"bpm": 120.0})
        await maybe_deferred_to_future(never)  # a call that never answers
        run.results["musicbrainz"] = ProviderResult("ok")

    run.end_after(30.0, item_timeout_reason(30))
    run.end_after(60.0, INTERRUPTED)  # a later deadline does not matter
    pending = deferred_from_coro(run.run(work()))
    await settle()
    reactor.advance(29.999)
    assert not pending.called
    reactor.advance(0.001)
    results = await pending
    assert results == {"spotify": ProviderResult("ok", {"bpm": 120.0})}
    assert run.reason == "item timeout (30 s)"
    await settle()
    assert cancelled == ["CancelledError"]
    assert reactor.getDelayedCalls() == []
    with pytest.raises(Interrupted) as error:
        run.check("musicbrainz")
    assert error.value.reason == "item timeout (30 s)"


@pytest_twisted.ensureDeferred
async def test_a_run_that_finishes_first_leaves_no_timer():
    reactor = Clock()
    run = ItemRun(reactor)
    run.end_after(600.0, item_timeout_reason(600))

    async def work():
        run.results["spotify"] = ProviderResult("not_found")

    assert await deferred_from_coro(run.run(work())) == {"spotify": ProviderResult("not_found")}
    assert run.reason is None and reactor.getDelayedCalls() == []
    run.end(INTERRUPTED)  # too late: no effect
    assert run.reason is None
    run.check("spotify")


# -- the waterfall's verdict on an ended run ---------------------------------------------------


class Client:
    def __init__(self, name, result):
        self.name, self.result, self.calls = name, result, 0

    async def enrich(self, track, fetch):
        self.calls += 1
        return self.result

    def classify(self, status, data):
        raise AssertionError


def test_unfinished_providers_are_failed_with_the_reason_and_the_rest_is_kept():
    clients = [Client("spotify", None), Client("musicbrainz", None), Client("lastfm", None)]
    waterfall = Waterfall(clients, fetch=None)
    results = {"spotify": ProviderResult("ok", {"bpm": 120.0, "isrc": "GBAAA9900303"})}
    verdict = waterfall.verdict(results, INTERRUPTED)
    assert verdict.status == "partial"
    assert verdict.fields == {"bpm": 120.0, "isrc": "GBAAA9900303"}
    assert verdict.item_fields()["enrichment_errors"] == {
        "musicbrainz": "interrupted",
        "lastfm": "interrupted",
    }
    assert waterfall.verdict({}, item_timeout_reason(2)).status == "failed"


@pytest_twisted.ensureDeferred
async def test_no_provider_is_asked_once_the_run_has_ended():
    first, second = Client("spotify", ProviderResult("ok")), Client("lastfm", ProviderResult("ok"))
    run = ItemRun(Clock())
    run.end(INTERRUPTED)
    enrichment = await Waterfall([first, second], fetch=None).enrich(
        TrackContext(artist="a", title="t"), run
    )
    assert (first.calls, second.calls) == (0, 0)
    assert enrichment.status == "failed"
    assert set(enrichment.item_fields()["enrichment_errors"].values()) == {"interrupted"}
