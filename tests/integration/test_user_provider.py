"""A provider defined only in a user's settings, with a credential, works end to end (issue 9
section 3): a real crawl (get_crawler) through the add-on, the gateway, the cache and the auth
layer, against a tiny loopback API; the secret reaches the API and nothing else."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest_twisted
from conftest import gateway_settings, run_crawl
from spiders import ItemsSpider
from user_provider import MoodApi

SECRET = "moodbase-s3cr3t-token-4242"
ITEMS = [
    {"artist": "Daft Punk", "title": "Da Funk"},
    {"artist": "Moloko", "title": "Sing It Back"},
    {"artist": "Nobody", "title": "Nothing"},
]


def moodbase_settings(sandbox, tmp_path, url, **extra):
    """Everything about "moodbase" is in these settings: URL, limits, TTL, client class path,
    credential and how it goes on a request."""
    provider = {
        "base_url": url,
        "rate": 50,
        "burst": 5,
        "cache_ttl": {"mood": 86400},
        "client": "user_provider:MoodClient",
        "credentials": {"token": "MOODBASE_TOKEN"},
        "auth": {"header": "Authorization", "template": "Bearer {token}"},
    }
    return gateway_settings(
        sandbox,
        tmp_path,
        APIGW_PROVIDERS={"moodbase": provider},
        APIGW_WATERFALL=["moodbase"],
        LOG_LEVEL="DEBUG",
        **extra,
    )


async def _serve(api: MoodApi):
    from twisted.internet import reactor
    from twisted.web.server import Site

    port = reactor.listenTCP(0, Site(api), interface="127.0.0.1")
    return port, f"http://127.0.0.1:{port.getHost().port}"


@pytest_twisted.ensureDeferred
async def test_a_provider_defined_only_in_settings_with_a_credential_works_end_to_end(
    sandbox, tmp_path, caplog, monkeypatch
):
    monkeypatch.delenv("MOODBASE_TOKEN", raising=False)
    api = MoodApi(SECRET)
    port, url = await _serve(api)
    caplog.set_level(logging.DEBUG)
    try:
        settings = moodbase_settings(sandbox, tmp_path, url, APIGW_MOODBASE_TOKEN=SECRET)
        result = await run_crawl(ItemsSpider, settings, items=[dict(i) for i in ITEMS])
    finally:
        await port.stopListening()
    items = {i["title"]: i for i in result.items}
    assert (items["Da Funk"]["moodbase_id"], items["Da Funk"]["mood"]) == ("mb-1", "funky")
    assert (items["Sing It Back"]["moodbase_id"], items["Sing It Back"]["mood"]) == ("mb-2", "warm")
    assert items["Nothing"]["enrichment_sources"] == []
    assert [i["enrichment_status"] for i in result.items] == ["completed"] * 3
    # The secret went on the wire, as declared, to the provider only...
    assert api.authorizations == [f"Bearer {SECRET}"] * 3
    assert result.stats["apigw/moodbase/requests"] == 3
    # ...and nowhere else: not in the logs (DEBUG included), the stats, the feed or the cache.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET not in logged
    assert SECRET not in repr(result.stats)
    feed = Path(next(iter(settings["FEEDS"]))).read_text("utf-8")
    assert SECRET not in feed
    assert sorted(json.loads(line).get("mood", "") for line in feed.splitlines()) == [
        "",
        "funky",
        "warm",
    ]
    assert SECRET.encode() not in Path(settings["APIGW_CACHE_PATH"]).read_bytes()
    # Its credential setting is known: no "unknown setting" warning.
    assert "unknown setting" not in logged


@pytest_twisted.ensureDeferred
async def test_a_provider_of_ones_own_without_its_credential_is_skipped_with_one_warning(
    sandbox, tmp_path, caplog, monkeypatch
):
    monkeypatch.delenv("MOODBASE_TOKEN", raising=False)
    api = MoodApi(SECRET)
    port, url = await _serve(api)
    caplog.set_level(logging.WARNING)
    try:
        settings = moodbase_settings(sandbox, tmp_path, url)
        result = await run_crawl(ItemsSpider, settings, items=[dict(i) for i in ITEMS])
    finally:
        await port.stopListening()
    assert api.authorizations == []
    warnings = [r.getMessage() for r in caplog.records if "moodbase skipped" in r.getMessage()]
    assert len(warnings) == 1 and "APIGW_MOODBASE_TOKEN" in warnings[0]
    assert all("mood" not in i for i in result.items)


@pytest_twisted.ensureDeferred
async def test_a_provider_declared_in_a_module_of_the_project_works_end_to_end(
    sandbox, tmp_path, caplog, monkeypatch
):
    monkeypatch.setenv("MOODBASE_TOKEN", "not-used-in-sandbox-mode")
    api = MoodApi(SECRET)
    port, url = await _serve(api)
    caplog.set_level(logging.DEBUG)
    try:
        settings = gateway_settings(
            sandbox,
            tmp_path,
            APIGW_PROVIDER_MODULES=["user_provider:declared"],
            APIGW_PROVIDERS={"moodbase": {"base_url": url}},  # the module's URL, overridden
            APIGW_WATERFALL=["moodbase"],
            APIGW_MOODBASE_TOKEN=SECRET,
            LOG_LEVEL="DEBUG",
        )
        result = await run_crawl(ItemsSpider, settings, items=[dict(i) for i in ITEMS[:2]])
    finally:
        await port.stopListening()
    assert {i["title"]: i["mood"] for i in result.items} == {
        "Da Funk": "funky",
        "Sing It Back": "warm",
    }
    assert api.authorizations == [f"Bearer {SECRET}"] * 2
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET not in logged and SECRET not in repr(result.stats)
