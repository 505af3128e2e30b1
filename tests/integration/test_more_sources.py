"""Beatport, AcousticBrainz from its dumps, the dead AcousticBrainz, per-field source priority
(issue 9 section 3), through real crawls against the sandbox subprocess.

Expected values are the sandbox's deterministic records of these catalog tracks (written out
here, not recomputed): Beatport's ``scrapy_apigw.sandbox.beatport.beatport_record``, the dumps'
``scrapy_apigw.sandbox.acousticbrainz.lowlevel_document``/``highlevel_document``.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest_twisted
from conftest import gateway_settings, provider_calls, run_crawl
from spiders import ItemsSpider

from scrapy_apigw.sandbox.acousticbrainz import write_dumps
from scrapy_apigw.sandbox.catalog import Catalog
from scrapy_apigw.sandbox.config import BASE_PATHS

DA_FUNK = {"artist": "Daft Punk", "title": "Da Funk"}
SING_IT_BACK = {"artist": "Moloko", "title": "Sing It Back (Boris Dlugosch Mix)"}
GET_LUCKY = {"artist": ["Daft Punk", "Pharrell Williams", "Nile Rodgers"], "title": "Get Lucky"}
TECHNOLOGIC = {"artist": "Daft Punk", "title": "Technologic"}
I_FEEL_LOVE = {"artist": "Donna Summer", "title": "I Feel Love"}  # no AcousticBrainz documents


def by_title(items):
    return {item["title"]: item for item in items}


# -- Beatport --------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_beatport_crawl_fills_its_fields(sandbox, tmp_path):
    settings = gateway_settings(sandbox, tmp_path, APIGW_WATERFALL=["beatport"])
    result = await run_crawl(
        ItemsSpider, settings, items=[dict(DA_FUNK), dict(SING_IT_BACK), dict(GET_LUCKY)]
    )
    items = by_title(result.items)
    da_funk = items["Da Funk"]
    assert {k: da_funk[k] for k in da_funk if k not in ("enriched_at",)} == {
        **DA_FUNK,
        "beatport_id": 11172310,
        "bpm": 124.0,
        "key": "D# major",
        "camelot_key": "5B",
        "genre": "Nu Disco / Disco",
        "sub_genre": "French House",
        "label": "Roulé",
        "catalog_number": "ROULE352",
        "isrc": "GBFB09633995",
        "mix_name": "Original Mix",
        "enrichment_sources": ["beatport"],
        "enrichment_status": "completed",
        "enrichment_match": {"beatport": {"confidence": 1.0, "by": "search"}},
    }
    sing = items["Sing It Back (Boris Dlugosch Mix)"]
    assert (sing["beatport_id"], sing["mix_name"], sing["bpm"]) == (
        27278837,
        "Boris Dlugosch Mix",
        123.0,
    )
    assert (sing["key"], sing["camelot_key"], sing["genre"]) == ("C# minor", "12A", "House")
    assert (sing["label"], sing["catalog_number"]) == ("Toolroom", "TOOL 472")
    assert "sub_genre" not in sing
    # Beatport does not carry disco: searched, not found.
    lucky = items["Get Lucky"]
    assert lucky["enrichment_sources"] == [] and lucky["enrichment_status"] == "completed"
    calls = provider_calls(sandbox.log())
    tokens = [c for c in calls if c["provider"] == "beatport" and c["path"].endswith("/token/")]
    lookups = [c for c in calls if "/catalog/tracks/" in c["path"]]
    assert len(tokens) == 1 and tokens[0]["status"] == 200  # one token for the crawl
    assert sorted(c["path"] for c in lookups) == [
        "/beatport/v4/catalog/tracks/11172310/",
        "/beatport/v4/catalog/tracks/27278837/",
    ]
    assert result.stats["apigw/beatport/auth/tokens"] == 1


@pytest_twisted.ensureDeferred
async def test_beatport_without_credentials_is_skipped_with_one_warning(
    sandbox, tmp_path, caplog, monkeypatch
):
    monkeypatch.delenv("BEATPORT_API_KEY", raising=False)
    monkeypatch.delenv("BEATPORT_API_SECRET", raising=False)
    providers = {
        "beatport": {
            "base_url": sandbox.url + BASE_PATHS["beatport"],
            "token_url": sandbox.url + BASE_PATHS["beatport_token"],
        },
        "spotify": {
            "base_url": sandbox.url + BASE_PATHS["spotify"],
            "token_url": sandbox.url + BASE_PATHS["spotify_token"],
            "rate": 10 * sandbox.speed,
        },
    }
    settings = gateway_settings(
        sandbox,
        tmp_path,
        APIGW_SANDBOX=False,
        APIGW_PROVIDERS=providers,
        APIGW_WATERFALL=["spotify", "beatport"],
        APIGW_SPOTIFY_CLIENT_ID="sandbox-client-id",
        APIGW_SPOTIFY_CLIENT_SECRET="sandbox-client-secret",
    )
    caplog.set_level(logging.WARNING)
    result = await run_crawl(ItemsSpider, settings, items=[dict(DA_FUNK), dict(TECHNOLOGIC)])
    assert [i["enrichment_sources"] for i in result.items] == [["spotify"], ["spotify"]]
    assert not [c for c in provider_calls(sandbox.log()) if c["provider"] == "beatport"]
    warnings = [r.getMessage() for r in caplog.records if "beatport skipped" in r.getMessage()]
    assert len(warnings) == 1
    assert "APIGW_BEATPORT_API_KEY, APIGW_BEATPORT_API_SECRET" in warnings[0]


# -- per-field source priority -----------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_field_sources_decide_whose_bpm_wins(sandbox, tmp_path):
    # Da Funk: Spotify's tempo 124.396 gives 124.4; Beatport says 124 (whole BPMs).
    default = gateway_settings(sandbox, tmp_path, APIGW_WATERFALL=["spotify", "beatport"])
    before = (await run_crawl(ItemsSpider, default, items=[dict(DA_FUNK)])).items[0]
    assert before["bpm"] == 124.4
    assert before["enrichment_sources"] == ["spotify", "beatport"]

    prefer = gateway_settings(
        sandbox,
        tmp_path,
        APIGW_WATERFALL=["spotify", "beatport"],
        APIGW_FIELD_SOURCES={"bpm": ["beatport", "spotify"], "label": ["beatport"]},
    )
    after = (await run_crawl(ItemsSpider, prefer, items=[dict(DA_FUNK)])).items[0]
    assert after["bpm"] == 124.0
    assert after["spotify_id"] == before["spotify_id"]  # the other fields are unchanged
    assert after["key"] == before["key"] == "D# major"


# -- AcousticBrainz ----------------------------------------------------------------------------


def _dumps(tmp_path: Path, archive: str | None) -> Path:
    target = tmp_path / ("dumps" if archive is None else f"dumps.{archive}")
    return write_dumps(Catalog.load(), target, archive)


async def _acousticbrainz_crawl(sandbox, tmp_path, dumps: str):
    settings = gateway_settings(
        sandbox,
        tmp_path,
        APIGW_WATERFALL=["musicbrainz", "acousticbrainz"],
        APIGW_ACOUSTICBRAINZ_DUMPS=dumps,
    )
    items = [dict(DA_FUNK), dict(TECHNOLOGIC), dict(I_FEEL_LOVE)]
    return await run_crawl(ItemsSpider, settings, items=items)


def _assert_acousticbrainz_fields(result) -> None:
    items = by_title(result.items)
    da_funk = items["Da Funk"]
    assert da_funk["musicbrainz_id"] == "5461baff-c7dc-5874-9dfc-61fae9a6dad5"
    assert (da_funk["bpm"], da_funk["key"], da_funk["camelot_key"]) == (124.9, "D# major", "5B")
    assert da_funk["acousticbrainz_highlevel"]["danceability"] == {
        "value": "danceable",
        "probability": 0.797,
    }
    assert len(da_funk["acousticbrainz_highlevel"]) == 12
    technologic = items["Technologic"]
    assert (technologic["bpm"], technologic["key"], technologic["camelot_key"]) == (
        124.2,
        "C# major",
        "3B",
    )
    assert technologic["enrichment_sources"] == ["musicbrainz", "acousticbrainz"]
    # No documents in the dumps for this recording: not found, not a failure.
    love = items["I Feel Love"]
    assert love["enrichment_sources"] == ["musicbrainz"] and "bpm" not in love
    assert love["enrichment_status"] == "completed"
    assert result.stats["apigw/acousticbrainz/results/not_found"] == 1


@pytest_twisted.ensureDeferred
async def test_an_acousticbrainz_crawl_from_a_dump_directory_fills_its_fields(sandbox, tmp_path):
    result = await _acousticbrainz_crawl(sandbox, tmp_path, str(_dumps(tmp_path, None)))
    _assert_acousticbrainz_fields(result)
    # Read from the dumps: the sandbox's (dead) AcousticBrainz is never asked.
    assert not [c for c in sandbox.log() if c.get("provider") == "acousticbrainz"]


@pytest_twisted.ensureDeferred
async def test_an_acousticbrainz_crawl_from_a_dump_archive_fills_its_fields(sandbox, tmp_path):
    result = await _acousticbrainz_crawl(sandbox, tmp_path, str(_dumps(tmp_path, "tar.gz")))
    _assert_acousticbrainz_fields(result)


@pytest_twisted.ensureDeferred
async def test_an_acousticbrainz_crawl_from_a_mirror_url_fills_its_fields(sandbox, tmp_path):
    from twisted.internet import reactor
    from twisted.web.server import Site
    from twisted.web.static import File

    dumps = _dumps(tmp_path, None)
    mirror = tmp_path / "mirror"  # the dumps' layout at the mirror's root
    for kind in ("lowlevel", "highlevel"):
        shutil.copytree(dumps / f"acousticbrainz-{kind}-json-20220623" / kind, mirror / kind)
    port = reactor.listenTCP(0, Site(File(str(tmp_path))), interface="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{port.getHost().port}/mirror"
        result = await _acousticbrainz_crawl(sandbox, tmp_path, url)
    finally:
        await port.stopListening()
    _assert_acousticbrainz_fields(result)
    assert result.stats["apigw/acousticbrainz/cache/miss"] == 6  # 3 tracks x 2 documents


@pytest_twisted.ensureDeferred
async def test_the_dead_acousticbrainz_fails_once_clearly_and_is_never_retried(
    sandbox, tmp_path, caplog
):
    settings = gateway_settings(
        sandbox, tmp_path, APIGW_WATERFALL=["musicbrainz", "acousticbrainz"]
    )
    caplog.set_level(logging.WARNING)
    items = [dict(DA_FUNK), dict(TECHNOLOGIC), dict(I_FEEL_LOVE)]
    result = await run_crawl(ItemsSpider, settings, items=items)
    # Every item is complete: AcousticBrainz is skipped, not failed.
    assert [i["enrichment_status"] for i in result.items] == ["completed"] * 3
    assert all(i["enrichment_sources"] == ["musicbrainz"] for i in result.items)
    assert all("enrichment_errors" not in i for i in result.items)
    asked = [c for c in sandbox.log() if c.get("provider") == "acousticbrainz"]
    assert len(asked) == 1 and asked[0]["status"] == 410  # once, no retry
    messages = [r.getMessage() for r in caplog.records if "acousticbrainz" in r.getMessage()]
    assert len(messages) == 1, messages
    assert "AcousticBrainz service was shut down" in messages[0]
    assert "answered HTTP 410" in messages[0] and "APIGW_ACOUSTICBRAINZ_DUMPS" in messages[0]
    stats = result.stats
    assert stats["apigw/acousticbrainz/results/skipped"] == 3
    for key in stats:
        if key.startswith("apigw/acousticbrainz/"):
            assert "breaker" not in key and "retry" not in key and "rate_limit" not in key, key
    feed = json.dumps(result.items)
    assert "410" not in feed
