"""A spider for the fleet tests, run as a real ``scrapy runspider`` process.

It sends ``count`` spider requests to the sandbox's MusicBrainz ISRC lookup (``tag`` makes its
ISRCs its own, so the sandbox log tells the processes apart) and yields one item per request:
its status, or the error that ended it, under ``code`` (not ``isrc``: the add-on's pipeline
would look it up again). Nothing is lost: the feed has ``count`` items.

With ``-a barrier=<dir>`` (``bench/bench_fleet.py``'s ``--start``) it writes
``<dir>/ready-<tag>`` once open (the gateway started, the fleet joined) and waits until
``<dir>/go-<tag>`` exists before its first request: the bench then starts the processes'
crawls when it chooses, none meeting the others' interpreter start-up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
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

    def __init__(
        self, base: str, tag: str, count: str = "20", barrier: str = "", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.base, self.tag, self.count = base, tag, int(count)
        self.barrier = Path(barrier) if barrier else None

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if self.barrier is not None:
            await self._wait_at_barrier(self.barrier)
        for n in range(self.count):
            isrc = f"ZZZZZ{self.tag}{n:06d}"
            yield scrapy.Request(
                f"{self.base}/musicbrainz/ws/2/isrc/{isrc}?fmt=json",
                callback=self.parse,
                errback=self.failed,
                dont_filter=True,
                cb_kwargs={"isrc": isrc},
            )

    async def _wait_at_barrier(self, barrier: Path) -> None:
        from twisted.internet import reactor, task

        from scrapy_apigw.deferreds import maybe_deferred_to_future

        (barrier / f"ready-{self.tag}").touch()
        go = barrier / f"go-{self.tag}"
        while not go.exists():  # the bench's signal: a file, polled every 10 ms
            await maybe_deferred_to_future(task.deferLater(reactor, 0.01, lambda: None))

    def parse(self, response: Response, isrc: str) -> Iterator[dict[str, Any]]:
        yield {"code": isrc, "status": response.status}

    def failed(self, failure: Failure) -> Iterator[dict[str, Any]]:
        isrc = failure.request.cb_kwargs["isrc"]
        yield {"code": isrc, "error": type(failure.value).__name__}
