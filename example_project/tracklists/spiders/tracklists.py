"""Crawl DJ tracklists and yield one item per track; the add-on's pipeline enriches each one.

Run it::

    scrapy crawl tracklists -O tracks.jsonl            # every tracklist of the site
    scrapy crawl tracklists -a limit=2 -O tracks.jsonl  # only the first two tracklists

The start URL is the ``TRACKLISTS_URL`` setting, or the provider sandbox's website when
``APIGW_SANDBOX`` is on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import scrapy
from scrapy.http import Response

from scrapy_apigw.gateway import Gateway
from tracklists.items import TrackItem


class TracklistsSpider(scrapy.Spider):
    """Index page → tracklist pages → one :class:`TrackItem` per row (even incomplete rows:
    the pipeline marks a row without artist or title ``skipped`` instead of losing it)."""

    name = "tracklists"

    def __init__(self, *args: Any, limit: int | str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limit = int(limit) if limit else None

    async def start(self) -> AsyncIterator[scrapy.Request]:
        url = self.settings.get("TRACKLISTS_URL")
        if not url:
            sandbox = Gateway.for_crawler(self.crawler).sandbox_url
            if not sandbox:
                raise ValueError("set TRACKLISTS_URL, or APIGW_SANDBOX = True for the demo site")
            url = f"{sandbox}/site/"
        if self.limit:
            url = f"{url}?limit={self.limit}"
        yield scrapy.Request(url, callback=self.parse)

    def parse(self, response: Response) -> Iterator[scrapy.Request]:
        links = response.css("a.tracklist-link::attr(href)").getall()
        yield from response.follow_all(
            links[: self.limit] if self.limit else links, self.parse_tracklist
        )

    def parse_tracklist(self, response: Response) -> Iterator[TrackItem]:
        tracklist = response.css("h1.tracklist-title::text").get(default="").strip()
        for row in response.css("li.track"):
            yield TrackItem(
                artist=(row.css("span.artist::text").get() or "").strip(),
                title=(row.css("span.title::text").get() or "").strip(),
                position=int(row.attrib.get("data-position", 0)),
                tracklist=tracklist,
                tracklist_url=response.url,
            )
