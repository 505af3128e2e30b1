"""One spider reading tracklist URLs from Redis (scrapy-redis' ``RedisSpider``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import scrapy
from scrapy.http import Response
from scrapy_redis.spiders import RedisSpider


class TracksSpider(RedisSpider):
    """Pops tracklist page URLs from the Redis list ``tracks:start_urls`` and yields one item
    per track row (``artist``, ``title``, ``position``, ``tracklist_url``): the add-on's
    pipeline enriches each."""

    name = "tracks"
    # One URL at a time, and the next only when idle: the other processes get the rest.
    redis_batch_size = 1

    def make_request_from_data(self, data: bytes) -> scrapy.Request:
        # A plain URL, and not dont_filter (RedisSpider's default): a URL pushed twice is
        # dropped by the shared dupefilter, whichever process pops it.
        return scrapy.Request(data.decode(), callback=self.parse)

    def parse(self, response: Response) -> Iterator[dict[str, Any]]:
        for row in response.css("li.track"):
            yield {
                "artist": (row.css("span.artist::text").get() or "").strip(),
                "title": (row.css("span.title::text").get() or "").strip(),
                "position": int(row.attrib.get("data-position", 0)),
                "tracklist_url": response.url,
            }
