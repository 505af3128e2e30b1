"""``OpsExtension``: a crawl's HTTP surface (``/metrics``...) and its multiprocess hygiene.

Enabled by the add-on (``EXTENSIONS``). It is on when ``APIGW_METRICS_PORT`` is set (it
listens there, at ``APIGW_METRICS_HOST``, from the engine's start to its stop) or when
``PROMETHEUS_MULTIPROC_DIR`` is in the environment (then, at engine stop, the process is
marked dead in that directory: its live gauges go, its counters stay for ``apigw serve``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import maybe_deferred_to_future

from scrapy_apigw.gateway import Gateway

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from twisted.web.resource import Resource
    from typing_extensions import Self

logger = logging.getLogger(__name__)

__all__ = ["OpsExtension"]


class OpsExtension:
    """Serves ``/metrics`` (and the other operations resources) from inside a crawl.

    Attributes:
        port: the TCP port listened on once the engine started (the actual one when
            ``APIGW_METRICS_PORT = 0``), else None.

    Raises:
        NotConfigured: (from :meth:`from_crawler`) the gateway is disabled, or neither
            ``APIGW_METRICS_PORT`` nor ``PROMETHEUS_MULTIPROC_DIR`` is set.
    """

    def __init__(self, crawler: Crawler, gateway: Gateway) -> None:
        self.crawler = crawler
        self.gateway = gateway
        self.port: int | None = None
        self._listening: Any = None  # IListeningPort while listening
        # Bound methods of an object the crawler keeps (signals hold weak references).
        crawler.signals.connect(self.engine_started, signal=signals.engine_started)
        crawler.signals.connect(self.engine_stopped, signal=signals.engine_stopped)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        """Build the extension for *crawler* (Scrapy's component factory)."""
        gateway = Gateway.for_crawler(crawler)
        if gateway.metrics is None:
            # No reason given: Scrapy logs a reason as a WARNING, and off is the default here.
            raise NotConfigured
        extension = cls(crawler, gateway)
        crawler.apigw_ops = extension  # type: ignore[attr-defined]
        return extension

    def children(self) -> dict[bytes, Resource]:
        """The resources served next to ``/metrics`` (``/health``, ``/admin``, ``/stats``:
        added by the modules that make them). Called at engine start, when every extension
        exists."""
        from scrapy_apigw.ops.admin import ops_children
        from scrapy_apigw.ops.coverage import coverage_for, coverage_resource
        from scrapy_apigw.ops.state import CrawlState

        children = ops_children(CrawlState(self.gateway))
        coverage = coverage_for(self.crawler)
        if coverage is not None:
            children[b"stats"] = coverage_resource(coverage.report)
        return children

    def engine_started(self, **_: Any) -> None:
        """Listen on ``APIGW_METRICS_PORT`` (nothing when unset). A port that cannot be
        listened on is one ERROR line; the crawl goes on without it."""
        settings = self.gateway.settings
        if settings.metrics_port is None or self.gateway.metrics is None:
            return
        from twisted.internet import reactor as _reactor
        from twisted.internet.error import CannotListenError
        from twisted.web.server import Site

        from scrapy_apigw.ops.web import build_root

        root = build_root(self.children(), registry=self.gateway.metrics.registry)
        site = Site(root)
        site.noisy = False
        try:
            reactor: Any = _reactor  # typed loosely: zope interfaces confuse mypy
            self._listening = reactor.listenTCP(
                settings.metrics_port, site, interface=settings.metrics_host
            )
        except CannotListenError as exc:
            logger.error(
                "apigw: cannot serve metrics on %s:%d (APIGW_METRICS_HOST, APIGW_METRICS_PORT): %s",
                settings.metrics_host,
                settings.metrics_port,
                exc.socketError,
            )
            return
        self.port = self._listening.getHost().port
        host = settings.metrics_host
        shown = f"[{host}]" if ":" in host else host
        logger.info("apigw: metrics at http://%s:%d/metrics", shown, self.port)

    async def engine_stopped(self, **_: Any) -> None:
        """Stop listening; in multiprocess mode, mark this process dead in the directory."""
        listening, self._listening = self._listening, None
        if listening is not None:
            result = listening.stopListening()
            if result is not None:
                await maybe_deferred_to_future(result)
        from scrapy_apigw.ops.metrics import mark_process_dead

        mark_process_dead()
