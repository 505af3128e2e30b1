"""``APIEnrichmentPipeline``: enrich every scraped track from the providers, lose no item."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter
from scrapy import Spider

from scrapy_apigw.enrichment.fields import STATUS_FAILED, STATUS_SKIPPED
from scrapy_apigw.enrichment.items import read_track, write_fields
from scrapy_apigw.enrichment.waterfall import Waterfall
from scrapy_apigw.gateway import Gateway
from scrapy_apigw.providers.base import ProviderClient
from scrapy_apigw.providers.clients import build_client
from scrapy_apigw.transport import Transport

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from typing_extensions import Self

    from scrapy_apigw.cache import ResponseCache

logger = logging.getLogger(__name__)


class APIEnrichmentPipeline:
    """Enriches items that carry a track (``artist`` + ``title``, or ``spotify_id`` / ``isrc``).

    For each item (any itemadapter type) it runs the waterfall Spotify → MusicBrainz →
    Discogs → Last.fm (``APIGW_WATERFALL``) through the crawler's gateway (same token buckets,
    breakers and retry policies as the downloader middlewares) and the cache
    (``APIGW_REDIS_URL``, else an embedded cache under ``.scrapy/``), then sets the output
    fields (see ``docs/fields.md``) and ``enrichment_status``. Every item is returned, enriched
    or marked with why not: no item is ever dropped, whatever happens.

    Providers without credentials are skipped with one warning each.

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

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        """Build the pipeline for *crawler* (Scrapy's component factory)."""
        return cls(crawler)

    async def open_spider(self, spider: Spider | None = None) -> None:
        """Start the gateway, open the cache and build the waterfall's clients."""
        await self.gateway.open()
        if self.settings.cache_enabled:
            self.cache = await self._open_cache()
        self.transport = Transport(self.gateway, self.cache)
        self.waterfall = Waterfall(self._clients(), self.transport.fetch)

    async def close_spider(self, spider: Spider | None = None) -> None:
        """Release connections and the cache."""
        if self.transport is not None:
            await self.transport.close()
        if self.cache is not None:
            await self.cache.close()

    async def process_item(self, item: Any, spider: Spider | None = None) -> Any:
        """Enrich *item* in place and return it (always)."""
        adapter = ItemAdapter(item)
        try:
            track = read_track(adapter, self.settings.input_fields)
            if not track.has_query or self.waterfall is None:
                # Nothing to look up: the item is otherwise untouched.
                self._set_status(adapter, STATUS_SKIPPED)
                return item
            enrichment = await self.waterfall.enrich(track)
            write_fields(adapter, enrichment.item_fields())
            self.stats.inc_value(f"apigw/items/{enrichment.status}")
            for name, result in enrichment.results.items():
                self.stats.inc_value(f"apigw/{name}/results/{result.status}")
        except Exception as exc:
            logger.exception("apigw: enrichment of an item failed; the item is kept as is")
            self._set_status(adapter, STATUS_FAILED, {"pipeline": type(exc).__name__})
        return item

    def _set_status(
        self, adapter: ItemAdapter, status: str, errors: dict[str, str] | None = None
    ) -> None:
        values: dict[str, Any] = {"enrichment_status": status}
        if errors:
            values["enrichment_errors"] = errors
        write_fields(adapter, values)
        self.stats.inc_value(f"apigw/items/{status}")

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
            client = build_client(name)
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
                self.stats.inc_value(f"apigw/{provider}/cache/{event}")

        return await open_cache(
            self.settings.redis_url,
            self.settings.cache_path,
            namespace=self.settings.cache_namespace,
            redis_timeout=self.settings.cache_timeout,
            on_event=on_event,
        )
