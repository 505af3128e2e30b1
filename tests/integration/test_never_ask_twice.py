"""Never ask twice (issue 7 §2), end to end against the sandbox, with the embedded cache and a
real redis-server: single-flight, remembered refusals across crawls, stale-if-error."""

from __future__ import annotations

import json
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from conftest import gateway_settings, provider_calls, run_crawl
from fixtures_sandbox import start_sandbox_process
from spiders import ItemsSpider
from twisted.internet import task

TRACK = {"artist": "Daft Punk", "title": "One More Time"}
OTHER = {"artist": "Daft Punk", "title": "Around the World"}
PROVIDERS = ("spotify", "musicbrainz", "discogs", "lastfm")


@dataclass
class SharedCache:
    """The cache the crawls of one test share: its settings, and the redis-server if any."""

    settings: dict[str, Any]
    redis: Any = None

    def dump(self) -> str:
        """Every key and value stored, as text."""
        if self.redis is not None:
            from test_inputs_and_secrets import redis_dump

            return redis_dump(self.redis)
        return Path(self.settings["APIGW_CACHE_PATH"]).read_bytes().decode("latin-1")


@pytest.fixture(params=["embedded", "redis"])
def cache(request: pytest.FixtureRequest, tmp_path: Path) -> SharedCache:
    """The embedded file, or a flushed real redis-server."""
    if request.param == "embedded":
        return SharedCache({"APIGW_CACHE_PATH": str(tmp_path / "shared-cache.sqlite3")})
    server = request.getfixturevalue("redis_server")
    server.flushall()
    return SharedCache({"APIGW_REDIS_URL": server.url}, server)


def requests(log: list[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
    """How many times each provider request (provider, path, sorted query) was made; the
    Spotify token requests are left out (shared by design, not a lookup)."""
    return Counter(
        (r["provider"], r["path"], json.dumps(sorted(r.get("query", {}).items())))
        for r in provider_calls(log)
        if not r["path"].endswith("/api/token")
    )


def per_provider(counts: Counter[tuple[str, str, str]]) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for (provider, _, _), n in counts.items():
        totals[provider] += n
    return dict(totals)


def sandbox_isrc(sandbox: Any, title: str) -> str:
    with urllib.request.urlopen(f"{sandbox.url}/_sandbox/catalog") as response:
        tracks = json.loads(response.read())["tracks"]
    return next(t["isrc"] for t in tracks if t["title"] == title and t.get("isrc"))


async def wait_until(moment: float) -> None:
    """Wait (without blocking the reactor) until the wall clock reads *moment*."""
    from twisted.internet import reactor

    while time.time() < moment:
        await task.deferLater(reactor, max(0.01, moment - time.time()))


# -- single-flight -------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_track_listed_twice_makes_each_call_once_and_both_items_get_the_answer(
    sandbox, tmp_path
):
    settings = gateway_settings(sandbox, tmp_path)
    result = await run_crawl(ItemsSpider, settings, items=[dict(TRACK), dict(TRACK)])
    assert len(result.items) == 2
    assert [i["enrichment_status"] for i in result.items] == ["completed"] * 2
    first, second = ({k: v for k, v in i.items() if k != "enriched_at"} for i in result.items)
    assert first == second and first["enrichment_sources"] == list(PROVIDERS)
    counts = requests(sandbox.log())
    assert set(counts.values()) == {1}, [k for k, n in counts.items() if n > 1]
    # Every call of the second item joined the first one's: as many saved as made.
    made = per_provider(counts)
    saved = {p: result.stats.get(f"apigw/{p}/singleflight/saved", 0) for p in PROVIDERS}
    assert saved == made, (saved, made)


@pytest_twisted.ensureDeferred
async def test_two_items_with_one_isrc_make_one_lookup(sandbox, tmp_path):
    isrc = sandbox_isrc(sandbox, TRACK["title"])
    items = [{**TRACK, "isrc": isrc}, {"isrc": isrc.lower()}]
    settings = gateway_settings(sandbox, tmp_path, APIGW_WATERFALL=["spotify", "musicbrainz"])
    result = await run_crawl(ItemsSpider, settings, items=items)
    assert len(result.items) == 2
    assert [i["enrichment_status"] for i in result.items] == ["completed"] * 2
    assert result.items[0]["spotify_id"] == result.items[1]["spotify_id"]
    assert result.items[0]["musicbrainz_id"] == result.items[1]["musicbrainz_id"]
    counts = requests(sandbox.log())
    assert set(counts.values()) == {1}, [k for k, n in counts.items() if n > 1]
    made = per_provider(counts)
    assert made == {"spotify": 2, "musicbrainz": 1}  # ISRC search + audio features; ISRC lookup
    assert result.stats["apigw/spotify/singleflight/saved"] == 2
    assert result.stats["apigw/musicbrainz/singleflight/saved"] == 1


# -- remembered refusals ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def forbidding_sandbox():
    sandbox = start_sandbox_process(10.0, "--audio-features", "forbidden")
    yield sandbox
    sandbox.stop()


@pytest_twisted.ensureDeferred
async def test_a_refused_audio_features_call_is_not_asked_again_in_the_next_crawl(
    forbidding_sandbox, tmp_path, cache
):
    sandbox = forbidding_sandbox
    sandbox.reset()
    settings = gateway_settings(sandbox, tmp_path, **cache.settings)
    first = await run_crawl(ItemsSpider, settings, items=[dict(TRACK)])
    features = [r for r in provider_calls(sandbox.log()) if "audio-features" in r["path"]]
    assert [r["status"] for r in features] == [403]
    assert first.stats["apigw/spotify/refusals/stored"] == 1

    sandbox.reset()
    # Another track: nothing of it is cached, so only the remembered refusal can save the call.
    second = await run_crawl(ItemsSpider, settings, items=[dict(OTHER), dict(TRACK)])
    assert len(second.items) == 2
    assert [i["enrichment_status"] for i in second.items] == ["completed"] * 2
    assert all("spotify_id" in i and "bpm" not in i for i in second.items)
    assert not [r for r in provider_calls(sandbox.log()) if "audio-features" in r["path"]]
    assert second.stats["apigw/spotify/refusals/remembered"] == 1
    assert "apigw/spotify/refusals/stored" not in second.stats


@pytest_twisted.ensureDeferred
async def test_refused_credentials_are_not_asked_again_next_crawl_unless_they_changed(
    sandbox, tmp_path, cache
):
    wrong = gateway_settings(
        sandbox, tmp_path, APIGW_LASTFM_API_KEY="not-the-key", **cache.settings
    )
    first = await run_crawl(ItemsSpider, wrong, items=[dict(TRACK)])
    assert "credentials refused" in first.items[0]["enrichment_errors"]["lastfm"]
    assert len([r for r in provider_calls(sandbox.log()) if r["provider"] == "lastfm"]) == 1

    sandbox.reset()
    second = await run_crawl(ItemsSpider, wrong, items=[dict(OTHER)])
    assert len(second.items) == 1 and second.items[0]["enrichment_status"] == "partial"
    assert second.items[0]["enrichment_errors"]["lastfm"] == (
        "credentials refused in an earlier crawl (APIGW_REFUSAL_TTL)"
    )
    assert not [r for r in provider_calls(sandbox.log()) if r["provider"] == "lastfm"]

    sandbox.reset()
    changed = {**wrong, "APIGW_LASTFM_API_KEY": "another-wrong-key"}
    third = await run_crawl(ItemsSpider, changed, items=[dict(OTHER)])
    assert "credentials refused (" in third.items[0]["enrichment_errors"]["lastfm"]
    assert len([r for r in provider_calls(sandbox.log()) if r["provider"] == "lastfm"]) == 1

    sandbox.reset()
    right = gateway_settings(sandbox, tmp_path, **cache.settings)
    fourth = await run_crawl(ItemsSpider, right, items=[dict(OTHER)])
    assert fourth.items[0]["enrichment_status"] == "completed"

    # What was remembered names no credential, in keys or values.
    stored = cache.dump()
    assert "lastfm:refusal:credentials" in stored
    assert "not-the-key" not in stored and "another-wrong-key" not in stored


# -- stale-if-error --------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_stale_answers_stand_in_during_an_outage_and_never_past_the_stale_ttl(
    sandbox, tmp_path, cache
):
    ttl, stale_ttl = 1.0, 10.0
    settings = gateway_settings(
        sandbox,
        tmp_path,
        APIGW_WATERFALL=["spotify", "musicbrainz"],
        APIGW_PROVIDERS={
            "musicbrainz": {
                "cache_ttl": {"isrc": ttl, "search": ttl, "recording": ttl},
                "not_found_ttl": ttl,
                "max_retries": 1,  # the outage crawl gives up quickly
            }
        },
        APIGW_STALE_TTL=stale_ttl,
        **cache.settings,
    )
    first = await run_crawl(ItemsSpider, settings, items=[dict(TRACK)])
    stored_at = time.time()
    assert first.items[0]["enrichment_status"] == "completed"
    assert "enrichment_stale" not in first.items[0]
    mbid = first.items[0]["musicbrainz_id"]

    await wait_until(stored_at + ttl)  # every MusicBrainz answer has expired
    sandbox.reset()
    sandbox.set_faults("musicbrainz", outage=True)
    second = await run_crawl(ItemsSpider, settings, items=[dict(TRACK)])
    served_by = time.time()
    assert served_by < stored_at + stale_ttl, "the crawl was too slow for this test's TTLs"
    item = second.items[0]
    assert len(second.items) == 1
    assert item["enrichment_status"] == "completed"
    assert item["enrichment_stale"] == ["musicbrainz"]
    assert item["enrichment_sources"] == ["spotify", "musicbrainz"]
    assert item["musicbrainz_id"] == mbid
    assert second.stats["apigw/musicbrainz/cache/stale_served"] == 1
    mb_calls = [r for r in provider_calls(sandbox.log()) if r["provider"] == "musicbrainz"]
    # It was asked first: one attempt and one retry (max_retries 1), both met the outage.
    assert [r["fault"] for r in mb_calls] == ["outage", "outage"]

    await wait_until(stored_at + ttl + stale_ttl)  # past the stale TTL too
    third = await run_crawl(ItemsSpider, settings, items=[dict(TRACK)])
    item = third.items[0]
    assert len(third.items) == 1
    assert item["enrichment_status"] == "partial"
    assert "musicbrainz" in item["enrichment_errors"]
    assert "enrichment_stale" not in item and "musicbrainz_id" not in item
    assert "apigw/musicbrainz/cache/stale_served" not in third.stats
