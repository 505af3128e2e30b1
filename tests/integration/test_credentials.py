"""Credentials: a provider without them is skipped with one warning; refused ones are given up."""

from __future__ import annotations

import logging

import pytest_twisted
from conftest import gateway_settings, provider_calls, run_crawl
from spiders import ItemsSpider

from scrapy_apigw.sandbox.config import BASE_PATHS

TRACKS = [
    {"artist": "Daft Punk", "title": "One More Time"},
    {"artist": "Daft Punk", "title": "Around the World"},
    {"artist": "Daft Punk", "title": "Da Funk"},
]


def real_mode_settings(sandbox, tmp_path, **credentials):
    """Settings of a user who points each provider at an API by hand (here: the sandbox)."""
    speed = sandbox.speed
    providers = {
        "spotify": {
            "base_url": sandbox.url + BASE_PATHS["spotify"],
            "token_url": sandbox.url + BASE_PATHS["spotify_token"],
            "rate": 10 * speed,
        },
        "musicbrainz": {"base_url": sandbox.url + BASE_PATHS["musicbrainz"], "rate": speed},
        "discogs": {
            "base_url": sandbox.url + BASE_PATHS["discogs"],
            "rate": speed,
            "window": 60 / speed,
        },
        "lastfm": {"base_url": sandbox.url + BASE_PATHS["lastfm"], "rate": 5 * speed},
    }
    return gateway_settings(
        sandbox,
        tmp_path,
        APIGW_SANDBOX=False,
        APIGW_PROVIDERS=providers,
        **{f"APIGW_{k}": v for k, v in credentials.items()},
    )


@pytest_twisted.ensureDeferred
async def test_a_provider_without_credentials_is_skipped_with_one_warning(
    sandbox, tmp_path, caplog, monkeypatch
):
    monkeypatch.delenv("LASTFM_API_KEY", raising=False)
    settings = real_mode_settings(
        sandbox,
        tmp_path,
        SPOTIFY_CLIENT_ID="sandbox-client-id",
        SPOTIFY_CLIENT_SECRET="sandbox-client-secret",
        MUSICBRAINZ_USER_AGENT="apigw-tests/1.0 ( test@example.invalid )",
        DISCOGS_TOKEN="sandbox-discogs-token",
    )
    caplog.set_level(logging.WARNING)
    result = await run_crawl(ItemsSpider, settings, items=[dict(t) for t in TRACKS])
    assert [i["enrichment_status"] for i in result.items] == ["completed"] * 3
    assert all(
        i["enrichment_sources"] == ["spotify", "musicbrainz", "discogs"] for i in result.items
    )
    assert not any("lastfm" in r["provider"] for r in provider_calls(sandbox.log()))
    warnings = [r.getMessage() for r in caplog.records if "lastfm skipped" in r.getMessage()]
    assert len(warnings) == 1 and "APIGW_LASTFM_API_KEY" in warnings[0]
    assert "LASTFM_API_KEY" in warnings[0]


@pytest_twisted.ensureDeferred
async def test_refused_credentials_fail_that_provider_once_and_it_is_not_asked_again(
    sandbox, tmp_path, caplog
):
    settings = gateway_settings(sandbox, tmp_path, APIGW_LASTFM_API_KEY="not-the-key")
    caplog.set_level(logging.ERROR)
    result = await run_crawl(ItemsSpider, settings, items=[dict(t) for t in TRACKS], pause_after=1)
    assert [i["enrichment_status"] for i in result.items] == ["partial"] * 3
    assert all("credentials refused" in i["enrichment_errors"]["lastfm"] for i in result.items)
    assert all("spotify_id" in i and "label" in i for i in result.items)
    lastfm = [r for r in provider_calls(sandbox.log()) if r["provider"] == "lastfm"]
    assert len(lastfm) == 1 and lastfm[0]["query"]["api_key"] == "***"
    errors = [r.getMessage() for r in caplog.records if "skipped for the rest" in r.getMessage()]
    assert len(errors) == 1 and "not-the-key" not in errors[0]


@pytest_twisted.ensureDeferred
async def test_refused_spotify_credentials_cost_one_token_request_for_concurrent_items(
    sandbox, tmp_path
):
    # 12 items reach the pipeline at once (CONCURRENT_ITEMS 100): each needs a Spotify token.
    titles = [f"Track {n}" for n in range(12)]
    settings = real_mode_settings(
        sandbox,
        tmp_path,
        SPOTIFY_CLIENT_ID="sandbox-client-id",
        SPOTIFY_CLIENT_SECRET="not-the-secret",
        MUSICBRAINZ_USER_AGENT="apigw-tests/1.0 ( test@example.invalid )",
        WATERFALL=["spotify"],
    )
    items = [{"artist": "Daft Punk", "title": t} for t in titles]
    result = await run_crawl(ItemsSpider, settings, items=items)
    tokens = [r for r in sandbox.log() if r["path"].endswith("/api/token")]
    assert [r["status"] for r in tokens] == [400]
    assert len(result.items) == 12
    # The ones in flight share the refusal; the later ones meet the remembered refusal.
    errors = [i["enrichment_errors"]["spotify"] for i in result.items]
    assert set(errors) <= {
        "token request refused (HTTP 400, invalid_client)",
        "credentials refused earlier in this crawl",
    }
    assert result.stats["apigw/spotify/auth/refused"] == 1
    assert "apigw/spotify/auth/tokens" not in result.stats, "no token was obtained"
