"""The micro-batcher: a full batch goes at once, a partial one when its window passes; each
lookup gets its own answer; a failing batch fails its own lookups only.

The window timers run on ``twisted.internet.task.Clock``; the batch sender is an in-test
function recording what it was asked (the transport's real one is tested end to end in
tests/integration/test_batch_crawl.py). The split rules are Spotify's and MusicBrainz's own.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import pytest_twisted
from scrapy.utils.defer import deferred_from_coro
from twisted.internet import task

from scrapy_apigw.batching import Batcher, BatchRule
from scrapy_apigw.exceptions import ProviderUnavailable
from scrapy_apigw.providers import musicbrainz, spotify
from scrapy_apigw.providers.base import ApiAnswer, ApiCall

FEATURES = next(r for r in spotify.BATCH_RULES if r.data_type == "audio_features")
TRACKS = next(r for r in spotify.BATCH_RULES if r.data_type == "track")
ISRCS = musicbrainz.BATCH_RULES[0]


def spotify_id(n: int) -> str:
    return f"{n:022d}".replace("0", "A")  # 22 base62 characters


def features_call(n: int) -> ApiCall:
    return ApiCall("spotify", "audio_features", f"/audio-features/{spotify_id(n)}")


def isrc_call(code: str) -> ApiCall:
    params = (("inc", "artist-credits"), ("fmt", "json"))
    return ApiCall("musicbrainz", "isrc", f"/isrc/{code}", params)


class Sender:
    """Records each batch; answers every id ok, except the ids in *unknown* (null) and the
    batches numbered in *failing* (raise)."""

    def __init__(self, unknown: set[str] = frozenset(), failing: set[int] = frozenset()):  # type: ignore[assignment]
        self.batches: list[ApiCall] = []
        self.unknown = unknown
        self.failing = failing

    async def __call__(self, rule: BatchRule, calls: list[ApiCall]) -> list[ApiAnswer | None]:
        batch = rule.build(calls)
        self.batches.append(batch)
        if len(self.batches) in self.failing:
            raise ProviderUnavailable("spotify", "HTTP 503 after 3 retries")
        ids = dict(batch.params)["ids"].split(",")
        data = {"audio_features": [None if i in self.unknown else {"id": i} for i in ids]}
        return rule.split(ApiAnswer("ok", 200, data), calls)


def on_asyncio(test: Callable[[], Coroutine[Any, Any, None]]) -> Any:
    """Run the async *test* as an asyncio task (it awaits asyncio futures), under
    pytest-twisted's asyncio reactor."""

    @functools.wraps(test)
    @pytest_twisted.ensureDeferred
    async def run() -> None:
        await deferred_from_coro(test())

    return run


async def settle() -> None:
    """Let the submitted lookups and the batch tasks run (a few loop turns, no time passes)."""
    for _ in range(5):
        await asyncio.sleep(0)


def start(batcher: Batcher, rule: BatchRule, calls: list[ApiCall]) -> list[asyncio.Future[Any]]:
    return [asyncio.ensure_future(batcher.submit(rule, c)) for c in calls]


@on_asyncio
async def test_a_full_batch_is_sent_at_once_without_waiting_for_the_window():
    clock, sender = task.Clock(), Sender()
    batcher = Batcher(1.0, sender, clock)
    lookups = start(batcher, FEATURES, [features_call(n) for n in range(100)])
    await settle()
    assert len(sender.batches) == 1  # no time passed: the 100th lookup filled it
    assert dict(sender.batches[0].params)["ids"].count(",") == 99
    assert sender.batches[0].path == "/audio-features"
    answers = await asyncio.gather(*lookups)
    assert [a.data["id"] for a in answers] == [spotify_id(n) for n in range(100)]
    assert not clock.getDelayedCalls()  # the window timer was cancelled


@on_asyncio
async def test_the_101st_lookup_opens_a_second_batch():
    clock, sender = task.Clock(), Sender()
    batcher = Batcher(1.0, sender, clock)
    lookups = start(batcher, FEATURES, [features_call(n) for n in range(101)])
    await settle()
    assert len(sender.batches) == 1
    assert batcher.pending == 1
    clock.advance(1.0)
    await asyncio.gather(*lookups)
    assert len(sender.batches) == 2
    assert dict(sender.batches[1].params)["ids"] == spotify_id(100)


@on_asyncio
async def test_a_partial_batch_is_sent_when_its_window_passes():
    clock, sender = task.Clock(), Sender()
    batcher = Batcher(0.5, sender, clock)
    lookups = start(batcher, FEATURES, [features_call(n) for n in range(3)])
    await settle()
    clock.advance(0.49)
    await settle()
    assert sender.batches == []
    clock.advance(0.01)
    answers = await asyncio.gather(*lookups)
    assert len(sender.batches) == 1
    assert dict(sender.batches[0].params)["ids"] == ",".join(spotify_id(n) for n in range(3))
    assert [a.kind for a in answers] == ["ok", "ok", "ok"]


@on_asyncio
async def test_a_null_entry_is_not_found_for_that_id_only():
    clock, sender = task.Clock(), Sender(unknown={spotify_id(1)})
    batcher = Batcher(0.5, sender, clock)
    lookups = start(batcher, FEATURES, [features_call(n) for n in range(3)])
    await settle()
    clock.advance(0.5)
    answers = await asyncio.gather(*lookups)
    assert [(a.kind, a.status) for a in answers] == [("ok", 200), ("not_found", 404), ("ok", 200)]
    assert answers[1].data is None


@on_asyncio
async def test_a_failing_batch_fails_only_its_own_lookups():
    clock, sender = task.Clock(), Sender(failing={1})
    batcher = Batcher(0.5, sender, clock)
    first = start(batcher, FEATURES, [features_call(n) for n in range(2)])
    await settle()
    clock.advance(0.5)
    second = start(batcher, FEATURES, [features_call(n) for n in range(2, 4)])
    await settle()
    clock.advance(0.5)
    results = await asyncio.gather(*first, *second, return_exceptions=True)
    assert len(sender.batches) == 2
    assert [type(r).__name__ for r in results[:2]] == ["ProviderUnavailable"] * 2
    assert str(results[0]) == "spotify: HTTP 503 after 3 retries"
    assert [r.data["id"] for r in results[2:]] == [spotify_id(2), spotify_id(3)]


@on_asyncio
async def test_lookups_of_other_kinds_or_parameters_go_in_separate_batches():
    clock, sent = task.Clock(), []

    async def send(rule: BatchRule, calls: list[ApiCall]) -> list[ApiAnswer | None]:
        sent.append(rule.build(calls))
        return [None] * len(calls)  # nothing covered: each caller looks its id up alone

    batcher = Batcher(0.5, send, clock)
    se = ApiCall("spotify", "track", f"/tracks/{spotify_id(1)}", (("market", "SE"),))
    us = ApiCall("spotify", "track", f"/tracks/{spotify_id(2)}", (("market", "US"),))
    lookups = [asyncio.ensure_future(batcher.submit(TRACKS, c)) for c in (se, us)]
    lookups.append(asyncio.ensure_future(batcher.submit(FEATURES, features_call(3))))
    await settle()
    clock.advance(0.5)
    assert await asyncio.gather(*lookups) == [None, None, None]
    assert sorted((c.path, c.params) for c in sent) == [
        ("/audio-features", (("ids", spotify_id(3)),)),
        ("/tracks", (("ids", spotify_id(1)), ("market", "SE"))),
        ("/tracks", (("ids", spotify_id(2)), ("market", "US"))),
    ]


@on_asyncio
async def test_the_same_id_twice_is_asked_once_and_answered_twice():
    clock, sender = task.Clock(), Sender()
    batcher = Batcher(0.5, sender, clock)
    lookups = start(batcher, FEATURES, [features_call(7), features_call(8), features_call(7)])
    await settle()
    clock.advance(0.5)
    answers = await asyncio.gather(*lookups)
    assert dict(sender.batches[0].params)["ids"] == f"{spotify_id(7)},{spotify_id(8)}"
    assert [a.data["id"] for a in answers] == [spotify_id(7), spotify_id(8), spotify_id(7)]


@on_asyncio
async def test_a_lone_item_s_lookup_is_sent_at_once():
    clock, sender = task.Clock(), Sender()
    batcher = Batcher(1.0, sender, clock, in_flight=lambda: 1)
    [lookup] = start(batcher, FEATURES, [features_call(1)])
    await settle()
    assert sender.batches == []  # not in the turn it was asked: others may join
    clock.advance(0)  # the next reactor turn, long before the 1 s window
    answer = await lookup
    assert answer is not None and answer.data == {"id": spotify_id(1)}
    assert len(sender.batches) == 1
    assert not clock.getDelayedCalls()


@on_asyncio
async def test_items_entering_in_one_turn_join_one_batch_before_it_is_sent():
    clock, sender = task.Clock(), Sender()
    items = [1]
    batcher = Batcher(1.0, sender, clock, in_flight=lambda: items[0])
    first = start(batcher, FEATURES, [features_call(1)])
    items[0] = 2  # a second item entered the pipeline in the same turn
    second = start(batcher, FEATURES, [features_call(2)])
    await settle()
    clock.advance(0)
    answers = await asyncio.gather(*first, *second)
    assert [dict(b.params)["ids"] for b in sender.batches] == [f"{spotify_id(1)},{spotify_id(2)}"]
    assert [a.data["id"] for a in answers] == [spotify_id(1), spotify_id(2)]
    assert not clock.getDelayedCalls()


@on_asyncio
async def test_open_batches_wait_for_an_item_in_flight_and_go_when_it_leaves():
    clock, sender = task.Clock(), Sender()
    items = [3]  # three items in flight; the third is busy elsewhere (another provider)
    batcher = Batcher(1.0, sender, clock, in_flight=lambda: items[0])
    lookups = start(batcher, FEATURES, [features_call(1), features_call(2)])
    await settle()
    assert sender.batches == []
    items[0] = 2  # the third item left the pipeline
    assert batcher.settle() == 1
    answers = await asyncio.gather(*lookups)
    assert len(sender.batches) == 1 and [a.kind for a in answers] == ["ok", "ok"]
    assert not clock.getDelayedCalls()


def test_a_negative_window_is_refused():
    with pytest.raises(ValueError, match="window must be >= 0 seconds, got -1"):
        Batcher(-1, Sender())


# -- the rules' build and split ----------------------------------------------------------------


def test_spotify_batch_with_a_wrong_number_of_entries_covers_nothing():
    calls = [features_call(1), features_call(2)]
    answer = ApiAnswer("ok", 200, {"audio_features": [{"id": spotify_id(1)}]})
    assert FEATURES.split(answer, calls) == [None, None]


def test_musicbrainz_isrc_batch_is_one_search_with_limit_100():
    batch = ISRCS.build([isrc_call("GBAAA9900303"), isrc_call("USUM72409273")])
    assert (batch.path, batch.data_type) == ("/recording", "isrc_batch")
    assert batch.params == (
        ("query", "isrc:(GBAAA9900303 OR USUM72409273)"),
        ("limit", "100"),
        ("fmt", "json"),
    )


def recording(rid: str, *isrcs: str) -> dict[str, Any]:
    rec: dict[str, Any] = {"id": rid, "score": 100, "title": "T"}
    if isrcs:
        rec["isrcs"] = list(isrcs)
    return rec


def test_musicbrainz_split_gives_each_isrc_its_recordings_and_not_found_to_the_others():
    calls = [isrc_call("GBAAA9900303"), isrc_call("USUM72409273"), isrc_call("FRZ030900123")]
    data = {
        "count": 3,
        "recordings": [
            recording("r1", "GBAAA9900303"),
            recording("r2", "USUM72409273", "GBAAA9900303"),
            recording("r3"),  # no isrcs: names none of them
        ],
    }
    parts = ISRCS.split(ApiAnswer("ok", 200, data), calls)
    assert parts[0] == ApiAnswer(
        "ok",
        200,
        {
            "isrc": "GBAAA9900303",
            "recordings": [{"id": "r1", "title": "T", "isrcs": ["GBAAA9900303"]},
                           {"id": "r2", "title": "T", "isrcs": ["USUM72409273", "GBAAA9900303"]}],
        },
    )  # fmt: skip
    assert parts[1] is not None and [r["id"] for r in parts[1].data["recordings"]] == ["r2"]
    assert parts[2] == ApiAnswer("not_found", 404, None)


def test_musicbrainz_split_of_a_cut_answer_marks_no_isrc_not_found():
    calls = [isrc_call("GBAAA9900303"), isrc_call("USUM72409273")]
    data = {"count": 101, "recordings": [recording(f"r{n}", "GBAAA9900303") for n in range(100)]}
    assert ISRCS.split(ApiAnswer("ok", 200, data), calls) == [None, None]
