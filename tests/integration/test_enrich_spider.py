"""The built-in ``apigw_enrich`` spider on real crawls against the sandbox: a catalog as JSON
Lines, CSV or a JSON list, bad records skipped with their line numbers; and the add-on making
the spider exist in every project (``scrapy list``)."""

from __future__ import annotations

import csv
import io
import json
import logging
import subprocess
import sys

import pytest
import pytest_twisted
from conftest import EXAMPLE_PROJECT, example_crawl_env, gateway_settings, run_crawl

from scrapy_apigw.spiders.enrich import EnrichSpider


def catalog(sandbox, count=3):
    tracks = sandbox.catalog()["tracks"][:count]
    return [
        {"artist": t["artists"][0], "title": t["title"], "ref": i} for i, t in enumerate(tracks)
    ]


def jsonl_file(tracks):
    lines = [json.dumps(tracks[0]), "{not json", json.dumps(tracks[1]), "", '"a string"']
    lines.append(json.dumps(tracks[2]))
    # bad: line 2 (not JSON), line 5 (not an object); line 4 is blank (skipped silently)
    return "\n".join(lines) + "\n", [2, 5]


def csv_file(tracks):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["artist", "title", "ref"])
    writer.writerow([tracks[0]["artist"], tracks[0]["title"], 0])
    writer.writerow(["only", "two", "fields", "too many"])  # line 3
    writer.writerow([tracks[1]["artist"], tracks[1]["title"], 1])
    writer.writerow(["", "", 9])  # line 5: nothing to look up
    writer.writerow([tracks[2]["artist"], tracks[2]["title"], 2])
    return out.getvalue(), [3, 5]


def json_list_file(tracks):
    body = [json.dumps(tracks[0]), '{"artist": "x", "title": }', json.dumps(tracks[1])]
    body.append(json.dumps(tracks[2]))
    # line 1 is "[", elements on lines 2..5; line 3 is broken
    return "[\n" + ",\n".join(body) + "\n]\n", [3]


@pytest.mark.parametrize(
    "suffix, build",
    [(".jsonl", jsonl_file), (".csv", csv_file), (".json", json_list_file)],
    ids=["jsonl", "csv", "json-list"],
)
@pytest_twisted.ensureDeferred
async def test_a_catalog_is_enriched_and_bad_lines_are_reported_by_number(
    sandbox, tmp_path, caplog, suffix, build
):
    caplog.set_level(logging.WARNING)
    tracks = catalog(sandbox)
    text, bad_lines = build(tracks)
    path = tmp_path / f"catalog{suffix}"
    path.write_text(text, encoding="utf-8")
    result = await run_crawl(EnrichSpider, gateway_settings(sandbox, tmp_path), input=str(path))

    assert sorted(str(i["ref"]) for i in result.items) == ["0", "1", "2"]
    assert all(i["enrichment_status"] == "completed" for i in result.items), result.statuses()
    assert all(i.get("spotify_id") and i.get("musicbrainz_id") for i in result.items)
    assert result.stats["apigw/enrich/tracks"] == 3
    assert result.stats["apigw/enrich/bad_lines"] == len(bad_lines)
    warned = [r.getMessage() for r in caplog.records if r.getMessage().startswith("apigw_enrich:")]
    assert len(warned) == len(bad_lines), warned
    for line, message in zip(bad_lines, warned, strict=True):
        assert message.startswith(f"apigw_enrich: {path.name} line {line}: "), message
        assert message.endswith("; skipped")
    assert result.stats.get("finish_reason") == "finished"


def test_scrapy_list_in_the_example_project_shows_the_builtin_spider():
    """The example lists ``scrapy_apigw.spiders`` in SPIDER_MODULES, as a Scrapyd project must
    (``scrapy list`` ignores add-ons; Scrapyd's schedule.json checks that list)."""
    listed = subprocess.run(
        [sys.executable, "-m", "scrapy", "list"],
        cwd=EXAMPLE_PROJECT,
        env=example_crawl_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert listed.stdout.split() == ["apigw_enrich", "tracklists"]


def test_scrapy_crawl_finds_the_spider_through_the_addon_alone(sandbox, tmp_path):
    """``scrapy crawl apigw_enrich`` in a project whose SPIDER_MODULES does not name it: the
    add-on's ``update_pre_crawler_settings`` appended it before the spider loader was built."""
    tracks = catalog(sandbox, 2)
    catalog_path = tmp_path / "catalog.jsonl"
    catalog_path.write_text("".join(json.dumps(t) + "\n" for t in tracks), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "scrapy",
            "crawl",
            "apigw_enrich",
            "-a",
            f"input={catalog_path}",
            "-O",
            str(out),
            "-s",
            "SPIDER_MODULES=tracklists.spiders",
            "-s",
            f"APIGW_SANDBOX_URL={sandbox.url}",
            "-s",
            f"APIGW_CACHE_PATH={tmp_path / 'cache.sqlite3'}",
            "-s",
            f"APIGW_DEADLETTER_PATH={tmp_path / 'dl.sqlite3'}",
        ],
        cwd=EXAMPLE_PROJECT,
        env=example_crawl_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    items = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert sorted(i["ref"] for i in items) == [0, 1]
    assert all(i["enrichment_status"] == "completed" for i in items)


def test_without_the_addon_or_disabled_nothing_is_added():
    from scrapy.addons import AddonManager
    from scrapy.settings import Settings

    on = Settings({"ADDONS": {"scrapy_apigw.Addon": 500}, "SPIDER_MODULES": ["a.spiders"]})
    AddonManager.load_pre_crawler_settings(on)
    assert on.getlist("SPIDER_MODULES") == ["a.spiders", "scrapy_apigw.spiders"]
    AddonManager.load_pre_crawler_settings(on)  # twice: still once
    assert on.getlist("SPIDER_MODULES") == ["a.spiders", "scrapy_apigw.spiders"]
    off = Settings({"ADDONS": {"scrapy_apigw.Addon": 500}, "APIGW_ENABLED": False})
    AddonManager.load_pre_crawler_settings(off)
    assert "scrapy_apigw.spiders" not in off.getlist("SPIDER_MODULES")


class InFlightProbe:
    """An item pipeline before the enrichment pipeline: records how many items the enrichment
    pipeline holds each time a new item arrives."""

    seen: list[int] = []  # noqa: RUF012 - one crawl per test

    def __init__(self, crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_item(self, item):
        from scrapy_apigw.pipelines import pipeline_for

        pipeline = pipeline_for(self.crawler)
        InFlightProbe.seen.append(len(pipeline.in_flight()) if pipeline else -1)
        return item


@pytest_twisted.ensureDeferred
async def test_items_in_flight_are_bounded_by_concurrent_items(sandbox, tmp_path):
    """With Spotify answering 0.3 s late and CONCURRENT_ITEMS = 3, a new line is read only once
    an item left: the enrichment pipeline never holds more than 2 when one arrives (the third
    is that one), and it does hold 2 (the bound is reached, not just respected)."""
    tracks = [dict(t, ref=i) for i, t in enumerate(catalog(sandbox, 3) * 4)]
    path = tmp_path / "catalog.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in tracks), encoding="utf-8")
    sandbox.set_faults("spotify", latency=0.3)
    InFlightProbe.seen = []
    settings = gateway_settings(
        sandbox,
        tmp_path,
        CONCURRENT_ITEMS=3,
        APIGW_CACHE_ENABLED=False,
        APIGW_WATERFALL=["spotify"],
        ITEM_PIPELINES={InFlightProbe: 100},
    )
    result = await run_crawl(EnrichSpider, settings, input=str(path))
    assert len(result.items) == 12
    assert len(InFlightProbe.seen) == 12
    assert max(InFlightProbe.seen) == 2, InFlightProbe.seen
