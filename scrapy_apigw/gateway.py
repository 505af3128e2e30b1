"""The gateway: one per crawler, the single source of truth for every provider's limits.

Both paths to a provider go through it: spider requests (the downloader middlewares) and
enrichment calls (the pipeline's transport). Per provider it holds a token bucket (plus an
optional sliding-window quota), a circuit breaker, a retry policy and the ``apigw/...`` stats.
A Retry-After seen on one path therefore pauses the other path too.

It also knows two states in which calls fail at once instead of waiting: a provider that keeps
rate limiting is *unavailable* for a while (:class:`~scrapy_apigw.core.ratelimit_streak.
RateLimitStreak`), and the whole gateway is *stopping* once the engine starts closing the spider
(graceful stop: SIGINT, ``CLOSESPIDER_*``, Scrapyd ``cancel.json``; see :meth:`Gateway.stop`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import random
import time
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.statscollectors import StatsCollector
from twisted.internet.defer import DeferredLock

from scrapy_apigw.closing import watch_engine_close
from scrapy_apigw.core.adaptive import (
    AdaptiveRate,
    AdaptiveState,
    AimdConfig,
    on_announced,
    on_rate_limited,
    on_success,
    refused_after_burst,
)
from scrapy_apigw.core.breaker import BreakerState, CircuitBreaker
from scrapy_apigw.core.clock import Clock
from scrapy_apigw.core.outcome import Outcome, apply_status_lists, is_retried
from scrapy_apigw.core.payload import Payload, read_payload
from scrapy_apigw.core.ratelimit import SlidingWindowLog, TokenBucket, parse_quota_headers
from scrapy_apigw.core.ratelimit_headers import (
    AnnouncedQuota,
    QuotaSource,
    parse_ratelimit_headers,
)
from scrapy_apigw.core.ratelimit_streak import RateLimitStreak
from scrapy_apigw.core.retry import RetryPolicy, parse_retry_after
from scrapy_apigw.deferreds import maybe_deferred_to_future
from scrapy_apigw.exceptions import CircuitOpenError, Interrupted, RateLimitedError
from scrapy_apigw.pacer import Pacer
from scrapy_apigw.providers.base import ApiCall
from scrapy_apigw.providers.clients import classifier_for, shape_checker_for
from scrapy_apigw.providers.registry import ProviderConfig, provider_for_url
from scrapy_apigw.settings import GatewaySettings, settings_at_start
from scrapy_apigw.waits import Waits

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from scrapy_apigw.cache import ResponseCache
    from scrapy_apigw.fleet.limiter import BreakerTicket, SharedLimits
    from scrapy_apigw.fleet.store import BreakerDecision, BreakerLimits, FleetStore, RateLimits
    from scrapy_apigw.ops.metrics import GatewayMetrics
    from scrapy_apigw.sandbox import Sandbox

logger = logging.getLogger(__name__)

#: Safety margin kept below a sliding-window quota, in requests: arrival jitter on the wire can
#: push one extra request into the server's window (see docs/design.md, "Discogs window").
WINDOW_MARGIN = 1

#: Most tokens a provider's bucket credits a late pacer release (``TokenBucket.late_credit``,
#: docs/design.md "Late timers"). Off (0): with shared limits a credited local release let 3
#: requests of a 3-process fleet into one 0.1 s window at rate 10 / burst 1, and the floor
#: provider (Discogs, a window quota) could not take it anyway.
LATE_CREDIT = 0.0

#: Seconds before its token is due within which the fleet grants an acquire at once
#: (``RateLimits.early``; the script caps it at a quarter of ``1 / rate``): about one loopback
#: round trip plus a timer's lateness, so a process asking at its turn is granted at its one ask
#: whether it arrives a little early or late (docs/design.md, "Early grants").
FLEET_EARLY = 0.002

#: The crawler attribute holding its gateway. On the crawler, not in a module-level registry: the
#: gateway refers to its crawler, so a registry would keep every crawler alive; this way the two
#: form a cycle the garbage collector frees with the crawler.
_CRAWLER_ATTRIBUTE = "_apigw_gateway"


@dataclass(frozen=True)
class Verdict:
    """What one response of a provider meant.

    Attributes:
        outcome: the outcome the retry policy, the breaker and the pacing act on.
        data: the decoded JSON body, or None.
        malformed: for :attr:`Outcome.MALFORMED`, the kind (log-safe): ``"empty body"``,
            ``"HTML page"``, ``"truncated JSON"``, ``"not JSON"``, ``"wrong content type
            text/xml"`` (:mod:`scrapy_apigw.core.payload`), or what the call's shape lacks
            (``"no results list"``, the provider client's ``check_shape``); else None.
    """

    outcome: Outcome
    data: Any = None
    malformed: str | None = None


class ProviderState:
    """Live state of one provider: bucket, optional window quota, breaker, retry policy, the
    rate-limit streak and the pending waits.

    Args:
        config: the provider's configuration.
        clock: monotonic clock in seconds (injected for tests).
        rng: random source of the retry jitter.
        classify: ``(status, decoded JSON or None) -> Outcome`` for this provider (its own
            signals); :meth:`classify` applies the configured status lists on top.
        on_transition: called with ``(provider, old_state, new_state)`` on breaker transitions.
        check_shape: ``(call, decoded 2xx body) -> what is missing, or None``: the shape each of
            the provider's calls needs (its client's ``check_shape``); None checks nothing.
        reactor: ``IReactorTime`` of the pacer and wait timers (default: the running reactor).
        aimd: the constants of the adaptive rate (:mod:`scrapy_apigw.core.adaptive`); None
            (``adaptive: False``) paces at the configured rate and burst only.
    """

    def __init__(
        self,
        config: ProviderConfig,
        clock: Clock,
        rng: random.Random,
        classify: Callable[[int, Any], Outcome],
        on_transition: Callable[[str, BreakerState, BreakerState], None] | None = None,
        check_shape: Callable[[ApiCall, Any], str | None] | None = None,
        reactor: Any = None,
        aimd: AimdConfig | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.clock = clock
        self._classify = classify
        self.check_shape = check_shape
        # A window quota is used to its last request (WINDOW_MARGIN): a late release credited
        # there meets the late sends of a stall at the provider (docs/design.md, "Late timers").
        windowed = bool(config.window_limit and config.window)
        self.bucket = TokenBucket(
            config.rate, config.burst, clock, late_credit=0.0 if windowed else LATE_CREDIT
        )
        self.window = (
            SlidingWindowLog(max(1, config.window_limit - WINDOW_MARGIN), config.window, clock)
            if config.window_limit and config.window
            else None
        )
        self.breaker = CircuitBreaker(
            config.failure_threshold,
            config.open_timeout,
            config.success_threshold,
            clock,
            on_transition=(
                (lambda old, new: on_transition(config.name, old, new)) if on_transition else None
            ),
        )
        self.policy = RetryPolicy(
            config.max_retries, config.backoff_base, config.backoff_cap, config.jitter, rng
        )
        self.pacer = Pacer(self.bucket, self.window, reactor)
        #: consecutive rate-limit answers without a Retry-After: drives the pause length
        self.rate_limit_streak = 0
        #: decides when a provider that keeps rate limiting is treated as unavailable
        self.rate_limits = RateLimitStreak(
            config.max_rate_limit_streak, config.max_rate_limit_wait, config.max_retry_after, clock
        )
        #: pacer turns and retry sleeps in progress (failed at once when waiting is pointless)
        self.waits = Waits(reactor)
        #: this process's AIMD controller (the fleet's record decides while limits are shared)
        self.adaptive = AdaptiveRate(aimd, clock) if aimd is not None else None
        #: the latest send instant (clock s) of a request answered without a rate limit: tells
        #: whether the provider has absorbed the last burst (``refused_after_burst``)
        self.answered_sent_at = -math.inf
        #: when this process's controller last decreased (clock s): until a request sent from
        #: then on is answered, refusals belong to that congestion event
        self.decreased_at = -math.inf

    def classify(self, status: int, data: Any) -> Outcome:
        """The outcome of an answer with HTTP *status* and decoded JSON *data* (or None).

        The provider's classifier first (its own signals: MusicBrainz's 503 rate-limit body,
        Last.fm's error codes), then the configured ``rate_limit_statuses`` and
        ``retry_statuses`` (:func:`~scrapy_apigw.core.outcome.apply_status_lists`).
        """
        outcome = self._classify(status, data)
        return apply_status_lists(
            outcome, status, self.config.retry_statuses, self.config.rate_limit_statuses
        )

    def judge(self, status: int, payload: Payload, call: ApiCall | None = None) -> Verdict:
        """The verdict on one answer: :meth:`classify`, then, for a 2xx success, MALFORMED if
        the body is unusable (*payload*'s problem) or lacks what *call* needs (the provider's
        ``check_shape``; not checked without a call, as on the spider path)."""
        outcome = self.classify(status, payload.data)
        if outcome is Outcome.SUCCESS and 200 <= status < 300:
            problem = payload.problem
            if problem is None and call is not None and self.check_shape is not None:
                problem = self.check_shape(call, payload.data)
            if problem is not None:
                return Verdict(Outcome.MALFORMED, payload.data, problem)
        return Verdict(outcome, payload.data)

    def retries(self, outcome: Outcome, status: int) -> bool:
        """True when an exchange with *outcome* and HTTP *status* (0: no response) may be
        retried; both paths ask this (:func:`~scrapy_apigw.core.outcome.is_retried`: network
        errors and 2xx answers always, other statuses only when in ``retry_statuses``)."""
        return is_retried(outcome, status, self.config.retry_statuses)


class Gateway:
    """Per-crawler registry of :class:`ProviderState` plus the pacing/breaker bookkeeping.

    Get it with :meth:`for_crawler`; components of one crawler share one instance.

    Raises:
        NotConfigured: ``APIGW_ENABLED`` is False, or Scrapy runs without a Twisted reactor
            (``TWISTED_REACTOR_ENABLED=False`` breaks treq and txredisapi).
    """

    def __init__(
        self,
        crawler: Crawler,
        settings: GatewaySettings,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
        reactor: Any = None,
        wall: Clock = time.time,
    ) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self._inc_value = _bound_inc_value(self.stats)
        #: monotonic clock, seconds: every wait, pause and adaptive-rate instant
        self.clock = clock
        #: wall clock, epoch seconds: only to read HTTP dates (Retry-After, resets) and the
        #: ``apigw_not_before`` of a retry (``request.meta`` outlives the process with a JOBDIR)
        self.wall = wall
        self.sandbox: Sandbox | None = None
        if settings.sandbox:
            settings = self._route_to_sandbox(settings)
        self.settings = settings
        rng = rng or random.Random()
        # The AIMD time constants follow the sandbox's speed like the other time constants.
        scale = settings.sandbox_speed if settings.sandbox else 1.0
        self.states: dict[str, ProviderState] = {
            name: ProviderState(
                config,
                clock,
                rng,
                classifier_for(config, settings.specs),
                self._on_transition,
                shape_checker_for(config, settings.specs),
                reactor,
                aimd_config(config, scale),
            )
            for name, config in settings.providers.items()
            if config.enabled
        }
        #: the Prometheus metrics (``APIGW_METRICS_PORT`` or ``PROMETHEUS_MULTIPROC_DIR``),
        #: fed where the ``apigw/*`` stats are counted; None when neither is set
        self.metrics: GatewayMetrics | None = self._open_metrics()
        #: the fleet's shared limits (``APIGW_SHARED_LIMITS``), made by :meth:`open`
        self.shared: SharedLimits | None = None
        #: the enrichment pipeline's answer cache, once it is open (for the admin endpoints)
        self.cache: ResponseCache | None = None
        self._rate_limits: dict[str, RateLimits] = {}
        #: providers whose local controller decreased while the fleet's write is pending
        self._unsettled: set[str] = set()
        #: set once the engine starts closing the spider (see :meth:`stop`)
        self.stopping = False
        self._stop_deadline = 0.0
        self._stop_listeners: list[Callable[[], None]] = []
        self._opened = False
        self._open_lock = DeferredLock()
        # Bound methods of an object the crawler keeps (signals hold weak references).
        crawler.signals.connect(self.open, signal=signals.spider_opened)
        crawler.signals.connect(self.close, signal=signals.spider_closed)

    # -- construction -----------------------------------------------------------------------

    def _open_metrics(self) -> GatewayMetrics | None:
        from scrapy_apigw.ops.metrics import multiprocess_dir

        if self.settings.metrics_port is None and multiprocess_dir() is None:
            return None
        from scrapy_apigw.ops.metrics import GatewayMetrics, metrics_for_process

        metrics = metrics_for_process() if multiprocess_dir() else GatewayMetrics()
        metrics.start(
            (name, state.bucket.rate, state.bucket.burst) for name, state in self.states.items()
        )
        return metrics

    @classmethod
    def for_crawler(cls, crawler: Crawler) -> Gateway:
        """Return the crawler's gateway, creating it on first use (it lives as long as the
        crawler).

        Raises:
            NotConfigured: the gateway is disabled for this crawler (see class docstring).
            ConfigError: an ``APIGW_*`` setting is invalid; already logged as one ERROR line
                (see :func:`~scrapy_apigw.settings.settings_at_start`).
        """
        gateway: Gateway | None = getattr(crawler, _CRAWLER_ATTRIBUTE, None)
        if gateway is None:
            if not crawler.settings.getbool("TWISTED_REACTOR_ENABLED", True):
                raise NotConfigured(
                    "scrapy-apigw needs a Twisted reactor (treq, txredisapi): "
                    "TWISTED_REACTOR_ENABLED is False"
                )
            settings = settings_at_start(crawler.settings)
            if settings is None:
                raise NotConfigured("APIGW_ENABLED is False")
            gateway = cls(crawler, settings)
            setattr(crawler, _CRAWLER_ATTRIBUTE, gateway)
        return gateway

    def _route_to_sandbox(self, settings: GatewaySettings) -> GatewaySettings:
        if settings.sandbox_url:
            url = settings.sandbox_url
        else:
            from scrapy_apigw.sandbox import Sandbox, SandboxConfig
            from scrapy_apigw.sandbox.ports import sandbox_port

            # With a JOBDIR the port is the job's on every run, so a resumed crawl's URLs match.
            port = settings.sandbox_port or sandbox_port(self.crawler.settings.get("JOBDIR"))
            self.sandbox = Sandbox(
                SandboxConfig(
                    host="127.0.0.1",
                    port=port,
                    speed=settings.sandbox_speed,
                    decoys=settings.sandbox_decoys,
                    messy_site=settings.sandbox_messy_site,
                )
            )
            url = f"http://127.0.0.1:{port}"
        logger.warning(
            "APIGW_SANDBOX is on: Spotify, MusicBrainz, Discogs, Last.fm, Beatport and "
            "AcousticBrainz are "
            "served by the local provider sandbox at %s and NONE of them is called for real "
            "(set APIGW_SANDBOX = False and your credentials to use the real APIs)",
            url,
        )
        return settings.routed_to_sandbox(url)

    @property
    def sandbox_url(self) -> str | None:
        """Base URL of the provider sandbox in use, or None outside sandbox mode."""
        return self.settings.sandbox_url if self.settings.sandbox else None

    async def open(self, **_: Any) -> None:
        """Start what the gateway owns (the in-process sandbox) and watch for the engine closing
        the spider (:meth:`stop`). Idempotent, concurrency-safe."""
        await maybe_deferred_to_future(self._open_lock.acquire())
        try:
            if not self._opened:
                if self.sandbox is not None:
                    await self.sandbox.start()
                if self.settings.shared_limits and self.shared is None:
                    self.share_limits(self._connect_fleet())
                    assert self.shared is not None
                    await self.shared.start()
                watch_engine_close(self.crawler, self.stop)
            self._opened = True
        finally:
            self._open_lock.release()

    async def close(self, **_: Any) -> None:
        """Stop what :meth:`open` started and fail any wait still pending. Idempotent."""
        self.stop("spider closed")
        for name, state in self.states.items():
            if state.adaptive is not None and self.stats.get_value(f"apigw/{name}/requests"):
                # The final effective values, changed or not, of every provider used.
                self.stats.set_value(f"apigw/{name}/rate/effective", state.bucket.rate)
                self.stats.set_value(f"apigw/{name}/burst/effective", state.bucket.burst)
            if self.metrics is not None:
                self.metrics.set_rate(name, state.bucket.rate)
            self._lateness_stats(state)
        shared, self.shared = self.shared, None
        if shared is not None:
            await shared.stop()
            self._acquire_stats(shared.store)
        if self.sandbox is not None and self._opened:
            self._opened = False
            await self.sandbox.stop()

    def _lateness_stats(self, state: ProviderState) -> None:
        """Record how late the pacer's timer released requests (``apigw/<p>/pacer/*``)."""
        late = state.pacer.lateness
        if not late.releases:
            return
        self.stats.set_value(f"apigw/{state.name}/pacer/timed_releases", late.releases)
        self.stats.set_value(f"apigw/{state.name}/pacer/late_ms", round(late.total * 1000))
        self.stats.set_value(f"apigw/{state.name}/pacer/late_max_ms", round(late.worst * 1000))

    def _acquire_stats(self, store: FleetStore) -> None:
        """Record the round-trip times of the fleet's acquire (``apigw/fleet/acquire_*``)."""
        acquires = store.round_trips.get("rate")
        if acquires is None or not acquires.count:
            return
        self.stats.set_value("apigw/fleet/acquires", acquires.count)
        self.stats.set_value("apigw/fleet/acquire_p50_us", acquires.percentile(50))
        self.stats.set_value("apigw/fleet/acquire_p99_us", acquires.percentile(99))
        self.stats.set_value("apigw/fleet/acquire_max_us", acquires.max_us)

    def _connect_fleet(self) -> SharedLimits:
        from scrapy_apigw.fleet.limiter import SharedLimits
        from scrapy_apigw.fleet.store import FleetStore

        assert self.settings.redis_url  # checked by GatewaySettings
        store = FleetStore.connect(
            self.settings.redis_url,
            fleet=self.settings.fleet,
            namespace=self.settings.cache_namespace,
            timeout=self.settings.cache_timeout,
        )
        logger.info(
            "apigw: shared limits on: fleet %r (%s, heartbeat %.1f s)",
            self.settings.fleet,
            store,
            self.settings.fleet_heartbeat,
        )
        return SharedLimits(store, self.settings.fleet_heartbeat, self.stats.inc_value, self.clock)

    def share_limits(self, shared: SharedLimits) -> None:
        """Take every provider's limits from the fleet's *shared* ones (what :meth:`open` does
        with ``APIGW_SHARED_LIMITS``; tests pass one whose store decides at a fake clock)."""
        self.shared = shared
        shared.on_adapt = self._fleet_adapted
        shared.on_rate_seen = self._fleet_rate_seen
        shared.on_adapt_failed = self._fleet_adapt_failed
        shared.on_reset = self._fleet_reset

    def rate_limits(self, state: ProviderState) -> RateLimits:
        """*state*'s rate limits as the fleet shares them (the scaled config in sandbox mode)."""
        limits = self._rate_limits.get(state.name)
        if limits is None:
            from scrapy_apigw.fleet.store import RateLimits

            config = state.config
            window_limit, window = config.window_limit or 0, config.window or 0.0
            if not (window_limit and window):
                window_limit, window = 0, 0.0
            limits = self._rate_limits[state.name] = RateLimits(
                rate=config.rate,
                burst=config.burst,
                window_limit=max(1, window_limit - WINDOW_MARGIN) if window_limit else 0,
                window=float(window),
                margin=WINDOW_MARGIN,
                early=FLEET_EARLY,
            )
        return limits

    # -- admin resets -----------------------------------------------------------------------

    def reset_breaker(self, provider: str) -> None:
        """Close this process's circuit of *provider* (admin use: the fleet's one is reset in
        Redis by :mod:`scrapy_apigw.ops.state`). Logged at WARNING.

        Raises:
            KeyError: *provider* is not an enabled provider.
        """
        state = self.states[provider]
        state.breaker.reset()
        self.inc(f"{provider}/breaker/resets")
        logger.warning("apigw: circuit for %s reset by an operator", provider)

    def reset_limits(self, provider: str) -> None:
        """Reset this process's rate-limit state of *provider* (admin use): the pause ends
        (one token at once, refill from there), the rate-limit streak and any unavailable
        period are forgotten, and the effective (adaptive) rate and burst are the configured
        ones again. Waiting calls are re-checked at once. Logged at WARNING.

        Raises:
            KeyError: *provider* is not an enabled provider.
        """
        state = self.states[provider]
        state.bucket.end_pause()
        state.rate_limit_streak = 0
        state.rate_limits.reset()
        if state.adaptive is not None:
            state.decreased_at = -math.inf
            state.adaptive.reset()
            self._set_rate(state, state.adaptive.rate, state.adaptive.burst)
        state.pacer.wake()
        self.inc(f"{provider}/rate_limit/resets")
        logger.warning("apigw: rate limits of %s reset by an operator", provider)

    def _fleet_reset(self, kind: str, provider: str) -> None:
        # Another process (the admin API, the CLI) reset the fleet's state in Redis.
        if provider not in self.states:
            return
        if kind == "breaker":
            self.reset_breaker(provider)
        elif kind == "limits":
            self.reset_limits(provider)

    # -- graceful stop ----------------------------------------------------------------------

    def stop(self, reason: str = "shutdown") -> None:
        """Enter the *stopping* state: the engine has started closing the spider.

        From now on no provider request is started on either path (calls raise
        :class:`~scrapy_apigw.exceptions.Interrupted` at once; cache hits still answer), every
        pending wait (pacer turns, retry sleeps) raises it now, and the listeners added with
        :meth:`on_stop` are told (the pipeline then ends every item's enrichment within
        ``APIGW_SHUTDOWN_TIMEOUT`` seconds). Idempotent.

        Args:
            reason: the engine's close reason (``"shutdown"``, ``"closespider_itemcount"``...),
                for the log.
        """
        if self.stopping:
            return
        self.stopping = True
        self._stop_deadline = self.clock() + self.settings.shutdown_timeout
        cut = sum(
            self._cut_waits(state, functools.partial(Interrupted, name))
            for name, state in self.states.items()
        )
        if cut:
            logger.info(
                "apigw: spider closing (%s): %d provider wait(s) cut short; calls still in "
                "flight end within %.1f s (APIGW_SHUTDOWN_TIMEOUT)",
                reason,
                cut,
                self.settings.shutdown_timeout,
            )
        for listener in self._stop_listeners:
            listener()

    def on_stop(self, listener: Callable[[], None]) -> None:
        """Call *listener* once when :meth:`stop` is entered."""
        self._stop_listeners.append(listener)

    def stop_remaining(self) -> float:
        """Seconds left of the ``APIGW_SHUTDOWN_TIMEOUT`` grace once stopping (0.0 when over)."""
        return max(0.0, self._stop_deadline - self.clock())

    async def sleep(self, state: ProviderState, seconds: float) -> None:
        """Wait *seconds* before a retry to *state*'s provider, cut short when waiting on is
        pointless.

        Raises:
            Interrupted: the gateway is stopping (now or during the wait).
            RateLimitedError: the provider is, or became during the wait, unavailable.
        """
        self._refuse_if_unavailable(state)
        await state.waits.sleep(seconds)

    # -- lookups ----------------------------------------------------------------------------

    def provider_for_url(self, url: str) -> ProviderState | None:
        """The state of the enabled provider owning *url*, or None (request left untouched)."""
        config = provider_for_url(self.settings.providers, url)
        return self.states.get(config.name) if config else None

    # -- pacing -----------------------------------------------------------------------------

    async def acquire(self, state: ProviderState, not_before: float = 0.0) -> float:
        """Wait, without blocking the reactor, until *state*'s provider may be sent a request.

        Honours, in order: *not_before* (a retry's backoff, clock time), then the provider's FIFO
        :class:`~scrapy_apigw.pacer.Pacer`: a provider pause (Retry-After), the token bucket
        and the sliding-window quota, each token taken at the moment of release.

        Returns:
            Seconds waited.

        Raises:
            Interrupted: the gateway is stopping.
            RateLimitedError: the provider is, or became during the wait, unavailable.
        """
        start = self.clock()
        hold = not_before - start
        if hold > 0:
            await self.sleep(state, hold)
        self._refuse_if_unavailable(state)
        await state.waits.wait(state.pacer.turn())
        if self.shared is not None:
            # The local pacer only smoothed this process's queue; the fleet decides.
            limits = self.rate_limits(state)
            local = None
            if state.adaptive is not None:
                local = dataclasses.replace(
                    limits, rate=state.adaptive.rate, burst=state.adaptive.burst
                )
            await self.shared.acquire(
                state.name,
                limits,
                functools.partial(self.sleep, state),
                local,
                more=state.pacer.waiting,
            )
        waited = self.clock() - start
        self._inc(state, "requests")
        if waited > 0.001:
            self._inc(state, "throttle/waits")
            self._inc(state, "throttle/wait_ms", round(waited * 1000))
        if self.metrics is not None:
            self.metrics.observe_wait(state.name, waited)
            self.metrics.set_tokens(state.name, max(0.0, state.bucket.tokens))
        return waited

    def pause(
        self, state: ProviderState, seconds: float, reason: str, level: int = logging.INFO
    ) -> None:
        """Pause every request to *state*'s provider for *seconds* (both paths)."""
        until = self.clock() + seconds
        if until <= state.bucket.blocked_until:
            return
        state.bucket.block_until(until)
        if self.shared is not None:
            self.shared.pause(state.name, seconds, self.rate_limits(state))
        self._inc(state, "pauses")
        logger.log(level, "apigw: pausing %s for %.2f s (%s)", state.name, seconds, reason)

    # -- breaker ----------------------------------------------------------------------------

    def fail_fast(self, state: ProviderState) -> None:
        """Refuse a call at once when it cannot be sent, without taking a half-open permit.

        Used before waiting for a token, so a dead provider does not hold requests in line.

        Raises:
            Interrupted: the gateway is stopping.
            RateLimitedError: the provider is unavailable (it keeps rate limiting).
            CircuitOpenError: the circuit is OPEN.
        """
        self._refuse_if_unavailable(state)
        if state.breaker.state is BreakerState.OPEN:
            self._inc(state, "breaker/rejected")
            raise CircuitOpenError(state.name, state.breaker.retry_in())

    def check_circuit(self, state: ProviderState) -> None:
        """Ask the breaker for a permit right before sending.

        Raises:
            Interrupted: the gateway is stopping.
            RateLimitedError: the provider is unavailable (it keeps rate limiting).
            CircuitOpenError: OPEN, or HALF_OPEN with every probe permit taken.
        """
        self._refuse_if_unavailable(state)
        if not state.breaker.allow_request():
            self._inc(state, "breaker/rejected")
            raise CircuitOpenError(state.name, state.breaker.retry_in())

    def record_breaker(self, state: ProviderState, outcome: Outcome) -> None:
        """Feed one exchange's outcome to the breaker (4xx and rate limits are ignored); a
        failure is counted (``apigw/<provider>/breaker/failures``)."""
        if outcome.breaker_failure:
            self._inc(state, "breaker/failures")
        self._feed_breaker(state, outcome)

    @staticmethod
    def _feed_breaker(state: ProviderState, outcome: Outcome) -> None:
        if outcome.breaker_failure:
            state.breaker.record_failure()
        elif outcome.breaker_success:
            state.breaker.record_success()
        else:
            state.breaker.record_ignored()

    # -- the fleet's breaker (APIGW_SHARED_LIMITS) -------------------------------------------

    async def fleet_fail_fast(self, state: ProviderState) -> None:
        """:meth:`fail_fast`, asking the fleet's breaker (``peek``) when limits are shared;
        this process's breaker decides when Redis does not answer.

        Raises:
            Interrupted, RateLimitedError, CircuitOpenError: as :meth:`fail_fast`.
        """
        decision = await self._fleet_breaker(state, "peek")
        if decision is None:
            self.fail_fast(state)
        elif not decision.allowed:
            self._inc(state, "breaker/rejected")
            raise CircuitOpenError(state.name, decision.retry_in)

    async def fleet_check_circuit(self, state: ProviderState) -> BreakerTicket:
        """:meth:`check_circuit`, taking the permit from the fleet's breaker (``allow``) when
        limits are shared: N processes probing a recovering provider send
        ``success_threshold`` probes in total. Give the ticket back to
        :meth:`fleet_record_breaker` with the call's outcome.

        Raises:
            Interrupted, RateLimitedError, CircuitOpenError: as :meth:`check_circuit`.
        """
        from scrapy_apigw.fleet.limiter import BreakerTicket

        decision = await self._fleet_breaker(state, "allow")
        if decision is None:
            self.check_circuit(state)
            return BreakerTicket(shared=False)
        if not decision.allowed:
            self._inc(state, "breaker/rejected")
            raise CircuitOpenError(state.name, decision.retry_in)
        return BreakerTicket(shared=True, permit=decision.permit)

    async def fleet_record_breaker(
        self, state: ProviderState, outcome: Outcome, ticket: BreakerTicket | None
    ) -> None:
        """:meth:`record_breaker` on the breaker that let the call through (*ticket*; None:
        the local one). A fleet transition is logged and counted by the one process whose call
        made it."""
        if ticket is None or not ticket.shared:
            self.record_breaker(state, outcome)
            return
        if outcome.breaker_failure:
            self._inc(state, "breaker/failures")
        op = (
            "failure"
            if outcome.breaker_failure
            else "success"
            if outcome.breaker_success
            else "ignored"
        )
        if await self._fleet_breaker(state, op, ticket.permit) is None:
            self._feed_breaker(state, outcome)

    async def _fleet_breaker(
        self, state: ProviderState, op: str, permit: str | None = None
    ) -> BreakerDecision | None:
        if self.stopping or self.shared is None:
            return None  # fail_fast / check_circuit raise Interrupted when stopping
        self._refuse_if_unavailable(state)
        decision = await self.shared.breaker(op, state.name, self.breaker_limits(state), permit)
        if decision is not None:
            for old, new in decision.transitions:
                self._on_transition(state.name, old, new)
        return decision

    def breaker_limits(self, state: ProviderState) -> BreakerLimits:
        """*state*'s breaker rules as the fleet shares them (scaled in sandbox mode)."""
        from scrapy_apigw.fleet.store import BreakerLimits

        config = state.config
        return BreakerLimits(
            config.failure_threshold, config.open_timeout, config.success_threshold
        )

    def rate_limited_error(
        self, state: ProviderState, retry_after: float | None = None
    ) -> RateLimitedError:
        """The error of a call refused because *state*'s provider is unavailable.

        ``retry_in`` is the time left of the unavailable period, or *retry_after* when longer.
        """
        return RateLimitedError(
            state.name, max(state.rate_limits.unavailable_for(), retry_after or 0.0)
        )

    def _refuse_if_unavailable(self, state: ProviderState) -> None:
        if self.stopping:
            raise Interrupted(state.name)
        if state.rate_limits.unavailable_for() > 0:
            self._inc(state, "rate_limit/rejected")
            raise self.rate_limited_error(state)

    def _enter_unavailable(self, state: ProviderState, why: str) -> None:
        seconds = state.rate_limits.unavailable_for()
        self._inc(state, "rate_limit/unavailable")
        logger.warning(
            "apigw: %s is treated as unavailable for %.1f s (%s): its calls fail at once "
            "and items move on without it",
            state.name,
            seconds,
            why,
        )
        cut = self._cut_waits(state, lambda: self.rate_limited_error(state))
        if cut:
            self._inc(state, "rate_limit/rejected", cut)

    @staticmethod
    def _cut_waits(state: ProviderState, error: Callable[[], Exception]) -> int:
        cut = state.waits.fail_all(error)
        state.pacer.drop_cancelled()
        return cut

    def _on_transition(self, provider: str, old: BreakerState, new: BreakerState) -> None:
        self.inc(f"{provider}/breaker/{new.value}")
        if new is BreakerState.OPEN:
            timeout = self.settings.providers[provider].open_timeout
            logger.warning(
                "apigw: circuit for %s OPEN (was %s): failing its calls at once for %.1f s",
                provider,
                old.value,
                timeout,
            )
        else:
            logger.info("apigw: circuit for %s %s (was %s)", provider, new.value, old.value)

    # -- responses --------------------------------------------------------------------------

    def classify(
        self,
        state: ProviderState,
        status: int,
        body: bytes | None,
        content_type: str | None = None,
        json_expected: bool = True,
    ) -> Outcome:
        """Classify one response of *state*'s provider: status, body and ``Content-Type`` (see
        :func:`~scrapy_apigw.core.payload.read_payload` and :meth:`ProviderState.judge`)."""
        return state.judge(status, read_payload(body, content_type, json_expected)).outcome

    def record_pacing(
        self,
        state: ProviderState,
        outcome: Outcome,
        headers: Mapping[str, str],
        sent_at: float | None = None,
    ) -> float | None:
        """Apply what a response says about pacing; return the Retry-After hint in seconds.

        - A Retry-After (RFC 9110 §10.2.3, delta-seconds or HTTP-date measured against the
          response's Date header) on a retryable answer (429, 503...) pauses the whole provider
          (PROVIDERS.md: a pause of the provider, not of one request).
        - A rate-limited answer without one pauses for the retry policy's backoff of the
          current streak.
        - Each pause is told to the provider's :class:`~scrapy_apigw.core.ratelimit_streak.
          RateLimitStreak`: after ``max_rate_limit_streak`` refused pauses in a row, pauses
          totalling ``max_rate_limit_wait`` s, or one pause over ``max_retry_after``, the
          provider is unavailable for that pause: its pending waits fail now with
          :class:`~scrapy_apigw.exceptions.RateLimitedError`, new calls at once (one WARNING
          per entry).
        - Quota headers (Discogs ``X-Discogs-Ratelimit*``) adjust the sliding window to the
          limit the provider announces, and a ``Remaining: 0`` pauses for one window share.
        - The adaptive rate (:meth:`adapt`): a rate limit lowers the effective rate and burst
          once per congestion event (*sent_at*: when the request was sent, on :attr:`clock`),
          other answers raise them after quiet intervals, and an announced quota
          (:func:`~scrapy_apigw.core.ratelimit_headers.parse_ratelimit_headers`: IETF
          ``RateLimit``/``RateLimit-Policy``, ``X-RateLimit-*``, Discogs) is their ceiling.
          Without a Retry-After, an announced quota used up (``remaining`` 0 with a reset)
          pauses until its reset (draft-ietf-httpapi-ratelimit-headers §7: Retry-After wins).

        Dates (Retry-After as an HTTP-date, epoch resets) are read on :attr:`wall`; every wait
        is then set on :attr:`clock`.
        """
        self._inc(state, f"responses/{outcome.value}")
        self.observe_response_time(state, sent_at)
        now = self.wall()
        retry_after = parse_retry_after(headers.get("retry-after"), now, headers.get("date"))
        announced = (
            parse_ratelimit_headers(headers, now, window=state.config.window)
            if state.adaptive is not None
            else None
        )
        reset: float | None = None
        if announced is not None and announced.source is QuotaSource.DISCOGS:
            # Discogs' window is 60 real seconds; the configured one follows the sandbox speed.
            announced = dataclasses.replace(announced, window=state.config.window or 60.0)
        elif announced is not None:
            reset = announced.pause_seconds()  # Discogs: its window share, below
        paused: float | None = None
        if outcome.retryable and retry_after is not None:
            self.pause(state, retry_after, f"Retry-After: {headers.get('retry-after')}")
            paused = retry_after
        elif retry_after is None and reset:
            assert announced is not None
            self.pause(state, reset, f"{announced.source.value}: quota used up until its reset")
            paused = reset
        if outcome is Outcome.RATE_LIMITED:
            state.rate_limit_streak += 1
            if paused is None:
                paused = state.policy.backoff(state.rate_limit_streak)
                self.pause(state, paused, "rate limited, no Retry-After")
        elif outcome.breaker_success:
            state.rate_limit_streak = 0
            state.rate_limits.record_success()
        if paused is not None:
            why = state.rate_limits.record_pause(
                paused, rate_limited=outcome is Outcome.RATE_LIMITED
            )
            if why is not None:
                self._enter_unavailable(state, why)
        spec = self.settings.specs.get(state.name)
        prefix = spec.quota_header if spec is not None else None
        if prefix and state.window is not None and state.config.window:
            quota = parse_quota_headers(headers, prefix)
            if self.shared is not None:
                self.shared.learn_quota(state.name, quota, state.config.window)
            limit = max(1, quota.limit - WINDOW_MARGIN) if quota.limit else None
            if limit is not None and limit != state.window.limit:
                state.window.set_limit(limit)
            if quota.remaining == 0 and quota.limit:
                # Routine at full speed: the window is used to the last request by design.
                share = state.config.window / quota.limit
                self.pause(state, share, f"{prefix}-remaining: 0", logging.DEBUG)
        self.adapt(state, outcome, announced, sent_at)
        return retry_after

    # -- adaptive rate ----------------------------------------------------------------------

    def adapt(
        self,
        state: ProviderState,
        outcome: Outcome,
        announced: AnnouncedQuota | None = None,
        sent_at: float | None = None,
    ) -> None:
        """Feed one answer to *state*'s adaptive rate (AIMD, :mod:`scrapy_apigw.core.adaptive`)
        and pace at the result: the local token bucket's rate and burst follow the effective
        ones (``apigw/<provider>/rate/effective``, ``.../burst/effective``).

        With shared limits the fleet's record in Redis decides (:meth:`SharedLimits.adapt`:
        one decrease per congestion event for the whole fleet, and every process paces at the
        fleet's rate); while Redis fails, this process's own controller does, which sees every
        answer in both modes. A network error is no answer, and a server error or a malformed
        answer says nothing of the rate (raising it during an outage would meet the recovered
        provider at full speed): neither changes anything but the announced ceiling.

        Args:
            announced: the quota the answer announced, if any: its ceiling
                (:meth:`~scrapy_apigw.core.ratelimit_headers.AnnouncedQuota.ceiling`) bounds
                the effective rate and burst.
            sent_at: when the request was sent, :attr:`clock` seconds; None: unknown (counts as
                sent now).
        """
        adaptive = state.adaptive
        if adaptive is None or outcome is Outcome.NETWORK_ERROR:
            return
        rate_limited = outcome is Outcome.RATE_LIMITED
        answered = not rate_limited and not outcome.breaker_failure
        config = adaptive.config
        ceiling = announced.ceiling() if announced is not None else None
        decreased = False
        after_burst = self._after_burst(state, sent_at) if rate_limited else None
        recovered = after_burst is None or state.answered_sent_at >= state.decreased_at
        if not rate_limited and sent_at is not None:
            state.answered_sent_at = max(state.answered_sent_at, sent_at)
        if ceiling is not None:
            adaptive.announced(*ceiling)
        if rate_limited:
            decreased = adaptive.rate_limited(sent_at, after_burst, recovered)
            if decreased:
                state.decreased_at = self.clock()
        elif answered:
            adaptive.success()
        if self.shared is not None:

            def event(fleet: AdaptiveState, now: float, offset: float) -> AdaptiveState:
                if ceiling is not None:
                    fleet = on_announced(fleet, config, *ceiling)
                if rate_limited:
                    sent = None if sent_at is None else sent_at + offset
                    return on_rate_limited(fleet, config, now, sent, after_burst, recovered)
                return on_success(fleet, config, now) if answered else fleet

            if self.shared.adapt(state.name, config, event, adaptive_ttl(config)):
                if decreased:  # counted by _fleet_adapt_failed if Redis fails this write
                    self._unsettled.add(state.name)
                return  # the fleet's record decides (applied by _fleet_adapted)
        if decreased:
            self._decreased(state, adaptive.rate, adaptive.burst)
        self._set_rate(state, adaptive.rate, adaptive.burst)

    @staticmethod
    def _after_burst(state: ProviderState, sent_at: float | None) -> bool | None:
        """How a refused request sent at *sent_at* left (see :func:`refused_after_burst`):
        None when unknown (no send time, or nothing was sent through this provider's bucket)."""
        bucket = state.bucket
        if sent_at is None or not bucket.taken:
            return None
        return refused_after_burst(sent_at, bucket.ahead_until, state.answered_sent_at)

    def _fleet_adapted(self, provider: str, rate: float, burst: int, decreased: bool) -> None:
        state = self.states.get(provider)
        if state is None or state.adaptive is None:
            return
        if decreased:
            state.decreased_at = max(state.decreased_at, self.clock())
            self._decreased(state, rate, burst, " for the fleet")
        self._unsettled.discard(provider)
        self._set_rate(state, rate, burst)

    def _fleet_rate_seen(self, provider: str, rate: float, burst: int) -> None:
        state = self.states.get(provider)
        if state is not None and state.adaptive is not None:
            if rate < state.bucket.rate or burst < state.bucket.burst:
                # Another process's decrease: until a request sent from now on is answered,
                # this process's refusals belong to that congestion event too.
                state.decreased_at = max(state.decreased_at, self.clock())
            self._set_rate(state, rate, burst)

    def _fleet_adapt_failed(self, provider: str) -> None:
        state = self.states.get(provider)
        if state is not None and state.adaptive is not None:
            adaptive = state.adaptive
            if provider in self._unsettled:
                self._unsettled.discard(provider)
                self._decreased(state, adaptive.rate, adaptive.burst)
            self._set_rate(state, adaptive.rate, adaptive.burst)

    def _decreased(self, state: ProviderState, rate: float, burst: int, where: str = "") -> None:
        self._inc(state, "rate/decreases")
        logger.info(
            "apigw: %s rate limited: effective rate lowered%s to %.3g req/s, burst %d "
            "(configured %.3g req/s, burst %d)",
            state.name,
            where,
            rate,
            burst,
            state.config.rate,
            state.config.burst,
        )

    def _set_rate(self, state: ProviderState, rate: float, burst: int) -> None:
        bucket = state.bucket
        if rate != bucket.rate:
            bucket.set_rate(rate)
            self.stats.set_value(f"apigw/{state.name}/rate/effective", rate)
            if self.metrics is not None:
                self.metrics.set_rate(state.name, rate)
        if burst != bucket.burst:
            bucket.set_burst(burst)
            self.stats.set_value(f"apigw/{state.name}/burst/effective", burst)

    def retry_delay(
        self, state: ProviderState, outcome: Outcome, attempt: int, retry_after: float | None
    ) -> float | None:
        """Seconds retry number *attempt* must wait before it is sent, on either path.

        Returns:
            None when the provider is unavailable (it keeps rate limiting, see
            :meth:`record_pacing`) or its Retry-After exceeds ``max_retry_after``: do not retry,
            the call fails with :meth:`rate_limited_error`; the hint itself when there is one
            (the provider pause holds it too); 0 for a rate limit without a hint (its backoff
            pause holds the whole provider); else the policy's backoff with jitter.
        """
        if state.rate_limits.unavailable_for() > 0:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= state.config.max_retry_after else None
        if outcome is Outcome.RATE_LIMITED:
            return 0.0
        return state.policy.delay(attempt)

    def observe(
        self,
        state: ProviderState,
        outcome: Outcome,
        headers: Mapping[str, str],
        sent_at: float | None = None,
    ) -> float | None:
        """Record one exchange on both breaker and pacing (*sent_at*: when the request was
        sent, :attr:`clock` seconds); return the Retry-After hint."""
        self.record_breaker(state, outcome)
        return self.record_pacing(state, outcome, headers, sent_at)

    async def fleet_observe(
        self,
        state: ProviderState,
        outcome: Outcome,
        headers: Mapping[str, str],
        ticket: BreakerTicket | None,
        sent_at: float | None = None,
    ) -> float | None:
        """:meth:`observe`, on the breaker that let the call through (*ticket*, from
        :meth:`fleet_check_circuit`)."""
        await self.fleet_record_breaker(state, outcome, ticket)
        return self.record_pacing(state, outcome, headers, sent_at)

    # -- stats ------------------------------------------------------------------------------

    def _inc(self, state: ProviderState, key: str, value: int = 1) -> None:
        self.inc(f"{state.name}/{key}", value)

    def inc(self, key: str, value: int = 1) -> None:
        """Increment the ``apigw/<key>`` stat, and the metric that mirrors it (if any: see
        :meth:`~scrapy_apigw.ops.metrics.GatewayMetrics.count`)."""
        self._inc_value(f"apigw/{key}", value)
        if self.metrics is not None:
            self.metrics.count(key, value)

    def retried(self, state: ProviderState, outcome: Outcome) -> None:
        """Count one retry of an exchange that ended with *outcome* (``apigw/<provider>/retries``
        and ``.../retries/<outcome>``), on either path."""
        self._inc(state, "retries")
        self._inc(state, f"retries/{outcome.value}")

    def retries_ended(self, state: ProviderState, answered: bool) -> None:
        """A call or request retried at least once got an answer (*answered*:
        ``apigw/<provider>/retry/succeeded``) or gave up (``.../retry/gave_up``)."""
        self._inc(state, "retry/succeeded" if answered else "retry/gave_up")

    def observe_response_time(self, state: ProviderState, sent_at: float | None) -> None:
        """Observe the response time of an exchange sent at *sent_at* (:attr:`clock`
        seconds; None: unknown, nothing observed) and answered (or failed) now.

        A sent exchange is also settled in the provider's sliding window: it counts there until
        now plus the window, since it may have reached the provider as late as now
        (:meth:`~scrapy_apigw.core.ratelimit.SlidingWindowLog.settle`)."""
        if sent_at is None:
            return
        if state.window is not None:
            state.window.settle()
        if self.metrics is not None:
            self.metrics.observe_response(state.name, max(0.0, self.clock() - sent_at))


def _bound_inc_value(stats: Any) -> Callable[..., None]:
    """*stats*' own ``inc_value``, bound once: Scrapy's ``StatsCollector.__getattribute__``
    costs per attribute read and wraps the method in a check for the deprecated ``spider``
    argument, which :meth:`Gateway.inc` never passes. The class's method is what runs, so a
    stats collector subclass's ``inc_value`` is still the one called."""
    method = getattr(type(stats), "inc_value", None)
    if method is StatsCollector.inc_value and isinstance(stats.__dict__.get("_stats"), dict):
        # Scrapy's own method reads ``self._stats`` through that same ``__getattribute__``
        # (a caught AttributeError per read: ~3 % of a warm crawl). Its body, reading the
        # dict without it, each time (``set_stats`` replaces it).
        read = object.__getattribute__

        def inc_value(key: str, count: int = 1) -> None:
            values = read(stats, "_stats")
            values[key] = values.setdefault(key, 0) + count

        return inc_value
    if isinstance(method, types.FunctionType):
        return cast("Callable[..., None]", types.MethodType(method, stats))
    return cast("Callable[..., None]", stats.inc_value)


def aimd_config(config: ProviderConfig, scale: float = 1.0) -> AimdConfig | None:
    """The AIMD constants of *config*'s provider, or None when ``adaptive`` is off.

    The ceiling is the configured rate and burst; the time constants are
    :class:`~scrapy_apigw.core.adaptive.AimdConfig`'s defaults divided by *scale* (the
    sandbox speed, as the other time constants).
    """
    if not config.adaptive:
        return None
    defaults = AimdConfig(rate=config.rate, burst=config.burst)
    return dataclasses.replace(
        defaults,
        quiet=defaults.quiet / scale,
        hold=defaults.hold / scale,
        probe_after=defaults.probe_after / scale,
        probe_max=defaults.probe_max / scale,
        steady=defaults.steady / scale,
    )


def adaptive_ttl(config: AimdConfig) -> float:
    """Seconds the fleet keeps an adaptive record after its last write: an hour, and at least
    twice ``probe_max`` (a record at its plateau is rewritten only on the next rate limit)."""
    return max(3600.0, 2 * config.probe_max)
