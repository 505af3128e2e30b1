"""The response cache: answers in, answers out, and a backend failure never fails a crawl.

A cache is an optimisation, so an unreachable or broken backend degrades to "no cache": a lookup
becomes a miss and a store a no-op, with a rate-limited warning. A circuit breaker then skips the
backend for a while, so a dead Redis costs no waiting per item.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from scrapy_apigw.cache.base import (
    CACHEABLE_KINDS,
    CacheBackend,
    CorruptEntry,
    cache_key,
    decode_entry,
    encode_answer,
    refusal_key,
)
from scrapy_apigw.core.breaker import BreakerState, CircuitBreaker
from scrapy_apigw.core.clock import Clock
from scrapy_apigw.providers.base import ApiAnswer, ApiCall

__all__ = ["EVENTS", "ResponseCache"]

logger = logging.getLogger(__name__)

#: Every event name passed to ``on_event``; each operation emits at most one.
EVENTS = ("hit", "miss", "store", "error", "skipped")

#: ``APIGW_STALE_TTL`` default, seconds (30 days): how long an expired answer is kept to be
#: served while its provider fails.
DEFAULT_STALE_TTL = 30 * 86400.0


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
    ``hit / (hit + miss + error + skipped)``. :meth:`get_stale` and the refusal methods emit
    ``"error"``/``"skipped"`` only (their successes are counted by the transport).

    Stale-if-error (RFC 5861 §4's idea): an answer is stored for its TTL plus *stale_ttl*
    seconds, with the wall-clock time it stops being fresh inside the value. :meth:`get`
    answers only fresh entries (an expired one is a miss); :meth:`get_stale` also answers an
    expired one, up to *stale_ttl* seconds past its TTL and never later, for a provider that
    failed.

    Args:
        backend: where entries live (:class:`~.redis.RedisCacheBackend`,
            :class:`~.embedded.EmbeddedCacheBackend`).
        namespace: first part of every key; lets several projects share one Redis.
        on_event: called with ``(event, provider)`` for stats; exceptions it raises propagate.
        on_error: called with ``(provider, operation)`` besides the ``"error"`` event:
            ``"read"`` or ``"write"``, the backend operation that failed (for metrics).
        failure_threshold: consecutive backend failures before the backend is skipped, >= 1.
        retry_after: seconds to skip the backend, and the minimum gap between two warnings.
        clock: monotonic clock, seconds (injectable for tests).
        stale_ttl: seconds an answer is kept past its TTL to be served stale (>= 0; 0 keeps
            nothing past the TTL).
        wall_clock: wall-clock time, seconds since the epoch (expiry outlives the process);
            injectable for tests.
    """

    def __init__(
        self,
        backend: CacheBackend,
        *,
        namespace: str = "apigw",
        on_event: Callable[[str, str], None] | None = None,
        on_error: Callable[[str, str], None] | None = None,
        failure_threshold: int = 3,
        retry_after: float = 5.0,
        clock: Clock = time.monotonic,
        stale_ttl: float = DEFAULT_STALE_TTL,
        wall_clock: Clock = time.time,
    ) -> None:
        if not (math.isfinite(stale_ttl) and stale_ttl >= 0):
            raise ValueError(f"stale_ttl must be a number of seconds >= 0, got {stale_ttl!r}")
        self.backend = backend
        self.stale_ttl = float(stale_ttl)
        self._wall_clock = wall_clock
        self.namespace = namespace
        self._on_event = on_event
        self._on_error = on_error
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
        read, value = await self._read(key, call.provider)
        if value is None:
            if read:  # absent, not a backend problem (already counted)
                self._emit("miss", call.provider)
            return None
        try:
            answer, fresh_until = decode_entry(value)
        except CorruptEntry as exc:
            logger.warning("Dropping corrupt cache entry %s: %s", key, exc)
            self._emit("miss", call.provider)
            await self._delete_quietly(key)
            return None
        if fresh_until is not None and fresh_until <= self._wall_clock():
            # Expired, kept only to stand in while the provider fails (get_stale).
            self._emit("miss", call.provider)
            return None
        self._emit("hit", call.provider)
        return answer

    async def get_stale(self, call: ApiCall) -> ApiAnswer | None:
        """Return the answer to *call* even if expired, with ``stale=True`` when it is, or
        ``None``: for a call whose provider failed (stale-if-error).

        An expired entry is answered up to ``stale_ttl`` seconds past its TTL, never later
        (whatever the backend still holds). A still fresh entry (stored while the provider was
        failing) is answered as is. Never raises for a backend problem.

        Raises:
            ValueError: *call* carries a credential (see :func:`~.base.cache_key`).
        """
        key = cache_key(call, self.namespace)
        _, value = await self._read(key, call.provider)
        if value is None:
            return None
        try:
            answer, fresh_until = decode_entry(value)
        except CorruptEntry:
            return None  # get() drops it
        if fresh_until is None:
            return answer
        now = self._wall_clock()
        if fresh_until > now:
            return answer
        if now >= fresh_until + self.stale_ttl:
            return None
        return replace(answer, stale=True)

    async def get_refusal(self, provider: str, what: str) -> dict[str, Any] | None:
        """Return the refusal remembered under ``(provider, what)`` (see
        :func:`~.base.refusal_key`): the JSON object stored with it, or ``None`` (none, expired,
        unreadable, or the backend failing). Never raises for a backend problem.

        Raises:
            ValueError: *what* is not a valid refusal name.
        """
        _, value = await self._read(refusal_key(provider, what, self.namespace), provider)
        if value is None:
            return None
        try:
            document = json.loads(value.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
        return document if isinstance(document, dict) else None

    async def put_refusal(
        self, provider: str, what: str, document: dict[str, Any], ttl: float
    ) -> None:
        """Remember a refusal under ``(provider, what)`` for *ttl* seconds, with *document*
        (a JSON object; never a credential). No-op for *ttl* <= 0. Never raises for a backend
        problem.

        Raises:
            ValueError: *what* is not a valid refusal name.
        """
        key = refusal_key(provider, what, self.namespace)
        if not (math.isfinite(ttl) and ttl > 0):
            return
        value = json.dumps(document, separators=(",", ":")).encode("utf-8")
        await self._write(key, value, ttl, provider)

    async def _read(self, key: str, provider: str) -> tuple[bool, bytes | None]:
        """``(True, value or None)`` when the backend answered; ``(False, None)`` when it was
        skipped or failed (counted as ``skipped`` / ``error``)."""
        if not self._allowed():
            self._emit("skipped", provider)
            return False, None
        try:
            await self._open_backend()
            value = await self.backend.get(key)
        except Exception as exc:
            self._failed(exc, provider, "read")
            return False, None
        self._breaker.record_success()
        return True, value

    async def _write(self, key: str, value: bytes, ttl: float, provider: str) -> bool:
        """Set *key* for *ttl* seconds; False when skipped or failed (counted)."""
        if not self._allowed():
            self._emit("skipped", provider)
            return False
        try:
            await self._open_backend()
            await self.backend.set(key, value, ttl)
        except Exception as exc:
            self._failed(exc, provider, "write")
            return False
        self._breaker.record_success()
        return True

    async def put(self, call: ApiCall, answer: ApiAnswer, ttl: float) -> None:
        """Store *answer* to *call* for *ttl* seconds, if it may be cached.

        The entry is fresh for *ttl* seconds and kept ``stale_ttl`` seconds more (see the
        class docstring).

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
            value = encode_answer(answer, self._wall_clock() + ttl)
        except (TypeError, ValueError) as exc:
            logger.warning("Not caching a %s answer: data is not JSON (%s)", call.provider, exc)
            return
        # Kept stale_ttl longer: a stand-in while the provider fails (get_stale).
        if await self._write(key, value, ttl + self.stale_ttl, call.provider):
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

    def _failed(self, exc: Exception, provider: str, operation: str) -> None:
        self._breaker.record_failure()
        self._emit("error", provider)
        if self._on_error is not None:
            self._on_error(provider, operation)
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
