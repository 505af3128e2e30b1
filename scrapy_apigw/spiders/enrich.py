"""``apigw_enrich``: enrich an existing catalog, or replay the dead letters that are due.

::

    scrapy crawl apigw_enrich -a input=catalog.jsonl -O enriched.jsonl
    scrapy crawl apigw_enrich -a input=tracks.csv -O enriched.csv
    scrapy crawl apigw_enrich -a dead_letters=1 -O replayed.jsonl

The design documents' ``/enrich/batch``: every track goes through the same
``APIEnrichmentPipeline`` as a scraped one (cache, limits, dead letters). The input is read
lazily and at most ``CONCURRENT_ITEMS`` tracks (Scrapy's setting, default 100) are in the item
pipelines at once: ``start()`` waits for one to leave before it reads the next, so memory does
not grow with the input's length. (Scrapy itself bounds items only per response: items yielded
from ``start()`` would all enter the pipelines at once.)
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import scrapy
from scrapy import signals
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import Deferred

from scrapy_apigw.spiders.inputs import FORMATS, BadLine, detect_format, read_tracks

__all__ = ["EnrichSpider"]

logger = logging.getLogger(__name__)

_TRUE = ("1", "true", "yes", "on")


class EnrichSpider(scrapy.Spider):
    """Yields the tracks of ``-a input=FILE`` (JSON Lines, CSV with a header, or a JSON list;
    ``-a format=jsonl|csv|json`` when the name does not tell), then, with
    ``-a dead_letters=1``, the dead letters due for replay (``APIGW_DEADLETTER_*``).

    A bad record (not JSON, not an object, a CSV row of the wrong width, nothing to look up)
    is skipped with one warning naming its line; the stat ``apigw/enrich/bad_lines`` counts
    them. Stats: ``apigw/enrich/lines`` (records read), ``apigw/enrich/tracks`` (yielded),
    ``apigw/deadletters/replayed``.

    Raises:
        ValueError: neither ``input`` nor ``dead_letters`` given, or an unknown ``format``.
    """

    name = "apigw_enrich"

    def __init__(
        self,
        input: str | None = None,
        dead_letters: str | bool | None = None,
        format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.input_path = input
        self.dead_letters = str(dead_letters).strip().lower() in _TRUE if dead_letters else False
        if format is not None and format not in FORMATS:
            raise ValueError(f"-a format={format!r}: expected one of {', '.join(FORMATS)}")
        self.input_format = format
        if not self.input_path and not self.dead_letters:
            raise ValueError("apigw_enrich needs -a input=FILE and/or -a dead_letters=1")
        self._yielded = 0
        self._finished = 0
        self._room: Deferred[None] | None = None

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> EnrichSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        for signal in (signals.item_scraped, signals.item_dropped, signals.item_error):
            crawler.signals.connect(spider._item_left, signal=signal)
        return spider

    async def start(self) -> AsyncIterator[Any]:
        if self.input_path:
            async for item in self._bounded(self._catalog(self.input_path)):
                yield item
        if self.dead_letters:
            async for item in self._bounded(self._due()):
                yield item

    # -- sources ------------------------------------------------------------------------------

    async def _catalog(self, path: str) -> AsyncIterator[dict[str, Any]]:
        from scrapy_apigw.gateway import Gateway

        fields = Gateway.for_crawler(self.crawler).settings.input_fields
        with open(path, encoding="utf-8-sig", newline="") as stream:
            fmt = self.input_format or detect_format(path, stream.read(64))
            stream.seek(0)
            for line, row in read_tracks(stream, fmt, fields):
                self._inc("apigw/enrich/lines")
                if isinstance(row, BadLine):
                    self._inc("apigw/enrich/bad_lines")
                    logger.warning(
                        "apigw_enrich: %s line %d: %s; skipped",
                        os.path.basename(path),
                        line,
                        row.reason,
                    )
                    continue
                yield row

    async def _due(self) -> AsyncIterator[dict[str, Any]]:
        from scrapy_apigw.pipelines import pipeline_for

        pipeline = pipeline_for(self.crawler)
        queue = pipeline.deadletters if pipeline is not None else None
        if queue is None:
            logger.error(
                "apigw_enrich: no dead letters to replay: the enrichment pipeline or "
                "APIGW_DEADLETTER_ENABLED is off"
            )
            return
        schedule = pipeline.settings.deadletters.schedule  # type: ignore[union-attr]
        logger.info(
            "apigw_enrich: replaying dead letters from %s: failed with fewer than %d "
            "attempts, partial last tried more than %g s ago",
            queue.describe(),
            schedule.max_attempts,
            schedule.partial_after,
        )
        async for record in queue.due(schedule):
            self._inc("apigw/deadletters/replayed")
            yield dict(record.inputs)

    # -- bounded in-flight ---------------------------------------------------------------------

    async def _bounded(self, source: AsyncIterator[dict[str, Any]]) -> AsyncIterator[Any]:
        limit = max(1, self.settings.getint("CONCURRENT_ITEMS", 100))
        async for item in source:
            while self._yielded - self._finished >= limit:
                self._room = Deferred()
                await maybe_deferred_to_future(self._room)
            self._yielded += 1
            self._inc("apigw/enrich/tracks")
            yield item

    def _item_left(self, *args: Any, **kwargs: Any) -> None:
        self._finished += 1
        room, self._room = self._room, None
        if room is not None and not room.called:
            room.callback(None)

    def _inc(self, key: str) -> None:
        self.crawler.stats.inc_value(key)
