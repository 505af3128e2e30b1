"""The progress line: every ``APIGW_PROGRESS_INTERVAL`` seconds, where the enrichment stands.

One INFO line (logger ``scrapy_apigw.ops.progress``), e.g.::

    apigw: progress: 120 items enriched, 88 in the pipeline; spotify: 0 queued at 10/s;
    musicbrainz: 412 queued at 1.0/s, ETA 6 min 52 s; ETA 6 min 52 s for the items scraped so far

Per provider of the waterfall: its queued calls and its effective rate, and when calls are
queued their ETA (:mod:`scrapy_apigw.ops.eta` says what is counted and how); a provider whose
circuit is open or that is paused says so. The snapshot reads counters the gateway and the
pipeline keep anyway (pacer queues, sleeping retries, the items in flight and which providers
each has finished, the ``apigw/*`` stats): O(items in flight + queued calls), nothing is
tracked for it in between.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scrapy import Spider, signals
from scrapy.exceptions import NotConfigured

from scrapy_apigw.core.breaker import BreakerState
from scrapy_apigw.enrichment.fields import (
    STATUS_COMPLETED,
    STATUS_FAILED,
    STATUS_PARTIAL,
    STATUS_SKIPPED,
)
from scrapy_apigw.gateway import Gateway, ProviderState
from scrapy_apigw.ops.eta import (
    calls_per_item,
    crawl_eta,
    format_duration,
    format_rate,
    provider_eta,
    queued_calls,
)

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from typing_extensions import Self

    from scrapy_apigw.pipelines import APIEnrichmentPipeline

__all__ = ["Progress", "ProgressExtension", "ProviderProgress", "take_snapshot"]

logger = logging.getLogger(__name__)

#: Item statuses counted as "enriched" (through the pipeline, whatever the outcome).
DONE_STATUSES = (STATUS_COMPLETED, STATUS_PARTIAL, STATUS_FAILED, STATUS_SKIPPED)


@dataclass(frozen=True)
class ProviderProgress:
    """One provider at one instant.

    Attributes:
        name: the provider.
        waiting: calls waiting at its pacer plus retries sleeping before going back to it.
        ahead: items in the pipeline that have not reached it yet.
        at: items at it now.
        per_item: average real requests per item there (1.0 until an item finished it).
        rate: effective rate, req/s (its token bucket; a window quota's average when lower).
        tokens: tokens in its bucket now (0 or 1 during a pause: one is there when it ends).
        paused_for: seconds left of a pause (Retry-After, rate-limit backoff); 0 when none.
        circuit: its breaker's state (``closed``, ``open``, ``half_open``).
    """

    name: str
    waiting: int
    ahead: int
    at: int
    per_item: float
    rate: float
    tokens: float = 0.0
    paused_for: float = 0.0
    circuit: str = BreakerState.CLOSED.value

    @property
    def queued(self) -> float:
        """Calls still to be made there (:func:`~scrapy_apigw.ops.eta.queued_calls`)."""
        return queued_calls(self.waiting, self.ahead, self.at, self.per_item)

    @property
    def eta(self) -> float:
        """Seconds until its queued calls are sent (:func:`~scrapy_apigw.ops.eta.provider_eta`)."""
        return provider_eta(self.queued, self.rate, self.tokens, self.paused_for)

    def describe(self) -> str:
        """``"musicbrainz: 412 queued at 1.0/s, ETA 6 min 52 s"`` (no ETA when nothing is
        queued), with ``(circuit open)`` or ``(paused 12 s)`` when so."""
        queued = self.queued
        text = f"{self.name}: {round(queued)} queued at {format_rate(self.rate)}/s"
        if queued > 0:
            text += f", ETA {format_duration(self.eta)}"
        if self.circuit != BreakerState.CLOSED.value:
            text += f" (circuit {self.circuit.replace('_', '-')})"
        elif self.paused_for > 0:
            text += f" (paused {format_duration(self.paused_for)})"
        return text


@dataclass(frozen=True)
class Progress:
    """The enrichment at one instant.

    Attributes:
        done: items through the pipeline (``apigw/items/<status>`` summed).
        in_pipeline: items being enriched now.
        providers: one entry per provider of the waterfall, in its order.
    """

    done: int
    in_pipeline: int
    providers: tuple[ProviderProgress, ...]

    @property
    def eta(self) -> float:
        """Seconds until every queued call is sent: the slowest provider's ETA."""
        return crawl_eta(p.eta for p in self.providers)

    def line(self) -> str:
        """The progress line (see the module docstring)."""
        parts = [f"apigw: progress: {self.done} items enriched, {self.in_pipeline} in the pipeline"]
        parts.extend(p.describe() for p in self.providers)
        text = "; ".join(parts)
        if any(p.queued > 0 for p in self.providers):
            text += f"; ETA {format_duration(self.eta)} for the items scraped so far"
        return text


def take_snapshot(gateway: Gateway, pipeline: APIEnrichmentPipeline | None, stats: Any) -> Progress:
    """Read where the enrichment stands now.

    Args:
        gateway: the crawler's gateway (pacer queues, sleeping retries, rates, breakers).
        pipeline: the crawler's enrichment pipeline (items in flight and the providers each
            finished), or None: then only the gateway's queues are counted, for every enabled
            provider.
        stats: the crawler's stats collector (``apigw/*`` counters).
    """
    values = stats.get_stats()
    order = pipeline.providers if pipeline is not None else ()
    if not order:
        order = tuple(gateway.states)
    in_flight = pipeline.in_flight() if pipeline is not None else []
    now = gateway.clock()
    providers = []
    for index, name in enumerate(order):
        state = gateway.states.get(name)
        if state is None:
            continue
        earlier = set(order[:index])
        ahead = at = finished_here = 0
        for finished in in_flight:
            if name in finished:
                finished_here += 1
            elif earlier <= finished:
                at += 1
            else:
                ahead += 1
        prefix = f"apigw/{name}/results/"
        finished_items = finished_here + sum(
            int(v) for k, v in values.items() if k.startswith(prefix)
        )
        per_item = calls_per_item(int(values.get(f"apigw/{name}/requests", 0)), finished_items, at)
        providers.append(_provider(state, now, ahead, at, per_item))
    done = sum(int(values.get(f"apigw/items/{s}", 0)) for s in DONE_STATUSES)
    return Progress(done, len(in_flight), tuple(providers))


def _provider(
    state: ProviderState, now: float, ahead: int, at: int, per_item: float
) -> ProviderProgress:
    bucket = state.bucket
    rate = bucket.rate
    if state.window is not None and state.window.window > 0:
        rate = min(rate, state.window.limit / state.window.window)
    paused_for = max(0.0, bucket.blocked_until - now)
    tokens = 1.0 if paused_for > 0 else max(0.0, bucket.tokens)
    return ProviderProgress(
        name=state.name,
        waiting=state.pacer.queued + state.waits.sleeping,
        ahead=ahead,
        at=at,
        per_item=per_item,
        rate=rate,
        tokens=tokens,
        paused_for=paused_for,
        circuit=state.breaker.state.value,
    )


class ProgressExtension:
    """Logs :meth:`Progress.line` every ``APIGW_PROGRESS_INTERVAL`` seconds while the spider
    runs (the first one an interval after it opens). Enabled by the add-on.

    Each record carries the :class:`Progress` it describes as ``record.apigw_progress``
    (for log handlers and tests).

    Raises:
        NotConfigured: (from :meth:`from_crawler`) the gateway is disabled, or
            ``APIGW_PROGRESS_INTERVAL`` is 0.
    """

    def __init__(self, crawler: Crawler, gateway: Gateway, interval: float) -> None:
        self.crawler = crawler
        self.gateway = gateway
        self.interval = interval
        self._task: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        """Build the extension for *crawler* (Scrapy's component factory)."""
        gateway = Gateway.for_crawler(crawler)
        interval = gateway.settings.progress_interval
        if interval <= 0:
            raise NotConfigured("APIGW_PROGRESS_INTERVAL is 0: no progress line")
        extension = cls(crawler, gateway, interval)
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def spider_opened(self, spider: Spider | None = None) -> None:
        """Start the periodic line."""
        from scrapy.utils.asyncio import create_looping_call

        self._task = create_looping_call(self.log_progress)
        self._task.start(self.interval, now=False)

    def spider_closed(self, spider: Spider | None = None) -> None:
        """Stop the periodic line."""
        if self._task is not None and self._task.running:
            self._task.stop()
        self._task = None

    def snapshot(self) -> Progress:
        """Where the enrichment stands now (:func:`take_snapshot`)."""
        from scrapy_apigw.pipelines import pipeline_for

        return take_snapshot(self.gateway, pipeline_for(self.crawler), self.crawler.stats)

    def log_progress(self) -> Progress:
        """Log one progress line now and return what it says."""
        progress = self.snapshot()
        logger.info("%s", progress.line(), extra={"apigw_progress": progress})
        return progress
