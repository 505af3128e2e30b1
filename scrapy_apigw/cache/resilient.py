"""The response cache: answers in, answers out, and a backend failure never fails a crawl.

A cache is an optimisation, so an unreachable or broken backend degrades to "no cache": a lookup
becomes a miss and a store a no-op, with a rate-limited warning. A circuit breaker then skips the
backend for a while, so a dead Redis costs no waiting per item.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from scrapy_apigw.cache.base import (
    CACHEABLE_KINDS,
    KEY_VERSION,
    CacheBackend,
    CorruptEntry,
    cache_key,
    check_no_credentials,
    decode_entry,
    encode_answer,
    generation_scope,
    parse_entry_key,
    refusal_key,
)
from scrapy_apigw.core.breaker import BreakerState, CircuitBreaker
from scrapy_apigw.core.clock import Clock
from scrapy_apigw.core.singleflight import Flight, SingleFlight
from scrapy_apigw.providers.base import ApiAnswer, ApiCall

__all__ = ["EVENTS", "ResponseCache"]

logger = logging.getLogger(__name__)

#: Every event name passed to ``on_event``; each operation emits at most one.
EVENTS = ("hit", "miss", "store", "error", "skipped")

#: Names of the counters kept in the backend (``{namespace}:v1:<name>``): the generation of
#: each provider and data type, and the lookups' hits and misses.
GENERATIONS = "generations"
COUNTS = "counts"

#: Seconds between two writes of a process's hit and miss counts to the backend.
COUNTS_FLUSH_INTERVAL = 30.0
#: Share of ``generation_max_age`` after which a lookup starts reading the generation again in
#: the background while the known one is still used: the lookups do not wait for that read
#: unless it is still out when the known generation reaches its age.
GENERATION_REFRESH_AHEAD = 0.5

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

    Invalidation (:meth:`invalidate`) is O(1): the answers of one provider and data type carry
    a generation number in their key (:func:`~.base.cache_key`), kept in the backend; bumping
    it makes every later lookup miss, and the old entries are never read again and expire in
    their time. Each lookup uses the generation read at most ``backend.generation_max_age``
    seconds before (1 s on both backends), so another process's
    invalidation is seen within that bound, this process's own at once. The generation is read
    again once half that age has passed, in the background, one read per provider and data
    type however many lookups find it due: lookups wait for it only when it is not back by
    the bound.

    Hits and misses are also counted per provider and data type (:attr:`counts`) and added to
    the backend's ``counts`` every 30 s and at :meth:`close`, so the fleet's totals outlive
    the jobs (:meth:`stats`).

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
        #: scope -> (generation, clock instant read)
        self._generations: dict[str, tuple[int, float]] = {}
        #: one generation read in flight per scope: a warm crawl's items all find it due at once
        self._generation_reads: SingleFlight[int] = SingleFlight()
        self._max_age = float(getattr(backend, "generation_max_age", 1.0))
        #: this process's lookups not yet added to the backend's counts: ``"<scope>:hits"``
        #: or ``"<scope>:misses"`` -> count
        self.counts: dict[str, int] = {}
        #: other counters of this process not yet added to the backend's: name -> field -> n
        self.tallies: dict[str, dict[str, int]] = {}
        self._flushed_at = clock()

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
        if not self._closed and not self._needs_open and self.available:
            await self._flush_counts()
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
        read, value, key = await self._read_call(call)
        if value is None:
            self._count(call, "misses")
            if read:  # absent, not a backend problem (already counted)
                self._emit("miss", call.provider)
            return None
        try:
            answer, fresh_until = decode_entry(value)
        except CorruptEntry as exc:
            logger.warning("Dropping corrupt cache entry %s: %s", key, exc)
            self._count(call, "misses")
            self._emit("miss", call.provider)
            await self._delete_quietly(key)
            return None
        if fresh_until is not None and fresh_until <= self._wall_clock():
            # Expired, kept only to stand in while the provider fails (get_stale).
            self._count(call, "misses")
            self._emit("miss", call.provider)
            return None
        self._count(call, "hits")
        self._emit("hit", call.provider)
        await self._flush_when_due()
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
        _, value, _ = await self._read_call(call)
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

    async def _read_call(self, call: ApiCall) -> tuple[bool, bytes | None, str]:
        """:meth:`_read` of *call*'s key at its current generation; also returns the key (""
        when no key was read).

        Raises:
            ValueError: *call* carries a credential (checked before anything else).
        """
        check_no_credentials(call)
        if not self._allowed():
            self._emit("skipped", call.provider)
            return False, None, ""
        key = ""
        try:
            await self._open_backend()
            generation = await self._generation(call)
            key = cache_key(call, self.namespace, generation, checked=True)
            value = await self.backend.get(key)
        except Exception as exc:
            self._failed(exc, call.provider, "read")
            return False, None, key
        self._breaker.record_success()
        return True, value, key

    async def _generation(self, call: ApiCall) -> int:
        scope = generation_scope(call.provider, call.data_type)
        known = self._generations.get(scope)
        now = self._clock()
        if known is not None and now - known[1] < self._max_age:
            if (
                now - known[1] >= GENERATION_REFRESH_AHEAD * self._max_age
                and not self._generation_reads.in_flight(scope)
            ):
                # Read ahead; a failure is the later lookups' to see if it lasts.
                read = functools.partial(self._read_generation, scope, now)
                refresh, _ = self._generation_reads.join(scope, read)
                refresh.addErrback(lambda _: None)
            return known[0]
        read = functools.partial(self._read_generation, scope, now)
        generation, _ = await self._generation_reads.share(scope, read)
        return generation

    async def _read_generation(self, scope: str, now: float, _: Flight[int]) -> int:
        """Read *scope*'s generation from the backend (0 for one without counters) and keep
        it as read at *now*; one per scope at a time (:attr:`_generation_reads`)."""
        counter = getattr(self.backend, "counter", None)
        generation = 0 if counter is None else int(await counter(self._name(GENERATIONS), scope))
        self._generations[scope] = (generation, now)
        return generation

    def _name(self, counters: str) -> str:
        return f"{self.namespace}:{KEY_VERSION}:{counters}"

    async def invalidate(self, provider: str, data_type: str) -> int:
        """Make every later lookup of *provider*'s *data_type* answers miss, in O(1): bump
        their generation (old entries are never read again and expire). Seen at once by this
        cache, within ``backend.generation_max_age`` seconds by the other processes'.

        Returns:
            The new generation (>= 1).

        Raises:
            CacheError: the backend failed (nothing was invalidated).
        """
        from scrapy_apigw.cache.base import CacheError

        scope = generation_scope(provider, data_type)
        try:
            await self._open_backend()
            added = await self.backend.add(self._name(GENERATIONS), {scope: 1})  # type: ignore[attr-defined]
        except Exception as exc:
            raise CacheError(f"cache invalidation failed ({self.describe()}): {exc}") from None
        generation = int(added[scope])
        self._generations[scope] = (generation, self._clock())
        logger.warning(
            "apigw: cache of %s %s answers invalidated (generation %d)",
            provider,
            data_type,
            generation,
        )
        return generation

    async def stats(self) -> dict[tuple[str, str], dict[str, int]]:
        """Per ``(provider, data_type)`` (percent-decoded): ``entries`` (stored answers of the
        current generation), ``old_entries`` (of older generations, never read again),
        ``generation``, and the ``hits`` and ``misses`` of every process (the backend's counts
        plus this process's not yet added). Costs a scan of the namespace's keys (admin use).

        Raises:
            CacheError: the backend failed.
        """
        from urllib.parse import unquote

        from scrapy_apigw.cache.base import CacheError

        prefix = f"{self.namespace}:{KEY_VERSION}:"
        try:
            await self._open_backend()
            backend: Any = self.backend
            generations = await backend.counters(self._name(GENERATIONS))
            counts = await backend.counters(self._name(COUNTS))
            keys = await backend.scan(prefix)
        except Exception as exc:
            raise CacheError(f"cache statistics failed ({self.describe()}): {exc}") from None
        for field, value in self.counts.items():
            counts[field] = counts.get(field, 0) + value
        result: dict[tuple[str, str], dict[str, int]] = {}

        def row(scope: str) -> dict[str, int]:
            provider, _, data_type = scope.partition(":")
            name = (unquote(provider), unquote(data_type))
            if name not in result:
                result[name] = {
                    "entries": 0,
                    "old_entries": 0,
                    "generation": generations.get(scope, 0),
                    "hits": 0,
                    "misses": 0,
                }
            return result[name]

        for key in keys:
            parsed = parse_entry_key(key[len(prefix) :])
            if parsed is None:
                continue
            provider, data_type, generation = parsed
            scope = f"{provider}:{data_type}"
            current = generations.get(scope, 0)
            row(scope)["entries" if generation == current else "old_entries"] += 1
        for field, value in counts.items():
            scope, _, what = field.rpartition(":")
            if what in ("hits", "misses"):
                row(scope)[what] += value
        for scope in generations:
            row(scope)
        return result

    def _count(self, call: ApiCall, what: str) -> None:
        field = f"{generation_scope(call.provider, call.data_type)}:{what}"
        self.counts[field] = self.counts.get(field, 0) + 1

    async def _flush_when_due(self) -> None:
        if self._clock() - self._flushed_at >= COUNTS_FLUSH_INTERVAL:
            await self._flush_counts()

    def tally(self, name: str, increments: Mapping[str, int]) -> None:
        """Add *increments* to this process's counters *name* (e.g. the coverage report's),
        added to the backend's with the lookups' counts: every ``COUNTS_FLUSH_INTERVAL``
        seconds of lookups and at :meth:`close`. Never raises; costs no I/O."""
        pending = self.tallies.setdefault(name, {})
        for field, value in increments.items():
            pending[field] = pending.get(field, 0) + value

    async def counters(self, name: str) -> dict[str, int]:
        """The counters *name* of every process (the backend's, plus this process's not yet
        added), ``{}`` when the backend keeps none.

        Raises:
            CacheError: the backend failed.
        """
        from scrapy_apigw.cache.base import CacheError

        read = getattr(self.backend, "counters", None)
        try:
            await self._open_backend()
            stored: dict[str, int] = {} if read is None else await read(self._name(name))
        except Exception as exc:
            raise CacheError(f"reading counters failed ({self.describe()}): {exc}") from None
        for field, value in self.tallies.get(name, {}).items():
            stored[field] = stored.get(field, 0) + value
        return stored

    async def _flush_counts(self) -> None:
        """Add this process's counts and tallies to the backend's; kept for the next try on
        failure."""
        self._flushed_at = self._clock()
        pending = {COUNTS: self.counts, **self.tallies}
        self.counts, self.tallies = {}, {}
        add = getattr(self.backend, "add", None)
        for name, counts in pending.items():
            if not counts or add is None:
                continue
            try:
                await add(self._name(name), counts)
            except Exception as exc:
                logger.debug("Could not add the cache's %s to %s: %s", name, self.describe(), exc)
                kept = self.counts if name == COUNTS else self.tallies.setdefault(name, {})
                for field, value in counts.items():
                    kept[field] = kept.get(field, 0) + value

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

    async def _write(self, key: str | ApiCall, value: bytes, ttl: float, provider: str) -> bool:
        """Set *key* (or the key of an :class:`ApiCall` at its current generation) for *ttl*
        seconds; False when skipped or failed (counted)."""
        if not self._allowed():
            self._emit("skipped", provider)
            return False
        try:
            await self._open_backend()
            if not isinstance(key, str):
                key = cache_key(key, self.namespace, await self._generation(key))
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
        cache_key(call, self.namespace)  # checks for credentials
        try:
            value = encode_answer(answer, self._wall_clock() + ttl)
        except (TypeError, ValueError) as exc:
            logger.warning("Not caching a %s answer: data is not JSON (%s)", call.provider, exc)
            return
        # Kept stale_ttl longer: a stand-in while the provider fails (get_stale).
        if await self._write(call, value, ttl + self.stale_ttl, call.provider):
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
