"""Coverage counting, the JSON file, and the ``/stats`` resource over a real socket."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import pytest
import pytest_twisted
import treq
from twisted.internet.defer import maybeDeferred

from scrapy_apigw.ops.coverage import (
    COVERAGE_FIELDS,
    Coverage,
    coverage_resource,
    format_table,
    report_path,
    write_report,
)


@dataclass
class Track:
    """An item class without enrichment_status: counted as status ``none``."""

    title: str = ""
    bpm: float | None = None


def counted() -> Coverage:
    coverage = Coverage()
    coverage.add({"enrichment_status": "completed", "spotify_id": "x", "bpm": 120.0, "key": ""})
    coverage.add({"enrichment_status": "completed", "spotify_id": "y", "lastfm_tags": []})
    coverage.add({"enrichment_status": "partial", "isrc": "GBDUW0000059", "bpm": 0.0})
    coverage.add({"enrichment_status": "skipped"})
    coverage.add(Track("t", 99.5))
    return coverage


def test_fields_count_when_they_have_a_value_and_statuses_per_item():
    report = counted().report()
    assert report["items"] == 5 and report["finished"] is False
    assert report["statuses"] == {
        "completed": {"count": 2, "percent": 40.0},
        "partial": {"count": 1, "percent": 20.0},
        "failed": {"count": 0, "percent": 0.0},
        "skipped": {"count": 1, "percent": 20.0},
        "none": {"count": 1, "percent": 20.0},
    }
    fields = report["fields"]
    assert list(fields) == list(COVERAGE_FIELDS)
    assert fields["spotify_id"] == {"count": 2, "percent": 40.0}
    assert fields["bpm"] == {"count": 3, "percent": 60.0}  # 0.0 is a value; None is not
    assert fields["key"]["count"] == 0  # empty string
    assert fields["lastfm_tags"]["count"] == 0  # empty list
    assert "enrichment_status" not in fields and "enriched_at" not in fields


def test_stats_are_counts():
    stats = counted().stats()
    assert stats["apigw/coverage/items"] == 5
    assert stats["apigw/coverage/status/completed"] == 2
    assert stats["apigw/coverage/status/none"] == 1
    assert stats["apigw/coverage/bpm"] == 3
    assert stats["apigw/coverage/musicbrainz_id"] == 0


def test_no_item_gives_zero_percent_not_an_error():
    report = Coverage().report()
    assert report["items"] == 0
    assert report["fields"]["bpm"] == {"count": 0, "percent": 0.0}


def test_the_table_lists_statuses_then_fields():
    lines = format_table(counted().report()).splitlines()
    assert lines[0] == "apigw: coverage of 5 items"
    assert lines[1].split() == ["status", "count", "%"]
    assert lines[2].split() == ["completed", "2", "40.0"]
    assert lines.index(next(row for row in lines if row.split()[0] == "field")) == 7
    assert ["bpm", "3", "60.0"] in [line.split() for line in lines]


def test_the_report_file_is_replaced_atomically(tmp_path, monkeypatch):
    target = tmp_path / "deep" / "report.json"
    write_report(target, {"items": 1})
    assert json.loads(target.read_text()) == {"items": 1}

    def broken(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        write_report(target, {"items": 2})
    assert json.loads(target.read_text()) == {"items": 1}, "the old report is intact"
    assert [p.name for p in target.parent.iterdir()] == ["report.json"], "no temp file left"


def test_the_report_path_takes_the_spider_name_and_start_time():
    from datetime import datetime, timezone

    started = datetime(2026, 12, 2, 13, 5, 9, tzinfo=timezone.utc)
    assert report_path("/r/%(name)s-%(time)s.json", "tracks", started) == (
        "/r/tracks-2026-12-02T13-05-09.json"
    )
    assert report_path("/r/plain.json", "tracks", started) == "/r/plain.json"


@pytest_twisted.ensureDeferred
async def test_get_stats_answers_the_current_report_and_other_methods_405():
    from twisted.internet import reactor
    from twisted.web.resource import Resource
    from twisted.web.server import Site

    coverage = counted()
    root = Resource()
    root.putChild(b"stats", coverage_resource(coverage.report))
    port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
    url = f"http://127.0.0.1:{port.getHost().port}/stats"
    try:
        response = await treq.get(url, persistent=False)
        assert response.code == 200
        assert response.headers.getRawHeaders(b"content-type") == [b"application/json"]
        body = json.loads(await response.content())
        assert body == coverage.report()

        coverage.add({"enrichment_status": "failed"})  # the report is read at each request
        response = await treq.get(url, persistent=False)
        body = json.loads(await response.content())
        assert body["items"] == 6 and body["statuses"]["failed"]["count"] == 1

        for method in ("POST", "DELETE", "PUT"):
            response = await treq.request(method, url, persistent=False)
            assert response.code == 405, method
            assert response.headers.getRawHeaders(b"allow") == [b"GET, HEAD"]
            await response.content()
    finally:
        await maybeDeferred(port.stopListening)
