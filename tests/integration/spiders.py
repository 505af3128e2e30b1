"""Small spiders for the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

import scrapy
from scrapy.http import Response
from scrapy.utils.asyncio import sleep
from twisted.python.failure import Failure


class ItemsSpider(scrapy.Spider):
    """Yields the given items from ``start()`` (no page needed): the pipeline's input under test."""

    name = "items"

    def __init__(self, items: list[Any], pause_after: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.items_to_yield = items
        self.pause_after = pause_after

    async def start(self) -> AsyncIterator[Any]:
        for n, item in enumerate(self.items_to_yield, 1):
            yield item
            if n == self.pause_after:
                # Let the first items finish before the rest arrive (what was learned from
                # them is then known to the later ones).
                await sleep(1.0)


class UrlsSpider(scrapy.Spider):
    """Requests the given URLs; records every response status and every errback failure."""

    name = "urls"
    custom_settings: ClassVar[dict[str, Any]] = {"HTTPERROR_ALLOW_ALL": True}

    def __init__(self, urls: list[str], headers: dict[str, str] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.urls = urls
        self.headers = headers or {}
        self.responses: list[tuple[str, int, float]] = []
        self.failures: list[tuple[str, Failure]] = []

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for url in self.urls:
            yield scrapy.Request(
                url,
                headers=self.headers,
                dont_filter=True,
                errback=self.failed,
                callback=self.parse,
            )

    def parse(self, response: Response) -> None:
        import time

        self.responses.append((response.url, response.status, time.monotonic()))

    def failed(self, failure: Failure) -> None:
        self.failures.append((failure.request.url, failure))


class PageItemsSpider(scrapy.Spider):
    """Fetches *url* and yields *items* from its callback, as a spider scraping a page does.

    With *later*: then polls the sandbox's request log (``/_sandbox/log``) until *provider* has
    received *calls* requests, and yields *later* (items that arrive while the first ones are at
    that provider). Scrapy 2.19 never finishes closing on ``CLOSESPIDER_ITEMCOUNT`` when every item
    came from ``start()`` and no request was made (with or without this plugin), hence a page.
    """

    name = "page_items"

    def __init__(
        self,
        url: str,
        items: list[Any],
        later: list[Any] | None = None,
        provider: str = "discogs",
        calls: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.url = url
        self.items_to_yield = items
        self.later = later or []
        self.provider = provider
        self.calls = calls

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield scrapy.Request(self.url, callback=self.parse, dont_filter=True)

    def parse(self, response: Response) -> Any:
        yield from self.items_to_yield
        if self.later:
            yield self._poll(response)

    def _poll(self, response: Response) -> scrapy.Request:
        log_url = response.urljoin(f"/_sandbox/log?provider={self.provider}")
        return scrapy.Request(log_url, callback=self.parse_log, dont_filter=True)

    async def parse_log(self, response: Response) -> AsyncIterator[Any]:
        import json

        if len(json.loads(response.text)) >= self.calls:
            for item in self.later:
                yield item
            return
        await sleep(0.05)  # poll again
        yield self._poll(response)
