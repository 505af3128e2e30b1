"""``APIEnrichmentPipeline``: enrich every scraped track from the providers, lose no item."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter
from scrapy import Spider

from scrapy_apigw.enrichment.fields import STATUS_FAILED, STATUS_SKIPPED
from scrapy_apigw.enrichment.items import read_track, write_fields
from scrapy_apigw.enrichment.run import INTERRUPTED, ItemRun, item_timeout_reason
from scrapy_apigw.enrichment.waterfall import Enrichment, Waterfall
from scrapy_apigw.gateway import Gateway
from scrapy_apigw.providers.base import ProviderClient, TrackContext
from scrapy_apigw.providers.clients import build_client
from scrapy_apigw.transport import Transport

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from typing_extensions import Self

    from scrapy_apigw.cache import ResponseCache
    from scrapy_apigw.deadletters.queue import DeadLetterQueue

logger = logging.getLogger(__name__)

#: The crawler attribute holding its pipeline (as the gateway's: no module-level registry that
#: would keep crawlers alive), read by :func:`pipeline_for`.
_CRAWLER_ATTRIBUTE = "_apigw_pipeline"


def pipeline_for(crawler: Crawler) -> APIEnrichmentPipeline | None:
    """The crawler's enrichment pipeline, or None when it has none (e.g. the progress
    extension of a crawl with ``APIGW_PIPELINE_ENABLED = False``)."""
    return getattr(crawler, _CRAWLER_ATTRIBUTE, None)


class APIEnrichmentPipeline:
    """Enriches items that carry a track (``artist`` + ``title``, or ``spotify_id`` / ``isrc``).

    For each item (any itemadapter type) it runs the waterfall Spotify → MusicBrainz →
    Discogs → Last.fm (``APIGW_WATERFALL``) through the crawler's gateway (same token buckets,
    breakers and retry policies as the downloader middlewares) and the cache
    (``APIGW_REDIS_URL``, else an embedded cache under ``.scrapy/``), then sets the output
    fields (see ``docs/fields.md``) and ``enrichment_status``. Every item is returned, enriched
    or marked with why not: no item is ever dropped, whatever happens.

    Providers without credentials are skipped with one warning each, and so is MusicBrainz
    with a User-Agent it would refuse (no application or no contact named).

    Every item is bounded in time. ``APIGW_ITEM_TIMEOUT`` seconds after it arrived, its pending
    calls are cancelled and it is emitted with what it has, the providers it did not finish
    ``failed`` with ``"item timeout (<n> s)"``. Once the engine starts closing the spider
    (graceful stop), items in the pipeline get at most ``APIGW_SHUTDOWN_TIMEOUT`` more seconds
    (no new provider request is sent; waits end at once), then the same happens with the reason
    ``"interrupted"``; items arriving after that moment are answered from the cache only.

    Raises:
        NotConfigured: (from :meth:`from_crawler`) the gateway is disabled.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.gateway = Gateway.for_crawler(crawler)
        self.settings = self.gateway.settings
        self.stats = crawler.stats
        self.cache: ResponseCache | None = None
        self.transport: Transport | None = None
        self.waterfall: Waterfall | None = None
        #: dead letters of failed and partial items (None: APIGW_DEADLETTER_ENABLED = False)
        self.deadletters: DeadLetterQueue | None = None
        self._runs: set[ItemRun] = set()
        setattr(crawler, _CRAWLER_ATTRIBUTE, self)

    @property
    def providers(self) -> tuple[str, ...]:
        """The providers the pipeline asks, in waterfall order (empty before the spider
        opens)."""
        return tuple(c.name for c in self.waterfall.clients) if self.waterfall else ()

    def in_flight(self) -> list[frozenset[str]]:
        """For each item being enriched now, the providers it has finished so far: a cheap
        snapshot for the progress line (its current provider is the first of
        :attr:`providers` not in it)."""
        return [frozenset(run.results) for run in self._runs]

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        """Build the pipeline for *crawler* (Scrapy's component factory)."""
        return cls(crawler)

    async def open_spider(self, spider: Spider | None = None) -> None:
        """Start the gateway, open the cache and build the waterfall's clients."""
        await self.gateway.open()
        if self.settings.cache_enabled:
            self.cache = await self._open_cache()
            self.gateway.cache = self.cache
        else:
            logger.info("apigw: cache disabled (APIGW_CACHE_ENABLED = False)")
        self.transport = Transport(
            self.gateway, self.cache, items_in_flight=lambda: len(self._runs)
        )
        self.waterfall = Waterfall(
            self._clients(),
            self.transport.fetch,
            min_confidence=self.settings.min_match_confidence,
            field_sources=self.settings.field_sources,
        )
        self.gateway.on_stop(self._stopping)
        from scrapy_apigw.deadletters.queue import open_deadletters

        self.deadletters = await open_deadletters(self.settings, self.stats.inc_value)

    async def close_spider(self, spider: Spider | None = None) -> None:
        """Release connections and the cache."""
        if self.transport is not None:
            await self.transport.close()
        if self.cache is not None:
            await self.cache.close()
        if self.deadletters is not None:
            await self.deadletters.close()

    async def process_item(self, item: Any, spider: Spider | None = None) -> Any:
        """Enrich *item* in place and return it (always)."""
        adapter = ItemAdapter(item)
        letters = self.deadletters
        inputs: dict[str, Any] | None = None
        try:
            track = read_track(adapter, self.settings.input_fields)
            if not track.has_query or self.waterfall is None:
                # Nothing to look up: the item is otherwise untouched.
                self._set_status(adapter, STATUS_SKIPPED)
                if track.unidentified:  # "ID - ID": say why (the input stays as scraped)
                    write_fields(adapter, {"enrichment_skip_reason": track.unidentified})
                return item
            inputs = letters.inputs_of(adapter) if letters is not None else None
            started = self.gateway.clock()
            enrichment = await self._enrich(self.waterfall, track)
            if self.gateway.metrics is not None:
                self.gateway.metrics.observe_item(self.gateway.clock() - started)
            write_fields(adapter, enrichment.item_fields())
            inc = self.gateway.inc  # the stat, and the metric mirroring it
            inc(f"items/{enrichment.status}")
            for name, result in enrichment.results.items():
                inc(f"{name}/results/{result.status}")
                for reason, saved in result.calls_saved.items():
                    inc(f"{name}/calls_saved/{reason}", saved)
            if letters is not None and inputs is not None:
                await letters.settle(inputs, enrichment)  # never raises
        except Exception as exc:
            logger.exception("apigw: enrichment of an item failed; the item is kept as is")
            errors = {"pipeline": type(exc).__name__}
            self._set_status(adapter, STATUS_FAILED, errors)
            if letters is not None and inputs is not None:
                await letters.record(inputs, STATUS_FAILED, errors)  # never raises
        return item

    async def _enrich(self, waterfall: Waterfall, track: TrackContext) -> Enrichment:
        run = ItemRun()
        timeout = self.settings.item_timeout
        if timeout > 0:
            run.end_after(timeout, item_timeout_reason(timeout))
        if self.gateway.stopping:
            run.end_after(self.gateway.stop_remaining(), INTERRUPTED)
        self._runs.add(run)
        try:
            results = await run.run(waterfall.enrich(track, run))
        finally:
            self._runs.discard(run)
            if self.transport is not None:
                self.transport.batcher.settle()  # the others may be waiting for this one
        if run.reason is not None:
            self.gateway.inc(
                "items/interrupted" if run.reason == INTERRUPTED else "items/timed_out"
            )
        return waterfall.verdict(results, run.reason)

    def _stopping(self) -> None:
        """The engine started closing: every item in flight ends within the stop's grace."""
        for run in list(self._runs):
            run.end_after(self.gateway.stop_remaining(), INTERRUPTED)

    def _set_status(
        self, adapter: ItemAdapter, status: str, errors: dict[str, str] | None = None
    ) -> None:
        values: dict[str, Any] = {"enrichment_status": status}
        if errors:
            values["enrichment_errors"] = errors
        write_fields(adapter, values)
        self.gateway.inc(f"items/{status}")

    def _clients(self) -> list[ProviderClient]:
        clients = []
        for name in self.settings.waterfall:
            if name not in self.gateway.states:
                logger.info("apigw: %s is disabled: not in the enrichment waterfall", name)
                continue
            missing = self.settings.missing_credentials(name)
            if missing:
                env = ", ".join(m.removeprefix("APIGW_") for m in missing)
                logger.warning(
                    "apigw: %s skipped: no credentials (set %s, or the environment variable %s)",
                    name,
                    ", ".join(missing),
                    env,
                )
                continue
            problem = self.settings.credential_problem(name)
            if problem:
                logger.warning("apigw: %s skipped: %s", name, problem)
                continue
            client = build_client(
                name,
                self.settings.specs,
                self.settings.options.get(name),
                self.settings.providers.get(name),
            )
            if client is None:
                logger.warning("apigw: %s has no enrichment client; skipped", name)
                continue
            clients.append(client)
        return clients

    async def _open_cache(self) -> ResponseCache | None:
        from scrapy_apigw.cache import open_cache

        def on_event(event: str, provider: str) -> None:
            # The transport counts cache/miss itself: every lookup the cache did not answer,
            # degraded ones included. cache/error and cache/skipped (backend failing, or
            # skipped for a while after failures) say why; they count writes too.
            if event != "miss":
                self.gateway.inc(f"{provider}/cache/{event}")

        metrics = self.gateway.metrics

        cache = await open_cache(
            self.settings.redis_url,
            self.settings.cache_path,
            namespace=self.settings.cache_namespace,
            redis_timeout=self.settings.cache_timeout,
            on_event=on_event,
            on_error=metrics.cache_error if metrics is not None else None,
            stale_ttl=self.settings.stale_ttl,
        )
        # Which cache a crawl uses is the first question when answers are not reused (a
        # Scrapyd job's embedded cache is not under the project): say it once, log-safe.
        logger.info(
            "apigw: cache: %s %s%s",
            cache.backend.name,
            cache.describe(),
            "" if cache.available else " (unavailable for now: lookups are misses)",
        )
        return cache
