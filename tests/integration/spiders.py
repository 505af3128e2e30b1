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
