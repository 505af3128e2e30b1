"""The coverage report at crawl end equals counts made independently from the feed."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest_twisted
from conftest import gateway_settings, run_crawl
from spiders import ItemsSpider

FOUND = [
    {"artist": "Daft Punk", "title": "One More Time"},
    {"artist": "Moby", "title": "Porcelain"},
    {"artist": "Air", "title": "Sexy Boy"},
    {"artist": "Massive Attack", "title": "Teardrop"},
]
UNKNOWN = [{"artist": "Nobody At All", "title": "No Such Song"}]
NOTHING = [{"title": ""}, {"note": "no track here"}]

FIELDS = ["spotify_id", "isrc", "musicbrainz_id", "discogs_id", "bpm", "key", "camelot_key"]


def feed_counts(items):
    """Items per status and per field, counted from the feed (absent or empty: not counted)."""
    statuses: dict[str, int] = {}
    fields: dict[str, int] = {}
    for item in items:
        status = item.get("enrichment_status", "none")
        statuses[status] = statuses.get(status, 0) + 1
        for name, value in item.items():
            if value not in (None, "", [], {}):
                fields[name] = fields.get(name, 0) + 1
    return statuses, fields


@pytest_twisted.ensureDeferred
async def test_the_coverage_numbers_equal_the_counts_from_the_feed(sandbox, tmp_path: Path, caplog):
    # Last.fm refuses everything (HTTP 400, not retried): the looked-up items are partial.
    sandbox.set_faults("lastfm", outage=True, error_status=400)
    report_file = tmp_path / "reports" / "coverage-%(name)s.json"
    settings = gateway_settings(
        sandbox, tmp_path, APIGW_REPORT_PATH=str(report_file), APIGW_PROGRESS_INTERVAL=0
    )
    items = [dict(t) for t in FOUND + UNKNOWN + NOTHING]
    with caplog.at_level(logging.INFO, logger="scrapy_apigw.ops.coverage"):
        result = await run_crawl(ItemsSpider, settings, items=items)
    assert len(result.items) == len(items)
    statuses, fields = feed_counts(result.items)
    assert statuses == {"partial": 5, "skipped": 2}, statuses
    assert fields["bpm"] == 4 and "lastfm_tags" not in fields  # what the sandbox knows

    stats = result.stats
    assert stats["apigw/coverage/items"] == len(items)
    for status in ("completed", "partial", "failed", "skipped"):
        assert stats[f"apigw/coverage/status/{status}"] == statuses.get(status, 0), status
    for name in [*FIELDS, "label", "release_date", "lastfm_tags", "lastfm_playcount"]:
        assert stats[f"apigw/coverage/{name}"] == fields.get(name, 0), name

    written = tmp_path / "reports" / "coverage-items.json"
    report = json.loads(written.read_text("utf-8"))
    assert report["items"] == 7 and report["finished"] is True
    assert report["statuses"]["partial"] == {"count": 5, "percent": 71.4}
    assert report["statuses"]["skipped"] == {"count": 2, "percent": 28.6}
    assert report["statuses"]["completed"] == {"count": 0, "percent": 0.0}
    assert report["fields"]["bpm"] == {"count": 4, "percent": 57.1}
    for name, share in report["fields"].items():
        assert share["count"] == fields.get(name, 0), name
    assert not list(written.parent.glob(".*.tmp")), "no temporary file left behind"

    (table,) = [r.getMessage() for r in caplog.records if "coverage of" in r.getMessage()]
    lines = table.splitlines()
    assert lines[0] == "apigw: coverage of 7 items"
    assert any(line.split() == ["partial", "5", "71.4"] for line in lines), table
    assert any(line.split() == ["bpm", "4", "57.1"] for line in lines), table
