"""Crawls against the strict sandbox (issue 7 section 3): what its real-API behaviours mean for
the clients, end to end over loopback sockets.

- Last.fm's stub track for an unknown pair is not taken for a match;
- Last.fm's error 29 in an HTTP 200 body is rate limited: retried, never cached;
- the example project's default settings cause no MusicBrainz 503;
- a MusicBrainz User-Agent MusicBrainz would refuse is never sent;
- Spotify's QUOTA_EXCEEDED 429 is waited out and retried; ``preview_url`` strings do no harm.
"""

from __future__ import annotations

import logging

import pytest
import pytest_twisted
from conftest import gateway_settings, provider_calls, run_crawl
from fixtures_sandbox import start_sandbox_process
from spiders import ItemsSpider

SPEED = 10.0
UNKNOWN = {"artist": "Nobody Known Here", "title": "A Title Nobody Wrote"}
KNOWN = {"artist": "Daft Punk", "title": "One More Time"}


@pytest.fixture(scope="module")
def lastfm_200_sandbox():
    """Last.fm answers its error 29 with HTTP 200; Spotify's 429s carry QUOTA_EXCEEDED."""
    sandbox = start_sandbox_process(
        SPEED, "--lastfm-rate-limit-status", "200", "--spotify-rate-limit-body", "quota"
    )
    yield sandbox
    sandbox.stop()


def lastfm_calls(sandbox) -> list[dict]:
    return [r for r in provider_calls(sandbox.log()) if r["provider"] == "lastfm"]


@pytest_twisted.ensureDeferred
async def test_lastfm_stub_track_is_not_taken_for_a_match(sandbox, tmp_path):
    settings = gateway_settings(sandbox, tmp_path, APIGW_WATERFALL=["lastfm"])
    result = await run_crawl(ItemsSpider, settings, items=[UNKNOWN, KNOWN])
    unknown, known = sorted(result.items, key=lambda i: i["title"] != UNKNOWN["title"])
    info = [r for r in lastfm_calls(sandbox) if r["query"]["track"] == UNKNOWN["title"]]
    assert [r["status"] for r in info] == [200]  # the stub, with HTTP 200
    assert "lastfm_listeners" not in unknown and "lastfm_playcount" not in unknown
    assert "lastfm" not in unknown.get("enrichment_sources", [])
    assert known["lastfm_listeners"] > 2 and known["enrichment_sources"] == ["lastfm"]


@pytest_twisted.ensureDeferred
async def test_lastfm_error_29_in_a_200_body_is_retried_and_never_cached(
    lastfm_200_sandbox, tmp_path
):
    sandbox = lastfm_200_sandbox
    sandbox.reset()
    settings = gateway_settings(sandbox, tmp_path, APIGW_WATERFALL=["lastfm"])
    sandbox.set_faults("lastfm", rate_limit_next=1)
    first = await run_crawl(ItemsSpider, settings, items=[KNOWN])
    calls = lastfm_calls(sandbox)
    assert [(r["status"], r["fault"]) for r in calls[:2]] == [(200, "forced_429"), (200, None)]
    assert first.stats["apigw/lastfm/retries"] == 1
    assert first.items[0]["lastfm_listeners"] > 2
    # Every attempt refused: the item fails, and the refusal is not cached...
    sandbox.reset()
    sandbox.set_faults("lastfm", rate_limit_next=1000)
    other = {"artist": "Daft Punk", "title": "Around the World"}
    refused = await run_crawl(ItemsSpider, settings, items=[other])
    assert "lastfm" in refused.items[0]["enrichment_errors"]
    assert all(r["status"] == 200 and r["fault"] == "forced_429" for r in lastfm_calls(sandbox))
    # ...so the next crawl asks Last.fm again, and gets the answer.
    sandbox.reset()
    again = await run_crawl(ItemsSpider, settings, items=[other])
    assert lastfm_calls(sandbox), "a cached error 29 would have answered without a call"
    assert again.items[0]["lastfm_listeners"] > 2


@pytest_twisted.ensureDeferred
async def test_spotify_quota_exceeded_429_is_waited_out_and_retried(lastfm_200_sandbox, tmp_path):
    sandbox = lastfm_200_sandbox
    sandbox.reset()
    sandbox.set_faults("spotify", rate_limit_next=1, retry_after="1")
    settings = gateway_settings(sandbox, tmp_path, APIGW_WATERFALL=["spotify"])
    result = await run_crawl(ItemsSpider, settings, items=[KNOWN])
    spotify = [r for r in provider_calls(sandbox.log()) if r["provider"] == "spotify"]
    assert [r["status"] for r in spotify if "token" not in r["path"]][:2] == [429, 200]
    assert result.items[0]["enrichment_status"] == "completed"
    assert result.stats["apigw/spotify/retries"] == 1


def example_settings(sandbox, tmp_path) -> dict:
    """The example project's settings as they are, pointed at the *sandbox* subprocess."""
    from tracklists import settings as module

    values = {name: getattr(module, name) for name in dir(module) if name.isupper()}
    values.update(
        APIGW_SANDBOX_URL=sandbox.url,
        APIGW_CACHE_PATH=str(tmp_path / "cache.sqlite3"),
        FEEDS={str(tmp_path / "items.jsonl"): {"format": "jsonlines"}},
        ROBOTSTXT_OBEY=False,
        TELNETCONSOLE_ENABLED=False,
    )
    return values


@pytest_twisted.ensureDeferred
async def test_example_crawl_at_default_settings_gets_no_musicbrainz_503(
    sandbox, tmp_path, tracklists_spider
):
    settings = example_settings(sandbox, tmp_path)
    assert settings["APIGW_SANDBOX_SPEED"] == sandbox.speed == 10  # the example's own speed
    result = await run_crawl(tracklists_spider, settings, limit=3)
    mb = [r for r in provider_calls(sandbox.log()) if r["provider"] == "musicbrainz"]
    # ISRCs are batched (isrc:(A OR B ...)): count the tracks asked, not the calls.
    asked = sum(r["query"].get("query", "").count(" OR ") + 1 for r in mb)
    assert asked >= 40, "the crawl asked MusicBrainz for most tracks"
    assert [r for r in mb if r["status"] == 503] == []
    assert {r["user_agent"] for r in mb} == {settings_user_agent()}
    assert len(result.items) == result.stats["item_scraped_count"] >= 55


def settings_user_agent() -> str:
    from scrapy_apigw.settings import SANDBOX_USER_AGENT

    return SANDBOX_USER_AGENT


@pytest_twisted.ensureDeferred
async def test_a_musicbrainz_user_agent_it_would_refuse_is_never_sent(sandbox, tmp_path, caplog):
    settings = gateway_settings(
        sandbox,
        tmp_path,
        APIGW_WATERFALL=["musicbrainz", "lastfm"],
        APIGW_MUSICBRAINZ_USER_AGENT="scrapy-apigw/0.2.0",
    )
    with caplog.at_level(logging.WARNING, logger="scrapy_apigw"):
        result = await run_crawl(ItemsSpider, settings, items=[KNOWN])
    # track.getInfo only: it lists the top tags (no track.getTopTags needed).
    assert [r["provider"] for r in provider_calls(sandbox.log())] == ["lastfm"]
    warnings = [r.getMessage() for r in caplog.records if "musicbrainz skipped" in r.getMessage()]
    assert len(warnings) == 1 and "APIGW_MUSICBRAINZ_USER_AGENT" in warnings[0]
    assert "no contact" in warnings[0]
    assert result.items[0]["enrichment_sources"] == ["lastfm"]


def tracks_with_a_preview(sandbox, wanted: int) -> list[dict]:
    """Catalog tracks whose Spotify answers carry a ``preview_url`` string, as artist/title."""
    token = sandbox.request(
        "POST",
        "/spotify/accounts/api/token",
        data=b"grant_type=client_credentials&client_id=sandbox-client-id"
        b"&client_secret=sandbox-client-secret",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ).json()["access_token"]
    found = []
    for track in sandbox.catalog()["tracks"]:
        body = sandbox.get(
            f"/spotify/v1/tracks/{track['spotify_id']}",
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        if isinstance(body.get("preview_url"), str):
            found.append({"artist": body["artists"][0]["name"], "title": body["name"]})
        if len(found) == wanted:
            return found
    raise AssertionError("no track with a preview_url in the sandbox catalog")


@pytest_twisted.ensureDeferred
async def test_tracks_whose_preview_url_is_a_string_are_enriched(sandbox, tmp_path):
    items = tracks_with_a_preview(sandbox, 3)
    sandbox.reset()
    settings = gateway_settings(sandbox, tmp_path, APIGW_WATERFALL=["spotify"])
    result = await run_crawl(ItemsSpider, settings, items=items)
    assert [i["enrichment_status"] for i in result.items] == ["completed"] * 3
    assert all(i["spotify_id"] and "preview_url" not in i for i in result.items)
