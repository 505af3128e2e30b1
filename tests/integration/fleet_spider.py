"""A spider for the fleet tests, run as a real ``scrapy runspider`` process.

It sends ``count`` spider requests to the sandbox's MusicBrainz ISRC lookup (``tag`` makes its
ISRCs its own, so the sandbox log tells the processes apart) and yields one item per request:
its status, or the error that ended it, under ``code`` (not ``isrc``: the add-on's pipeline
would look it up again). Nothing is lost: the feed has ``count`` items.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

import scrapy
from scrapy.http import Response
from twisted.python.failure import Failure


class FleetSpider(scrapy.Spider):
    """``-a base=<sandbox url> -a tag=<digit> -a count=<n>``."""

    name = "fleet"
    custom_settings: ClassVar[dict[str, Any]] = {
        "ADDONS": {"scrapy_apigw.Addon": 500},
        "HTTPERROR_ALLOW_ALL": True,
        "ROBOTSTXT_OBEY": False,
        "TELNETCONSOLE_ENABLED": False,
        "USER_AGENT": "apigw-tests/1.0 ( test@example.invalid )",
    }

    def __init__(self, base: str, tag: str, count: str = "20", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base, self.tag, self.count = base, tag, int(count)

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for n in range(self.count):
            isrc = f"ZZZZZ{self.tag}{n:06d}"
            yield scrapy.Request(
                f"{self.base}/musicbrainz/ws/2/isrc/{isrc}?fmt=json",
                callback=self.parse,
                errback=self.failed,
                dont_filter=True,
                cb_kwargs={"isrc": isrc},
            )

    def parse(self, response: Response, isrc: str) -> Iterator[dict[str, Any]]:
        yield {"code": isrc, "status": response.status}

    def failed(self, failure: Failure) -> Iterator[dict[str, Any]]:
        isrc = failure.request.cb_kwargs["isrc"]
        yield {"code": isrc, "error": type(failure.value).__name__}
