"""The gateway: one per crawler, the single source of truth for every provider's limits.

Both paths to a provider go through it: spider requests (the downloader middlewares) and
enrichment calls (the pipeline's transport). Per provider it holds a token bucket (plus an
optional sliding-window quota), a circuit breaker, a retry policy and the ``apigw/...`` stats.
A Retry-After seen on one path therefore pauses the other path too.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import DeferredLock

from scrapy_apigw.core.breaker import BreakerState, CircuitBreaker
from scrapy_apigw.core.clock import Clock
from scrapy_apigw.core.outcome import Outcome
from scrapy_apigw.core.ratelimit import SlidingWindowLog, TokenBucket, parse_quota_headers
from scrapy_apigw.core.retry import RetryPolicy, parse_retry_after
from scrapy_apigw.exceptions import CircuitOpenError
from scrapy_apigw.pacer import Pacer
from scrapy_apigw.providers.clients import classifier_for
from scrapy_apigw.providers.registry import ProviderConfig, provider_for_url
from scrapy_apigw.settings import GatewaySettings

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from scrapy_apigw.sandbox import Sandbox

logger = logging.getLogger(__name__)

#: Safety margin kept below a sliding-window quota, in requests: arrival jitter on the wire can
#: push one extra request into the server's window (see docs/design.md, "Discogs window").
WINDOW_MARGIN = 1

_GATEWAYS: weakref.WeakKeyDictionary[Crawler, Gateway] = weakref.WeakKeyDictionary()


class ProviderState:
    """Live state of one provider: bucket, optional window quota, breaker, retry policy.

    Args:
        config: the provider's configuration.
        clock: monotonic clock in seconds (injected for tests).
        rng: random source of the retry jitter.
        classify: ``(status, decoded JSON or None) -> Outcome`` for this provider.
        on_transition: called with ``(provider, old_state, new_state)`` on breaker transitions.
    """

    def __init__(
        self,
        config: ProviderConfig,
        clock: Clock,
        rng: random.Random,
        classify: Callable[[int, Any], Outcome],
        on_transition: Callable[[str, BreakerState, BreakerState], None] | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.clock = clock
        self.classify = classify
        self.bucket = TokenBucket(config.rate, config.burst, clock)
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
        self.pacer = Pacer(self.bucket, self.window)
        #: consecutive rate-limit answers without a Retry-After: drives the pause length
        self.rate_limit_streak = 0


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
    ) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.clock = clock
        self.sandbox: Sandbox | None = None
        if settings.sandbox:
            settings = self._route_to_sandbox(settings)
        self.settings = settings
        rng = rng or random.Random()
        self.states: dict[str, ProviderState] = {
            name: ProviderState(config, clock, rng, classifier_for(config), self._on_transition)
            for name, config in settings.providers.items()
            if config.enabled
        }
        self._opened = False
        self._open_lock = DeferredLock()
        # Bound methods of an object the crawler keeps (signals hold weak references).
        crawler.signals.connect(self.open, signal=signals.spider_opened)
        crawler.signals.connect(self.close, signal=signals.spider_closed)

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def for_crawler(cls, crawler: Crawler) -> Gateway:
        """Return the crawler's gateway, creating it on first use.

        Raises:
            NotConfigured: the gateway is disabled for this crawler (see class docstring).
        """
        gateway = _GATEWAYS.get(crawler)
        if gateway is None:
            if not crawler.settings.getbool("TWISTED_REACTOR_ENABLED", True):
                raise NotConfigured(
                    "scrapy-apigw needs a Twisted reactor (treq, txredisapi): "
                    "TWISTED_REACTOR_ENABLED is False"
                )
            settings = GatewaySettings.from_settings(crawler.settings)
            if not settings.enabled:
                raise NotConfigured("APIGW_ENABLED is False")
            gateway = cls(crawler, settings)
            _GATEWAYS[crawler] = gateway
        return gateway

    def _route_to_sandbox(self, settings: GatewaySettings) -> GatewaySettings:
        if settings.sandbox_url:
            url = settings.sandbox_url
        else:
            from scrapy_apigw.sandbox import Sandbox, SandboxConfig

            port = settings.sandbox_port or _free_port()
            self.sandbox = Sandbox(
                SandboxConfig(host="127.0.0.1", port=port, speed=settings.sandbox_speed)
            )
            url = f"http://127.0.0.1:{port}"
        logger.warning(
            "APIGW_SANDBOX is on: Spotify, MusicBrainz, Discogs, Last.fm and AcousticBrainz are "
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
        """Start what the gateway owns (the in-process sandbox). Idempotent, concurrency-safe."""
        await maybe_deferred_to_future(self._open_lock.acquire())
        try:
            if not self._opened and self.sandbox is not None:
                await self.sandbox.start()
            self._opened = True
        finally:
            self._open_lock.release()

    async def close(self, **_: Any) -> None:
        """Stop what :meth:`open` started. Idempotent."""
        if self.sandbox is not None and self._opened:
            self._opened = False
            await self.sandbox.stop()

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
        """
        start = self.clock()
        hold = not_before - start
        if hold > 0:
            await sleep(hold)
        await state.pacer.wait()
        waited = self.clock() - start
        self._inc(state, "requests")
        if waited > 0.001:
            self._inc(state, "throttle/waits")
            self._inc(state, "throttle/wait_ms", round(waited * 1000))
        return waited

    def pause(
        self, state: ProviderState, seconds: float, reason: str, level: int = logging.INFO
    ) -> None:
        """Pause every request to *state*'s provider for *seconds* (both paths)."""
        until = self.clock() + seconds
        if until <= state.bucket.blocked_until:
            return
        state.bucket.block_until(until)
        self._inc(state, "pauses")
        logger.log(level, "apigw: pausing %s for %.2f s (%s)", state.name, seconds, reason)

    # -- breaker ----------------------------------------------------------------------------

    def fail_fast(self, state: ProviderState) -> None:
        """Raise CircuitOpenError if the circuit is OPEN, without taking a half-open permit.

        Used before waiting for a token, so a dead provider does not hold requests in line.
        """
        if state.breaker.state is BreakerState.OPEN:
            self._inc(state, "breaker/rejected")
            raise CircuitOpenError(state.name, state.breaker.retry_in())

    def check_circuit(self, state: ProviderState) -> None:
        """Ask the breaker for a permit right before sending.

        Raises:
            CircuitOpenError: OPEN, or HALF_OPEN with every probe permit taken.
        """
        if not state.breaker.allow_request():
            self._inc(state, "breaker/rejected")
            raise CircuitOpenError(state.name, state.breaker.retry_in())

    def record_breaker(self, state: ProviderState, outcome: Outcome) -> None:
        """Feed one exchange's outcome to the breaker (4xx and rate limits are ignored)."""
        if outcome.breaker_failure:
            state.breaker.record_failure()
        elif outcome.breaker_success:
            state.breaker.record_success()
        else:
            state.breaker.record_ignored()

    def _on_transition(self, provider: str, old: BreakerState, new: BreakerState) -> None:
        self.stats.inc_value(f"apigw/{provider}/breaker/{new.value}")
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

    def classify(self, state: ProviderState, status: int, body: bytes | None) -> Outcome:
        """Classify one response of *state*'s provider (status plus decoded JSON body)."""
        return state.classify(status, decode_json(body))

    def record_pacing(
        self,
        state: ProviderState,
        outcome: Outcome,
        headers: Mapping[str, str],
    ) -> float | None:
        """Apply what a response says about pacing; return the Retry-After hint in seconds.

        - A Retry-After (RFC 9110 §10.2.3, delta-seconds or HTTP-date measured against the
          response's Date header) on a retryable answer (429, 503...) pauses the whole provider
          (PROVIDERS.md: a pause of the provider, not of one request).
        - A rate-limited answer without one pauses for the retry policy's backoff of the
          current streak.
        - Quota headers (Discogs ``X-Discogs-Ratelimit*``) adjust the sliding window to the
          limit the provider announces, and a ``Remaining: 0`` pauses for one window share.
        """
        self._inc(state, f"responses/{outcome.value}")
        retry_after = parse_retry_after(
            headers.get("retry-after"), time.time(), headers.get("date")
        )
        if outcome.retryable and retry_after is not None:
            self.pause(state, retry_after, f"Retry-After: {headers.get('retry-after')}")
        if outcome is Outcome.RATE_LIMITED:
            state.rate_limit_streak += 1
            if retry_after is None:
                delay = state.policy.backoff(state.rate_limit_streak)
                self.pause(state, delay, "rate limited, no Retry-After")
        elif outcome.breaker_success:
            state.rate_limit_streak = 0
        prefix = _QUOTA_HEADERS.get(state.name)
        if prefix and state.window is not None and state.config.window:
            quota = parse_quota_headers(headers, prefix)
            limit = max(1, quota.limit - WINDOW_MARGIN) if quota.limit else None
            if limit is not None and limit != state.window.limit:
                state.window.set_limit(limit)
            if quota.remaining == 0 and quota.limit:
                # Routine at full speed: the window is used to the last request by design.
                share = state.config.window / quota.limit
                self.pause(state, share, f"{prefix}-remaining: 0", logging.DEBUG)
        return retry_after

    def retry_delay(
        self, state: ProviderState, outcome: Outcome, attempt: int, retry_after: float | None
    ) -> float | None:
        """Seconds retry number *attempt* must wait before it is sent, on either path.

        Returns:
            None when the provider's Retry-After exceeds ``max_retry_after`` (do not retry; the
            provider stays paused for the whole hint); the hint itself when there is one (the
            provider pause holds it too); 0 for a rate limit without a hint (its backoff pause
            holds the whole provider); else the policy's backoff with jitter.
        """
        if retry_after is not None:
            return retry_after if retry_after <= state.config.max_retry_after else None
        if outcome is Outcome.RATE_LIMITED:
            return 0.0
        return state.policy.delay(attempt)

    def observe(
        self, state: ProviderState, outcome: Outcome, headers: Mapping[str, str]
    ) -> float | None:
        """Record one exchange on both breaker and pacing; return the Retry-After hint."""
        self.record_breaker(state, outcome)
        return self.record_pacing(state, outcome, headers)

    # -- stats ------------------------------------------------------------------------------

    def _inc(self, state: ProviderState, key: str, value: int = 1) -> None:
        self.stats.inc_value(f"apigw/{state.name}/{key}", value)

    def inc(self, key: str, value: int = 1) -> None:
        """Increment the ``apigw/<key>`` stat."""
        self.stats.inc_value(f"apigw/{key}", value)


#: Providers that announce their quota in headers, and the header prefix (lower case).
_QUOTA_HEADERS = {"discogs": "x-discogs-ratelimit"}


def decode_json(body: bytes | None) -> Any:
    """Decode a JSON body; None for an empty, non-JSON or oversized (> 5 MB) body."""
    if not body or len(body) > 5_000_000:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _free_port() -> int:
    # Bound and released at once: the in-process sandbox listens on it moments later.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
