"""Prometheus metrics of the gateway, fed from the very places that count the ``apigw/*`` stats.

The names and labels are the design documents' (dashboards of the original system use them),
plus a few in the same style; ``docs/metrics.md`` lists them all with the stats each mirrors.

Every counter is driven by a stats key: :meth:`GatewayMetrics.count` is called with the key
(without its ``apigw/`` prefix) and the increment right where the stat is incremented, so a
metric and its stat cannot disagree. Histograms and gauges are observed/set next to the stats
they explain. Labels are low-cardinality only: provider, status, outcome, data type, reason,
operation; never a URL, a track, a job id or a credential.

Two modes, chosen by the environment at import time of ``prometheus_client`` (hence imported
lazily here, never at module top level):

- **one process**: each :class:`GatewayMetrics` has its own ``CollectorRegistry``, so several
  crawlers in one process (tests) never collide on names; ``/metrics`` of a crawl serves it;
- **multiprocess** (``PROMETHEUS_MULTIPROC_DIR`` set before the import, e.g. in Scrapyd's
  environment): values are written to that directory, one process-wide instance
  (:func:`metrics_for_process`), gauges in live modes; ``apigw serve`` sums the processes'
  files (:class:`prometheus_client.multiprocess.MultiProcessCollector`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = [
    "BREAKER_STATE_VALUES",
    "MULTIPROC_ENV",
    "GatewayMetrics",
    "metrics_for_process",
    "multiprocess_dir",
]

#: The environment variable of prometheus_client's multiprocess mode.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: ``api_gateway_circuit_breaker_state`` values.
BREAKER_STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}

#: ``api_gateway_rate_limit_wait_seconds`` buckets, s: from "no wait" to a long pause.
WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
#: ``api_response_time_seconds`` buckets, s.
RESPONSE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: ``enrichment_duration_seconds`` buckets, s: an item can wait minutes behind 1 req/s.
ENRICHMENT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

#: Stats keys ``<provider>/<a>/<b>`` that feed ``api_gateway_calls_saved_total`` and the reason.
_SAVED_REASONS = {
    ("singleflight", "saved"): "singleflight",
    ("refusals", "remembered"): "refusal_remembered",
}
#: ``apigw/items/<x>`` keys that are not an ``enrichment_status`` (counted besides it).
_NOT_ITEM_STATUSES = frozenset({"timed_out", "interrupted"})

_Route = Callable[[float], None]


def _ignore(value: float) -> None:
    """The route of a stats key no metric mirrors."""


def multiprocess_dir() -> str | None:
    """``PROMETHEUS_MULTIPROC_DIR`` from the environment, or None (one-process mode)."""
    return os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower()) or None


class GatewayMetrics:
    """The metric objects of one crawl (one process in multiprocess mode).

    Args:
        registry: where the metrics are registered; None makes a new
            ``CollectorRegistry`` (never the default one: several crawlers of one process
            would collide on it with "Duplicated timeseries").

    The hot path is :meth:`count` (one dict lookup for a key seen before) and the
    ``observe_*``/``set_*`` methods (one dict lookup of the label child).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        p = ("provider",)
        # -- the design documents' names -------------------------------------------------
        self.requests = Counter(
            "api_gateway_rate_limit_requests_total",
            "Requests to a provider by rate-limit status: allowed (released to the provider), "
            "throttled (released after waiting for a token, a window slot or a pause; a subset "
            "of allowed), rejected (refused at once: the provider keeps rate limiting)",
            ("provider", "status"),
            registry=reg,
        )
        self.tokens = Gauge(
            "api_gateway_rate_limit_tokens",
            "Tokens left in the provider's local token bucket after the last request",
            p,
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.wait_seconds = Histogram(
            "api_gateway_rate_limit_wait_seconds",
            "Seconds each released request waited for the rate limits (bucket, window, pause)",
            p,
            registry=reg,
            buckets=WAIT_BUCKETS,
        )
        self.cache_hits = Counter(
            "api_gateway_cache_hits_total",
            "Lookups answered by the cache",
            ("provider", "data_type"),
            registry=reg,
        )
        self.cache_misses = Counter(
            "api_gateway_cache_misses_total",
            "Lookups the cache did not answer (degraded ones included)",
            ("provider", "data_type"),
            registry=reg,
        )
        self.cache_errors = Counter(
            "api_gateway_cache_errors_total",
            "Cache backend operations that failed (read or write)",
            ("provider", "operation"),
            registry=reg,
        )
        self.breaker_state = Gauge(
            "api_gateway_circuit_breaker_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open",
            p,
            registry=reg,
            multiprocess_mode="livemax",
        )
        self.breaker_failures = Counter(
            "api_gateway_circuit_breaker_failures_total",
            "Exchanges recorded as breaker failures (5xx, malformed answers, network errors)",
            p,
            registry=reg,
        )
        self.breaker_opens = Counter(
            "api_gateway_circuit_breaker_opens_total",
            "Circuit transitions into open",
            p,
            registry=reg,
        )
        self.breaker_recoveries = Counter(
            "api_gateway_circuit_breaker_recoveries_total",
            "Circuit transitions into closed (recovered after half-open probes)",
            p,
            registry=reg,
        )
        self.retry_attempts = Counter(
            "api_gateway_retry_attempts_total",
            "Retries made, by the outcome that was retried",
            ("provider", "error_type"),
            registry=reg,
        )
        self.retry_success = Counter(
            "api_gateway_retry_success_total",
            "Calls and requests retried at least once that then got an answer",
            p,
            registry=reg,
        )
        self.retry_failures = Counter(
            "api_gateway_retry_failures_total",
            "Calls and requests retried at least once that then gave up",
            p,
            registry=reg,
        )
        self.response_time = Histogram(
            "api_response_time_seconds",
            "Seconds from sending a request to its answer (or network error)",
            p,
            registry=reg,
            buckets=RESPONSE_BUCKETS,
        )
        self.tracks_enriched = Counter(
            "tracks_enriched_total",
            "Items by enrichment_status",
            ("status",),
            registry=reg,
        )
        self.enrichment_duration = Histogram(
            "enrichment_duration_seconds",
            "Seconds one item spent being enriched",
            registry=reg,
            buckets=ENRICHMENT_BUCKETS,
        )
        self.enrichment_tasks = Counter(
            "enrichment_tasks_total",
            "Per-item provider results: ok, not_found, failed, skipped",
            ("source", "status"),
            registry=reg,
        )
        # -- in the same style, for operators ---------------------------------------------
        self.effective_rate = Gauge(
            "api_gateway_rate_limit_effective_rate",
            "The provider's effective (adaptive) rate, requests per second",
            p,
            registry=reg,
            multiprocess_mode="livemax",
        )
        self.stale_served = Counter(
            "api_gateway_cache_stale_served_total",
            "Expired answers served because the provider failed",
            p,
            registry=reg,
        )
        self.calls_saved = Counter(
            "api_gateway_calls_saved_total",
            "Provider calls not made: batch, singleflight, refusal_remembered, or a client's "
            "own reason (release_from_search, toptags_from_getinfo)",
            ("provider", "reason"),
            registry=reg,
        )
        self.responses = Counter(
            "api_gateway_responses_total",
            "Provider answers by outcome (success, not_found, rate_limited, server_error, ...)",
            ("provider", "outcome"),
            registry=reg,
        )
        self.pauses = Counter(
            "api_gateway_rate_limit_pauses_total",
            "Provider pauses (Retry-After, rate-limit backoff, quota used up)",
            p,
            registry=reg,
        )
        self.rate_decreases = Counter(
            "api_gateway_rate_limit_decreases_total",
            "Congestion events that lowered the effective rate",
            p,
            registry=reg,
        )
        self.breaker_rejected = Counter(
            "api_gateway_circuit_breaker_rejected_total",
            "Calls refused at once because the circuit was open",
            p,
            registry=reg,
        )
        self._routes: dict[str, _Route] = {}
        self._children: dict[tuple[Any, ...], Any] = {}

    # -- set up -----------------------------------------------------------------------------

    def start(self, providers: Iterable[tuple[str, float, float]]) -> None:
        """Give every enabled provider its gauges: closed circuit, full bucket.

        Args:
            providers: ``(name, rate req/s, burst tokens)`` of each enabled provider.
        """
        for name, rate, burst in providers:
            self._child(self.breaker_state, name).set(0)
            self._child(self.effective_rate, name).set(rate)
            self._child(self.tokens, name).set(burst)
            # Counters exist at 0 from the start: a series first seen with its final value
            # has no increase for rate() to see (a short crawl between two scrapes).
            for status in ("allowed", "throttled", "rejected"):
                self._child(self.requests, name, status)
            for counter in (
                self.breaker_failures,
                self.breaker_opens,
                self.breaker_recoveries,
                self.breaker_rejected,
                self.retry_success,
                self.retry_failures,
                self.stale_served,
                self.pauses,
                self.rate_decreases,
            ):
                self._child(counter, name)
        for status in ("completed", "partial", "failed", "skipped"):
            self._child(self.tracks_enriched, status)

    # -- the hot path -----------------------------------------------------------------------

    def count(self, key: str, value: float = 1) -> None:
        """Mirror the increment *value* of the stat ``apigw/<key>`` (keys no metric mirrors
        are ignored)."""
        route = self._routes.get(key)
        if route is None:
            route = self._routes[key] = self._route(key)
        route(value)

    def observe_wait(self, provider: str, seconds: float) -> None:
        """One released request of *provider* waited *seconds* (0 when it did not)."""
        self._child(self.wait_seconds, provider).observe(seconds)

    def observe_response(self, provider: str, seconds: float) -> None:
        """One answer (or network error) of *provider* came *seconds* after sending."""
        self._child(self.response_time, provider).observe(seconds)

    def observe_item(self, seconds: float) -> None:
        """One item's enrichment took *seconds*."""
        self.enrichment_duration.observe(seconds)

    def cache_lookup(self, provider: str, data_type: str, hit: bool) -> None:
        """One cache lookup of *provider*'s *data_type* answered (*hit*) or missed."""
        self._child(self.cache_hits if hit else self.cache_misses, provider, data_type).inc()

    def cache_error(self, provider: str, operation: str) -> None:
        """The cache backend failed one *operation* (``read``, ``write``)."""
        self._child(self.cache_errors, provider, operation).inc()

    def set_tokens(self, provider: str, tokens: float) -> None:
        """*provider*'s bucket holds *tokens* now."""
        self._child(self.tokens, provider).set(tokens)

    def set_rate(self, provider: str, rate: float) -> None:
        """*provider*'s effective rate is *rate* req/s now."""
        self._child(self.effective_rate, provider).set(rate)

    # -- internals --------------------------------------------------------------------------

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels) if labels else metric
        return child

    def _route(self, key: str) -> _Route:
        """How the stat ``apigw/<key>`` moves the metrics (the one map of stats to metrics)."""
        parts = key.split("/")
        if len(parts) == 2 and parts[0] == "items":
            if parts[1] in _NOT_ITEM_STATUSES:
                return _ignore
            return self._child(self.tracks_enriched, parts[1]).inc
        provider, rest = parts[0], tuple(parts[1:])
        if provider in ("fleet", "items"):
            return _ignore
        counters: dict[tuple[str, ...], tuple[Any, ...]] = {
            ("requests",): (self.requests, provider, "allowed"),
            ("throttle", "waits"): (self.requests, provider, "throttled"),
            ("rate_limit", "rejected"): (self.requests, provider, "rejected"),
            ("breaker", "failures"): (self.breaker_failures, provider),
            ("breaker", "rejected"): (self.breaker_rejected, provider),
            ("retry", "succeeded"): (self.retry_success, provider),
            ("retry", "gave_up"): (self.retry_failures, provider),
            ("cache", "stale_served"): (self.stale_served, provider),
            ("pauses",): (self.pauses, provider),
            ("rate", "decreases"): (self.rate_decreases, provider),
        }
        if rest in counters:
            metric, *labels = counters[rest]
            return self._child(metric, *labels).inc
        if rest in _SAVED_REASONS:
            return self._child(self.calls_saved, provider, _SAVED_REASONS[rest]).inc
        if len(rest) == 2:
            kind, label = rest
            two: dict[str, Any] = {
                "responses": self.responses,
                "retries": self.retry_attempts,
                "results": self.enrichment_tasks,
                "calls_saved": self.calls_saved,
            }
            if kind in two:
                return self._child(two[kind], provider, label).inc
            if kind == "breaker" and label in BREAKER_STATE_VALUES:
                return self._transition_route(provider, label)
        if len(rest) == 3 and rest[0] == "batch" and rest[2] == "saved":
            return self._child(self.calls_saved, provider, "batch").inc
        return _ignore

    def _transition_route(self, provider: str, state: str) -> _Route:
        gauge = self._child(self.breaker_state, provider)
        number = BREAKER_STATE_VALUES[state]
        counter = (
            self._child(self.breaker_opens, provider)
            if state == "open"
            else self._child(self.breaker_recoveries, provider)
            if state == "closed"
            else None
        )

        def transition(value: float) -> None:
            gauge.set(number)
            if counter is not None:
                counter.inc(value)

        return transition


_process_metrics: GatewayMetrics | None = None


def metrics_for_process() -> GatewayMetrics:
    """The process-wide metrics of multiprocess mode (values live in files named after the
    pid: two instances in one process would overwrite each other's values)."""
    global _process_metrics
    if _process_metrics is None:
        _process_metrics = GatewayMetrics()
    return _process_metrics


def mark_process_dead(pid: int | None = None) -> None:
    """Tell the multiprocess directory that process *pid* (default: this one) ended: its
    live-mode gauges are removed, its counters and histograms stay. No-op in one-process
    mode."""
    path = multiprocess_dir()
    if path is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(os.getpid() if pid is None else pid, path)
