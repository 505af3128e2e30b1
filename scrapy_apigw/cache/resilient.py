"""The response cache: answers in, answers out, and a backend failure never fails a crawl.

A cache is an optimisation, so an unreachable or broken backend degrades to "no cache": a lookup
becomes a miss and a store a no-op, with a rate-limited warning. A circuit breaker then skips the
backend for a while, so a dead Redis costs no waiting per item.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from scrapy_apigw.cache.base import (
    CACHEABLE_KINDS,
    CacheBackend,
    CorruptEntry,
    cache_key,
    decode_answer,
    encode_answer,
)
from scrapy_apigw.core.breaker import BreakerState, CircuitBreaker
from scrapy_apigw.core.clock import Clock
from scrapy_apigw.providers.base import ApiAnswer, ApiCall

__all__ = ["EVENTS", "ResponseCache"]

logger = logging.getLogger(__name__)

#: Every event name passed to ``on_event``; each operation emits at most one.
EVENTS = ("hit", "miss", "store", "error", "skipped")


class ResponseCache:
    """Caches :class:`ApiAnswer` objects by :class:`ApiCall`, degrading failures to misses.

    Only ``ok`` and ``not_found`` answers are stored (negative caching of "not found", RFC 9110
    §15.1, with the provider's ``not_found_ttl``); never rate-limit or server-error responses
    (RFC 6585 §4: a 429 "MUST NOT" be cached; a 5xx is transient).

    Failure handling: any exception from the backend (error, timeout, refused connection) turns
    a :meth:`get` into a miss and a :meth:`put` into a no-op, and is logged as a WARNING at most
    once per *retry_after* seconds (the first one at once). After *failure_threshold* consecutive
    failures, or a failed :meth:`open`, the backend is skipped for *retry_after* seconds; then one
    call probes it: success resumes caching (logged at INFO), failure skips it again.

    Events, through ``on_event(event, provider)``, exactly one per operation (none for a
    :meth:`put` that is refused as uncacheable, nor for :meth:`open`/:meth:`close`):

    - ``"hit"``: :meth:`get` found a valid entry;
    - ``"miss"``: :meth:`get` found nothing (or a corrupt entry, which is deleted);
    - ``"store"``: :meth:`put` stored the answer;
    - ``"error"``: the backend failed this :meth:`get` or :meth:`put` (so the get was a miss);
    - ``"skipped"``: the backend is being skipped after failures (or the cache is closed); the
      get counted as a miss, the put did nothing.

    So lookups = hit + miss + error + skipped (for the gets), and a hit ratio is
    ``hit / (hit + miss + error + skipped)``.

    Args:
        backend: where entries live (:class:`~.redis.RedisCacheBackend`,
            :class:`~.embedded.EmbeddedCacheBackend`).
        namespace: first part of every key; lets several projects share one Redis.
        on_event: called with ``(event, provider)`` for stats; exceptions it raises propagate.
        failure_threshold: consecutive backend failures before the backend is skipped, >= 1.
        retry_after: seconds to skip the backend, and the minimum gap between two warnings.
        clock: monotonic clock, seconds (injectable for tests).
    """

    def __init__(
        self,
        backend: CacheBackend,
        *,
        namespace: str = "apigw",
        on_event: Callable[[str, str], None] | None = None,
        failure_threshold: int = 3,
        retry_after: float = 5.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.backend = backend
        self.namespace = namespace
        self._on_event = on_event
        self._retry_after = retry_after
        self._clock = clock
        self._breaker = CircuitBreaker(
            failure_threshold=failure_threshold,
            open_timeout=retry_after,
            success_threshold=1,
            clock=clock,
            on_transition=self._on_transition,
        )
        self._last_warning = -math.inf
        self._unreported = 0  # failures since the last warning
        self._needs_open = True  # not opened yet, or the last open failed: open before use
        self._closed = False

    @property
    def available(self) -> bool:
        """False while the backend is being skipped after failures, and after :meth:`close`."""
        return not self._closed and self._breaker.state is BreakerState.CLOSED

    def describe(self) -> str:
        """Return the backend's log-safe description."""
        return self.backend.describe()

    async def open(self) -> None:
        """Open the backend. Never raises.

        On failure a warning is logged and the backend is skipped for *retry_after* seconds at
        once (it was just found unavailable, so no item should wait for it); the first
        operation after that opens it again. Calling :meth:`open` is optional: the first
        :meth:`get` or :meth:`put` opens the backend if needed.
        """
        try:
            await self._open_backend()
        except Exception as exc:
            # Open the circuit now rather than after failure_threshold slow lookups.
            while self._breaker.state is BreakerState.CLOSED:
                self._breaker.record_failure()
            self._warn(exc)

    async def close(self) -> None:
        """Close the backend; later operations are skipped. Never raises (a failure is logged
        as a warning)."""
        self._closed = True
        try:
            await self.backend.close()
        except Exception as exc:
            logger.warning("Error closing cache %s: %s", self.backend.describe(), exc)

    async def get(self, call: ApiCall) -> ApiAnswer | None:
        """Return the cached answer to *call* (with ``from_cache=True``), or ``None``.

        Never raises for a backend problem: see the class docstring.

        Raises:
            ValueError: *call* carries a credential (see :func:`~.base.cache_key`).
        """
        key = cache_key(call, self.namespace)
        if not self._allowed():
            self._emit("skipped", call.provider)
            return None
        try:
            await self._open_backend()
            value = await self.backend.get(key)
        except Exception as exc:
            self._failed(exc, call.provider)
            return None
        self._breaker.record_success()
        if value is None:
            self._emit("miss", call.provider)
            return None
        try:
            answer = decode_answer(value)
        except CorruptEntry as exc:
            logger.warning("Dropping corrupt cache entry %s: %s", key, exc)
            self._emit("miss", call.provider)
            await self._delete_quietly(key)
            return None
        self._emit("hit", call.provider)
        return answer

    async def put(self, call: ApiCall, answer: ApiAnswer, ttl: float) -> None:
        """Store *answer* to *call* for *ttl* seconds, if it may be cached.

        Refused silently (no event): kinds other than ``ok``/``not_found``, status 429 (RFC 6585
        §4) or 5xx, answers that came from the cache (re-storing would extend their life past
        their TTL), and *ttl* that is not a finite number > 0 (``ProviderConfig.ttl`` returns 0
        for "do not cache"). Never raises for a backend problem: see the class docstring.

        Raises:
            ValueError: *call* carries a credential (see :func:`~.base.cache_key`).
        """
        if not self.cacheable(answer, ttl):
            return
        key = cache_key(call, self.namespace)
        try:
            value = encode_answer(answer)
        except (TypeError, ValueError) as exc:
            logger.warning("Not caching a %s answer: data is not JSON (%s)", call.provider, exc)
            return
        if not self._allowed():
            self._emit("skipped", call.provider)
            return
        try:
            await self._open_backend()
            await self.backend.set(key, value, ttl)
        except Exception as exc:
            self._failed(exc, call.provider)
            return
        self._breaker.record_success()
        self._emit("store", call.provider)

    @staticmethod
    def cacheable(answer: ApiAnswer, ttl: float) -> bool:
        """Return True if :meth:`put` would store *answer* for *ttl* seconds."""
        return (
            answer.kind in CACHEABLE_KINDS
            and not answer.from_cache
            and answer.status != 429
            and not 500 <= answer.status <= 599
            and math.isfinite(ttl)
            and ttl > 0
        )

    def _allowed(self) -> bool:
        return not self._closed and self._breaker.allow_request()

    async def _open_backend(self) -> None:
        if self._needs_open:
            await self.backend.open()
            self._needs_open = False

    async def _delete_quietly(self, key: str) -> None:
        try:
            await self.backend.delete(key)
        except Exception as exc:
            # The get that found the entry worked, so this is a passing problem; an entry left
            # behind is dropped again next time.
            logger.debug("Could not delete corrupt cache entry %s: %s", key, exc)

    def _failed(self, exc: Exception, provider: str) -> None:
        self._breaker.record_failure()
        self._emit("error", provider)
        self._warn(exc)

    def _warn(self, exc: Exception) -> None:
        self._unreported += 1
        now = self._clock()
        if now - self._last_warning < self._retry_after:
            return
        more = self._unreported - 1
        self._last_warning = now
        self._unreported = 0
        logger.warning(
            "Cache unavailable (%s: %s), continuing without it%s",
            self.backend.describe(),
            exc,
            f" ({more} other failure(s) since the last warning)" if more else "",
        )

    def _on_transition(self, old: BreakerState, new: BreakerState) -> None:
        if new is BreakerState.OPEN and old is BreakerState.CLOSED:
            logger.info(
                "Skipping cache %s for the next %g s", self.backend.describe(), self._retry_after
            )
        elif new is BreakerState.CLOSED:
            logger.info("Cache %s available again", self.backend.describe())

    def _emit(self, event: str, provider: str) -> None:
        if self._on_event is not None:
            self._on_event(event, provider)
