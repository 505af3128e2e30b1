"""The coverage report: what share of the items got each enrichment field and each status.

Counted over the items that reached the feed (Scrapy's ``item_scraped`` signal: items a later
pipeline dropped are not counted). A field counts when the item has it with a value (not None,
``""``, ``[]`` or ``{}``): the pipeline sets a field only when a source answered it, and a value
the spider scraped itself counts too (it is in the feed).

At the end of the crawl the report is:

- logged as a small table (one INFO record, logger ``scrapy_apigw.ops.coverage``);
- in the stats: ``apigw/coverage/items`` (items counted), ``apigw/coverage/<field>`` (items
  with that field, a count) and ``apigw/coverage/status/<status>`` (items per
  ``enrichment_status``, ``none`` for items without one); percentages are in the log and JSON;
- with ``APIGW_REPORT_PATH``, written there as JSON (:func:`write_report`, atomic).

During the crawl :meth:`Coverage.report` gives the report so far, which
:func:`coverage_resource` serves as ``GET /stats``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter
from scrapy import Spider, signals
from scrapy.exceptions import NotConfigured

from scrapy_apigw.enrichment.fields import (
    OUTPUT_FIELDS,
    STATUS_COMPLETED,
    STATUS_FAILED,
    STATUS_PARTIAL,
    STATUS_SKIPPED,
)

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from twisted.web.resource import Resource
    from typing_extensions import Self

    from scrapy_apigw.gateway import Gateway

__all__ = [
    "COVERAGE_FIELDS",
    "FLEET_COUNTERS",
    "STATUSES",
    "Coverage",
    "CoverageExtension",
    "coverage_for",
    "coverage_resource",
    "format_table",
    "write_report",
]

logger = logging.getLogger(__name__)

#: The enrichment statuses, in report order; items without one are counted as ``none``.
STATUSES = (STATUS_COMPLETED, STATUS_PARTIAL, STATUS_FAILED, STATUS_SKIPPED)
NO_STATUS = "none"

#: The fields reported: the output fields carrying data (not the ``enrichment_*`` bookkeeping
#: nor ``enriched_at``), in docs/fields.md order.
COVERAGE_FIELDS = tuple(f for f in OUTPUT_FIELDS if not f.startswith("enrich"))

#: The cache counters (``{namespace}:v1:coverage``) every crawl adds its items' coverage to:
#: the fleet's report, served by ``apigw serve`` at ``/stats``.
FLEET_COUNTERS = "coverage"

#: The crawler attribute holding its :class:`Coverage` (read by :func:`coverage_for`).
_CRAWLER_ATTRIBUTE = "_apigw_coverage"


def _has_value(value: Any) -> bool:
    return value is not None and not (isinstance(value, str | list | dict) and not value)


def _share(count: int, total: int) -> dict[str, Any]:
    return {"count": count, "percent": round(100.0 * count / total, 1) if total else 0.0}


class Coverage:
    """Counts items per status and per field as they reach the feed."""

    def __init__(self) -> None:
        self.items = 0
        self.statuses: dict[str, int] = dict.fromkeys(STATUSES, 0)
        self.fields: dict[str, int] = dict.fromkeys(COVERAGE_FIELDS, 0)
        self.finished = False

    def add(self, item: Any) -> dict[str, int]:
        """Count one item (any itemadapter type); return what it added, as counter fields
        (``items``, ``status:<status>``, ``field:<field>``: see :meth:`from_counts`)."""
        adapter = ItemAdapter(item)
        self.items += 1
        status = adapter.get("enrichment_status")
        key = status if isinstance(status, str) and status else NO_STATUS
        self.statuses[key] = self.statuses.get(key, 0) + 1
        added = {"items": 1, f"status:{key}": 1}
        for name in COVERAGE_FIELDS:
            if _has_value(adapter.get(name)):
                self.fields[name] += 1
                added[f"field:{name}"] = 1
        return added

    @classmethod
    def from_counts(cls, counts: Mapping[str, int]) -> Coverage:
        """The coverage of counter fields summed over items (what :meth:`add` returns):
        ``items``, ``status:<status>``, ``field:<field>``; other fields are ignored."""
        coverage = cls()
        coverage.items = int(counts.get("items", 0))
        for field, value in counts.items():
            kind, _, name = field.partition(":")
            if kind == "status":
                coverage.statuses[name] = int(value)
            elif kind == "field" and name in coverage.fields:
                coverage.fields[name] = int(value)
        return coverage

    def report(self) -> dict[str, Any]:
        """The report as a JSON-ready dict::

            {"items": 220, "finished": true,
             "statuses": {"completed": {"count": 209, "percent": 95.0}, ...},
             "fields": {"spotify_id": {"count": 205, "percent": 93.2}, ...}}

        Every status and field is listed, zeros included (``none`` only when some item had no
        status); ``percent`` is of ``items``, one decimal (0.0 with no item). ``finished``:
        the crawl has ended (the numbers are final).
        """
        return {
            "items": self.items,
            "finished": self.finished,
            "statuses": {k: _share(v, self.items) for k, v in self.statuses.items()},
            "fields": {k: _share(v, self.items) for k, v in self.fields.items()},
        }

    def stats(self) -> dict[str, int]:
        """The ``apigw/coverage/*`` stats (counts; see the module docstring)."""
        values = {"apigw/coverage/items": self.items}
        values.update({f"apigw/coverage/status/{k}": v for k, v in self.statuses.items()})
        values.update({f"apigw/coverage/{k}": v for k, v in self.fields.items()})
        return values


def format_table(report: Mapping[str, Any]) -> str:
    """The report as the log's small table (status rows, then field rows)::

    apigw: coverage of 220 items
      status          count      %
      completed         209   95.0
      ...
      field           count      %
      spotify_id        205   93.2
    """
    rows = [f"apigw: coverage of {report['items']} items"]
    for title, section in (("status", report["statuses"]), ("field", report["fields"])):
        rows.append(f"  {title:<18} {'count':>7} {'%':>6}")
        for name, share in section.items():
            rows.append(f"  {name:<18} {share['count']:>7} {share['percent']:>6.1f}")
    return "\n".join(rows)


def write_report(path: str | os.PathLike[str], report: Mapping[str, Any]) -> Path:
    """Write *report* as JSON to *path* atomically (a temporary file in the same directory,
    then renamed over it: a reader sees the old file or the new one, never half of one).
    Missing directories are created. Returns the path written.

    Raises:
        OSError: the file cannot be written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(report, out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def report_path(template: str, spider_name: str, started: datetime) -> str:
    """``APIGW_REPORT_PATH`` with ``%(name)s`` (the spider's name) and ``%(time)s`` (the UTC
    start time, ``2026-12-02T13-05-09``) filled in, as ``FEEDS`` URIs are."""
    return template % {"name": spider_name, "time": started.strftime("%Y-%m-%dT%H-%M-%S")}


def coverage_for(crawler: Crawler) -> Coverage | None:
    """The crawler's coverage counts, or None when its extension is not enabled."""
    return getattr(crawler, _CRAWLER_ATTRIBUTE, None)


class CoverageExtension:
    """Counts the coverage as items reach the feed and reports it when the spider closes
    (module docstring). Enabled by the add-on.

    Raises:
        NotConfigured: (from :meth:`from_crawler`) the gateway is disabled.
    """

    def __init__(self, crawler: Crawler, path: str | None) -> None:
        self.crawler = crawler
        self.path = path
        self.coverage = Coverage()
        self.started = datetime.now(timezone.utc)
        self.gateway: Gateway | None = None
        setattr(crawler, _CRAWLER_ATTRIBUTE, self.coverage)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        """Build the extension for *crawler* (Scrapy's component factory)."""
        from scrapy_apigw.gateway import Gateway
        from scrapy_apigw.settings import settings_at_start

        settings = settings_at_start(crawler.settings)
        if settings is None:
            raise NotConfigured("APIGW_ENABLED is False")
        extension = cls(crawler, settings.report_path)
        extension.gateway = Gateway.for_crawler(crawler)
        crawler.signals.connect(extension.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def report(self) -> dict[str, Any]:
        """The report so far (:meth:`Coverage.report`)."""
        return self.coverage.report()

    def item_scraped(self, item: Any, spider: Spider | None = None, **_: Any) -> None:
        """Count one item that reached the feed, here and (with a cache that keeps counters)
        in the fleet's counts that ``apigw serve``'s ``/stats`` reports."""
        added = self.coverage.add(item)
        cache = self.gateway.cache if self.gateway is not None else None
        if cache is not None:
            cache.tally(FLEET_COUNTERS, added)

    def spider_closed(self, spider: Spider | None = None, **_: Any) -> None:
        """Log the table, set the stats, write the JSON file."""
        self.coverage.finished = True
        report = self.coverage.report()
        for key, value in self.coverage.stats().items():
            self.crawler.stats.set_value(key, value)
        logger.info("%s", format_table(report))
        if self.path:
            name = spider.name if spider is not None else "spider"
            path = report_path(self.path, name, self.started)
            try:
                write_report(path, report)
            except OSError as exc:
                logger.error(
                    "apigw: could not write the coverage report to %s (APIGW_REPORT_PATH): %s",
                    path,
                    exc.strerror or type(exc).__name__,
                )
            else:
                logger.info("apigw: coverage report written to %s", path)


def coverage_resource(get_report: Callable[[], Mapping[str, Any]]) -> Resource:
    """The ``/stats`` resource: ``GET`` answers ``get_report()`` as JSON (200,
    ``application/json``); any other method 405 with ``Allow: GET, HEAD``.

    Args:
        get_report: returns the current report, e.g. :meth:`CoverageExtension.report`, or
            ``coverage_for(crawler).report``.
    """
    from twisted.web.resource import Resource

    class StatsResource(Resource):
        isLeaf = True

        def render(self, request: Any) -> bytes:
            method = request.method.decode("ascii", "replace")
            if method not in ("GET", "HEAD"):
                request.setResponseCode(405)
                request.setHeader(b"Allow", b"GET, HEAD")
                request.setHeader(b"Content-Type", b"application/json")
                return json.dumps({"error": f"method {method} not allowed"}).encode()
            request.setHeader(b"Content-Type", b"application/json")
            request.setHeader(b"Cache-Control", b"no-store")
            return json.dumps(get_report()).encode()

    return StatsResource()
