"""Which cache a crawl uses, said in its log; a cache that cannot open does not stop the crawl."""

from __future__ import annotations

import logging

import pytest_twisted
from conftest import gateway_settings, run_crawl
from spiders import ItemsSpider

TRACKS = [
    {"artist": "Daft Punk", "title": "One More Time"},
    {"artist": "Daft Punk", "title": "Around the World"},
    {"artist": "Daft Punk", "title": "Da Funk"},
]


def messages(caplog, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


@pytest_twisted.ensureDeferred
async def test_a_cache_that_cannot_open_costs_one_warning_and_the_crawl_goes_on(
    sandbox, tmp_path, caplog
):
    (tmp_path / "blocker").write_text("a file where the cache directory should be")
    path = tmp_path / "blocker" / "cache.sqlite3"
    settings = gateway_settings(sandbox, tmp_path, APIGW_CACHE_PATH=str(path))
    caplog.set_level(logging.INFO)
    result = await run_crawl(ItemsSpider, settings, items=[dict(t) for t in TRACKS])
    assert [i["enrichment_status"] for i in result.items] == ["completed"] * 3
    warnings = [m for m in messages(caplog, logging.WARNING) if "Cache unavailable" in m]
    assert len(warnings) == 1 and f"sqlite:{path}" in warnings[0]
    assert f"apigw: cache: embedded sqlite:{path} (unavailable for now: lookups are misses)" in (
        messages(caplog, logging.INFO)
    )
    assert result.stats["apigw/spotify/cache/miss"] >= 3
    assert "apigw/spotify/cache/store" not in result.stats


@pytest_twisted.ensureDeferred
async def test_a_scrapyd_job_without_cache_path_caches_in_the_user_cache_dir(
    sandbox, tmp_path, caplog, monkeypatch
):
    # What Scrapyd gives a job: the egg's settings module, the project name, no scrapy.cfg.
    (tmp_path / "egg" / "jobproject").mkdir(parents=True)
    (tmp_path / "egg" / "jobproject" / "__init__.py").write_text("")
    (tmp_path / "egg" / "jobproject" / "settings.py").write_text("BOT_NAME = 'jobproject'\n")
    monkeypatch.syspath_prepend(str(tmp_path / "egg"))
    monkeypatch.setenv("SCRAPY_SETTINGS_MODULE", "jobproject.settings")
    monkeypatch.setenv("SCRAPY_PROJECT", "tracklists")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    (tmp_path / "scrapyd").mkdir()
    monkeypatch.chdir(tmp_path / "scrapyd")
    settings = gateway_settings(sandbox, tmp_path, APIGW_CACHE_PATH=None)
    caplog.set_level(logging.INFO)
    result = await run_crawl(ItemsSpider, settings, items=[dict(t) for t in TRACKS])
    assert [i["enrichment_status"] for i in result.items] == ["completed"] * 3
    path = tmp_path / "xdg-cache" / "scrapy-apigw" / "tracklists" / "cache.sqlite3"
    assert f"apigw: cache: embedded sqlite:{path}" in messages(caplog, logging.INFO)
    assert path.is_file() and result.stats["apigw/spotify/cache/store"] >= 3
    assert not [m for m in messages(caplog, logging.WARNING) if "ache" in m]
