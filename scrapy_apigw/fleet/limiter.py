"""Per-process adapter of the fleet's shared limits: shared when Redis answers, the local share
when it does not.

The gateway's own FIFO pacer (local bucket, pauses, window) runs first and only smooths this
process's queue; the request at its head then asks the fleet (:meth:`SharedLimits.acquire`), one
at a time per provider and under the process id, so the process holds one place in the fleet's
line. While Redis fails (refused, timeout, restart) the state machine of
:class:`~scrapy_apigw.core.fallback.SharedFallback` sends the acquires to a local bucket at this
process's share of the rate (rate / live processes last seen through the heartbeats), probing
Redis every ``probe_interval`` seconds; one WARNING per outage, the stat
``apigw/<provider>/limits/fallback`` once per provider and outage, ``apigw/fleet/outages`` once
per outage. See docs/design.md, "Fleet-wide limits".
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, DeferredList, DeferredLock

from scrapy_apigw.core.adaptive import AdaptiveState, AimdConfig
from scrapy_apigw.core.clock import Clock
from scrapy_apigw.core.fallback import LimiterMode, SharedFallback
from scrapy_apigw.core.ratelimit import Quota, SlidingWindowLog, TokenBucket
from scrapy_apigw.deferreds import deferred_from_coro, maybe_deferred_to_future
from scrapy_apigw.fleet.adaptive import state_fields, state_from_fields
from scrapy_apigw.fleet.store import (
    AdaptiveRecord,
    BreakerDecision,
    BreakerLimits,
    FleetStore,
    FleetUnavailable,
    RateDecision,
    RateLimits,
)

__all__ = ["BreakerTicket", "SharedLimits", "stale_after"]

T = TypeVar("T")

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]

AdaptiveEvent = Callable[[AdaptiveState, float, float], AdaptiveState]
"""``(state, server now s, offset s) -> next state``: the AIMD rules of one answer, applied to
the fleet's record; *offset* turns a local clock instant into a server one (``t + offset``)."""

#: Compare-and-set attempts per adaptive event before it is dropped (conflicts are rare: each
#: one means another process just wrote, and the next event tries again).
_CAS_ATTEMPTS = 3


@dataclass(frozen=True)
class BreakerTicket:
    """Which breaker let one call through: the fleet's (with its half-open permit, if one was
    handed out) or this process's own; the call's result goes back to the same one.

    Attributes:
        shared: True: the fleet's breaker in Redis; False: the local one.
        permit: the fleet's half-open probe permit, or None.
    """

    shared: bool
    permit: str | None = None


def stale_after(decision: RateDecision, limits: RateLimits) -> float:
    """Seconds an acquire's round trip may take before its grant is stale: a quarter of the
    burst's span at the rate in force (``0.25 * burst / rate``; rate 10 req/s, burst 1: 25 ms).

    A grant is a token taken at the server's instant. A process that gets the reply later than
    this (a stalled reactor, a slow connection) would send its request beside the grants the
    fleet made in the meantime: a stall turned into a burst at the provider (issue 6). The
    round trip bounds the reply's age from above, so a slow request is treated as a late reply
    too (which only costs a token).
    """
    rate = decision.rate or limits.rate
    burst = decision.burst or limits.burst
    return 0.25 * burst / rate


class _LocalShare:
    """One provider's local bucket (and window) at this process's share, for one outage."""

    def __init__(self, limits: RateLimits, processes: int, clock: Clock) -> None:
        rate, burst = limits.rate / processes, max(1, limits.burst // processes)
        self.bucket = TokenBucket(rate, burst, clock)
        # The fleet was sending from the shared bucket until now, up to its rate: start empty,
        # the first token one share interval from now. Starting with one token lets the n
        # processes send n back to back at the switch, on top of the shared bucket's last send
        # (measured: one MusicBrainz rejection per outage with 3 processes).
        self.bucket.block_until(clock() + 1.0 / rate)
        self.window = (
            SlidingWindowLog(max(1, limits.window_limit // processes), limits.window, clock)
            if limits.window_limit and limits.window
            else None
        )

    def wait(self) -> float:
        """Seconds until a send is allowed (0.0: now)."""
        wait = self.bucket.time_until()
        if self.window is not None:
            wait = max(wait, self.window.time_until())
        return wait

    def follow(self, limits: RateLimits, processes: int) -> None:
        """Re-rate the share to *limits* (the provider's effective rate and burst changed)."""
        rate, burst = limits.rate / processes, max(1, limits.burst // processes)
        if rate != self.bucket.rate:
            self.bucket.set_rate(rate)
        if burst != self.bucket.burst:
            self.bucket.set_burst(burst)

    def take(self) -> bool:
        if self.wait() > 0 or not self.bucket.try_acquire():
            return False
        if self.window is not None:
            self.window.reserve()
        return True


class SharedLimits:
    """The fleet's shared rate, pauses and learned quota for one process, with local fallback.

    Args:
        store: the fleet's :class:`~scrapy_apigw.fleet.store.FleetStore`.
        heartbeat_ttl: seconds a process counts as live after its heartbeat
            (``APIGW_FLEET_HEARTBEAT``); heartbeats and fallback probes run every third of it.
        inc: ``(stats key, value)`` counter, e.g. ``crawler.stats.inc_value``.
        clock: monotonic clock, seconds (of the fallback and the local share).

    Raises:
        ValueError: *heartbeat_ttl* not finite and > 0.
    """

    def __init__(
        self,
        store: FleetStore,
        heartbeat_ttl: float,
        inc: Callable[[str, int], Any],
        clock: Clock,
    ) -> None:
        if not (heartbeat_ttl > 0 and math.isfinite(heartbeat_ttl)):
            raise ValueError(f"heartbeat_ttl must be finite and > 0 s, got {heartbeat_ttl}")
        self.store = store
        self.heartbeat_ttl = float(heartbeat_ttl)
        self.interval = self.heartbeat_ttl / 3
        # Counts are kept for a heartbeat ttl: a restarted Redis has lost the heartbeats.
        self.fallback = SharedFallback(
            probe_interval=self.interval, clock=clock, memory=self.heartbeat_ttl
        )
        self._inc = inc
        self._clock = clock
        self._locks: dict[str, DeferredLock] = {}
        self._shares: dict[str, _LocalShare] = {}
        #: clock instant of this process's next turn in each provider's fleet line, taken by
        #: the last grant (``queue_next``)
        self._turns: dict[str, float] = {}
        self._cap_until = -math.inf
        self._beat: Any = None
        self._pending: set[Deferred[Any]] = set()
        #: told ``(provider, rate, burst, decreased)`` when this process wrote the fleet's
        #: effective rate and burst; *decreased*: its write lowered them (a congestion event)
        self.on_adapt: Callable[[str, float, int, bool], None] | None = None
        #: told ``(provider, rate, burst)``: the fleet's effective values an acquire paced by
        self.on_rate_seen: Callable[[str, float, int], None] | None = None
        #: told ``provider`` when an adaptive write failed (Redis down): pace by your own view
        self.on_adapt_failed: Callable[[str], None] | None = None
        self._mirrors: dict[str, _Mirror] = {}
        self._adapt_locks: dict[str, DeferredLock] = {}
        #: told ``(kind, provider)`` at the first heartbeat after an operator reset the fleet's
        #: ``"breaker"`` or ``"limits"`` of *provider* (:meth:`FleetStore.count_reset`): reset
        #: this process's own view of them too
        self.on_reset: Callable[[str, str], None] | None = None
        self._resets: dict[str, int] | None = None  # as of the last heartbeat

    # -- rate ---------------------------------------------------------------------------------

    async def acquire(
        self,
        provider: str,
        limits: RateLimits,
        sleep: Sleep,
        local: RateLimits | None = None,
        more: bool = False,
    ) -> None:
        """Return when this process may send one request to *provider*, fleet-wide.

        One asker per provider at a time (FIFO), under the process id. Shared: grant, or sleep
        the fleet's ``wait`` and ask again (no polling in between). A grant while more sends
        of this process wait (*more*, or another caller queued here) also takes this
        process's place in the fleet's line for the next one; the next acquire sleeps until
        that turn before it asks, so it is usually granted at its one ask. Fallback: the local
        share, taken at the moment of release; the wait is cut at the next probe of Redis.

        Args:
            limits: the configured limits (the fleet's adaptive record may lower rate and
                burst, never raise them).
            sleep: ``seconds -> awaitable`` used for every wait (the gateway's cancellable
                sleep, so a graceful stop or an unavailable provider cuts it).
            local: the limits of this process's own view (its local adaptive rate), of which
                the local share is taken while falling back; default *limits*.
            more: another send of this process to *provider* is queued behind this one (the
                gateway's pacer has waiters).

        Raises:
            Exception: whatever *sleep* raises (e.g. ``Interrupted``); Redis failures never.
        """
        lock = self._locks.get(provider)
        if lock is None:
            lock = self._locks[provider] = DeferredLock()
        await maybe_deferred_to_future(lock.acquire())
        capped = False
        discarded = False
        try:
            turn = self._turns.pop(provider, None)
            if turn is not None and self.fallback.mode is LimiterMode.SHARED:
                # The place the last grant took in the fleet's line: ask when it comes.
                wait = turn - self._clock()
                if wait > 0:
                    await sleep(wait)
            while True:
                share = self._capping(provider)
                if share is not None and not capped:
                    # Just back to shared: the others may still send their local share.
                    if not share.take():
                        await sleep(share.wait())
                        continue
                    capped = True
                if self.fallback.use_shared():
                    queue_next = more or bool(lock.waiting)
                    asked = self._clock()
                    decision = await self._ask(
                        self.store.acquire(provider, limits, queue_next=queue_next)
                    )
                    if decision is not None:
                        self._saw(provider, decision)
                        if (
                            decision.granted
                            and not discarded
                            and self._clock() - asked > stale_after(decision, limits)
                        ):
                            # The reply came late (this process stalled): the token was
                            # taken at the server's instant, and sending now would put it
                            # beside the grants made since. Leave it unused; ask once more.
                            discarded = True
                            self._inc(f"apigw/{provider}/limits/stale_grants", 1)
                            continue
                        if decision.granted:
                            if decision.next_wait is not None:
                                self._turns[provider] = self._clock() + decision.next_wait
                            return
                        await sleep(decision.wait)
                        continue
                share = self._share(provider, local or limits)
                if share.take():
                    return
                until_probe = max(0.0, self.fallback.next_probe - self._clock())
                await sleep(min(share.wait(), until_probe))
        finally:
            lock.release()

    def pause(self, provider: str, seconds: float, limits: RateLimits) -> Deferred[None] | None:
        """Pause *provider* for the whole fleet for *seconds* from Redis's now, in the
        background (the returned Deferred fires when done and never fails). Skipped (None)
        while falling back: the gateway's local pause then holds this process."""
        if self.fallback.mode is not LimiterMode.SHARED:
            return None
        return self._spawn(self._pause(provider, seconds, limits))

    def learn_quota(self, provider: str, quota: Quota, ttl: float) -> Deferred[None] | None:
        """Share the quota *provider* announced (e.g. Discogs' headers) for *ttl* seconds, in
        the background (as :meth:`pause`; None while falling back)."""
        if self.fallback.mode is not LimiterMode.SHARED:
            return None
        return self._spawn(self._learn(provider, quota, ttl))

    async def _pause(self, provider: str, seconds: float, limits: RateLimits) -> None:
        await self._ask(self.store.pause(provider, seconds, limits))

    async def _learn(self, provider: str, quota: Quota, ttl: float) -> None:
        await self._ask(self.store.learn_quota(provider, quota, ttl))

    # -- breaker ------------------------------------------------------------------------------

    async def breaker(
        self, op: str, provider: str, limits: BreakerLimits, permit: str | None = None
    ) -> BreakerDecision | None:
        """One operation on *provider*'s fleet breaker, or None when the local breaker must
        decide (Redis failed now, or this process is falling back between probes).

        Args:
            op: ``"peek"``, ``"allow"``, ``"success"``, ``"failure"`` or ``"ignored"`` (the
                :class:`~scrapy_apigw.fleet.store.FleetStore` method of that name).
            permit: the half-open permit :meth:`FleetStore.allow` handed out, for the results.
        """
        if not self.fallback.use_shared():
            return None
        store = self.store
        if op == "peek":
            call = store.peek(provider, limits)
        elif op == "allow":
            call = store.allow(provider, limits)
        elif op == "success":
            call = store.record_success(provider, limits, permit)
        elif op == "failure":
            call = store.record_failure(provider, limits, permit)
        elif op == "ignored":
            call = store.record_ignored(provider, limits, permit)
        else:
            raise ValueError(f"unknown breaker operation {op!r}")
        return await self._ask(call)

    # -- heartbeats ---------------------------------------------------------------------------

    async def heartbeat(self) -> int:
        """Beat once and record the live processes; returns them (0 when Redis failed).

        A reset counter that changed since the previous beat is told to :attr:`on_reset` (the
        first beat only records them: resets made before this process started are over)."""
        beat = await self._ask(self.store.beat(self.heartbeat_ttl))
        if beat is None:
            return 0
        self.fallback.saw_processes(beat.processes)
        seen, self._resets = self._resets, dict(beat.resets)
        if seen is not None and self.on_reset is not None:
            for name, count in beat.resets.items():
                if seen.get(name, 0) != count:
                    kind, _, provider = name.partition(":")
                    self.on_reset(kind, provider)
        return beat.processes

    def saw_reset(self, kind: str, provider: str, count: int) -> None:
        """This process made reset number *count* of *provider*'s *kind* itself: the next
        heartbeat need not tell :attr:`on_reset`."""
        if self._resets is not None:
            self._resets[f"{kind}:{provider}"] = count

    async def start(self) -> None:
        """Beat now (waiting at most the store's timeout), then every ``heartbeat_ttl / 3`` s."""
        from twisted.internet.task import LoopingCall

        await self.heartbeat()
        # An asyncio Task under the asyncio reactor (the store awaits asyncio Futures).
        self._beat = LoopingCall(lambda: deferred_from_coro(self.heartbeat()))
        self._beat.start(self.interval, now=False)

    async def stop(self) -> None:
        """Stop the heartbeats, leave the fleet and close the store (bounded by its timeout)."""
        beat, self._beat = self._beat, None
        if beat is not None and beat.running:
            beat.stop()
        with contextlib.suppress(FleetUnavailable):  # else the heartbeat expires on its own
            await self.store.leave()
        await self.store.close()

    # -- fallback -----------------------------------------------------------------------------

    def _share(self, provider: str, limits: RateLimits) -> _LocalShare:
        share = self._shares.get(provider)
        if share is None:
            share = self._shares[provider] = _LocalShare(
                limits, self.fallback.processes, self._clock
            )
            self._inc(f"apigw/{provider}/limits/fallback", 1)
        else:
            share.follow(limits, self.fallback.processes)
        return share

    def _capping(self, provider: str) -> _LocalShare | None:
        # For one probe interval after an outage ends, a process keeps its local share as a
        # cap on top of the shared bucket: the other processes find Redis back only at their
        # next probe and send their share until then; without the cap the fleet would send up
        # to rate + (n - 1) shares meanwhile.
        if self.fallback.mode is not LimiterMode.SHARED or self._clock() >= self._cap_until:
            return None
        return self._shares.get(provider)

    def _failed(self, exc: FleetUnavailable) -> None:
        if self.fallback.redis_failed():
            self._shares.clear()  # each outage starts new local shares
            self._inc("apigw/fleet/outages", 1)
            logger.warning(
                "apigw: fleet limits unavailable (%s; APIGW_REDIS_URL): each provider falls "
                "back to this process's share of its rate (1/%d) and its own breaker, until "
                "Redis answers again",
                exc,
                self.fallback.processes,
            )

    async def _ask(self, call: Awaitable[T]) -> T | None:
        """Await one Redis call of the store and tell the fallback machine how it went;
        returns its answer, or None when Redis failed (:class:`FleetUnavailable`)."""
        started = self._clock()
        try:
            answer = await call
        except FleetUnavailable as exc:
            self._failed(exc)
            return None
        self._ok(started)
        return answer

    def _ok(self, started: float) -> None:
        # An answer to a call sent before the outage began does not end it (see redis_ok).
        if self.fallback.redis_ok(started):
            self._cap_until = self._clock() + self.interval
            self._inc("apigw/fleet/recoveries", 1)
            logger.info("apigw: fleet limits answer again: back to the shared limits")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> Deferred[None]:
        d: Deferred[None] = deferred_from_coro(coro)
        self._pending.add(d)
        d.addBoth(self._forget, d)
        return d

    def _forget(self, result: Any, d: Deferred[Any]) -> None:
        self._pending.discard(d)
        if hasattr(result, "getErrorMessage"):
            logger.error("apigw: fleet update failed: %s", result.getErrorMessage())

    # -- adaptive rate (kept at the end of the class) -------------------------------------------

    def adapt(self, provider: str, config: AimdConfig, event: AdaptiveEvent, ttl: float) -> bool:
        """Apply *event* (one answer's AIMD rules) to the fleet's adaptive record of *provider*.

        The record is read, the rules run here on the server's instants, and the result is
        written with a compare-and-set (:meth:`FleetStore.adapt`), in the background, one
        event at a time per provider; on a conflict the rules run again on the record another
        process just wrote. Nothing is sent when the last record seen would not change (most
        successes). :attr:`on_adapt` is told the values written.

        Args:
            config: the provider's AIMD constants (its configured rate and burst: the ceiling).
            event: ``(state, server now, offset) -> state``.
            ttl: seconds the record is kept after its last write.

        Returns:
            True when the fleet's record decides; False while falling back (Redis failed): the
            caller's local controller decides.
        """
        if self.fallback.mode is not LimiterMode.SHARED:
            return False
        mirror = self._mirrors.get(provider)
        if (
            mirror is not None
            and not mirror.stale
            and event(mirror.state, self._clock() + mirror.offset, mirror.offset) == mirror.state
        ):
            return True
        self._spawn(self._adapt(provider, config, event, ttl))
        return True

    async def drain(self) -> None:
        """Return once every background update (pauses, quotas, adaptive writes) started so
        far has ended."""
        while self._pending:
            await maybe_deferred_to_future(DeferredList(list(self._pending)))

    def fleet_rate(self, provider: str) -> AdaptiveState | None:
        """The fleet's adaptive record of *provider* as last read or written, or None."""
        mirror = self._mirrors.get(provider)
        return mirror.state if mirror is not None else None

    async def _adapt(
        self, provider: str, config: AimdConfig, event: AdaptiveEvent, ttl: float
    ) -> None:
        lock = self._adapt_locks.get(provider)
        if lock is None:
            lock = self._adapt_locks[provider] = DeferredLock()
        await maybe_deferred_to_future(lock.acquire())
        try:
            mirror = await self._ask(self._compare_and_set(provider, config, event, ttl))
            if mirror is None and self.on_adapt_failed is not None:
                self.on_adapt_failed(provider)
        finally:
            lock.release()

    async def _compare_and_set(
        self, provider: str, config: AimdConfig, event: AdaptiveEvent, ttl: float
    ) -> _Mirror:
        """Apply *event* to the fleet's record (compare-and-set, a few attempts); returns the
        record as last read or written."""
        mirror = self._mirrors.get(provider)
        if mirror is None or mirror.stale:
            mirror = self._remember(provider, config, await self.store.adapt(provider, None))
        for _ in range(_CAS_ATTEMPTS):
            new = event(mirror.state, self._clock() + mirror.offset, mirror.offset)
            if new == mirror.state:
                return mirror
            before = mirror.state
            record = await self.store.adapt(provider, mirror.version, state_fields(new), ttl)
            mirror = self._remember(provider, config, record)
            if record.written:
                if self.on_adapt is not None:
                    decreased = mirror.state.decreases > before.decreases
                    self.on_adapt(provider, mirror.state.rate, mirror.state.burst, decreased)
                return mirror
        return mirror

    def _remember(self, provider: str, config: AimdConfig, record: AdaptiveRecord) -> _Mirror:
        mirror = self._mirrors[provider] = _Mirror(
            state_from_fields(record.fields, config),
            record.version,
            record.server_time - self._clock(),
        )
        return mirror

    def _saw(self, provider: str, decision: RateDecision) -> None:
        # Every acquire says which record the fleet paces by: a newer one than the mirror's is
        # read before the next event is applied.
        mirror = self._mirrors.get(provider)
        if mirror is not None:
            mirror.offset = decision.server_time - self._clock()
            if decision.adaptive_version != mirror.version:
                mirror.stale = True
        if self.on_rate_seen is not None and decision.rate > 0 and decision.burst >= 1:
            self.on_rate_seen(provider, decision.rate, decision.burst)


@dataclass
class _Mirror:
    """The last adaptive record seen of one provider, and the server clock's offset."""

    state: AdaptiveState
    version: int
    offset: float  # server seconds - local clock seconds, as of the last reply
    stale: bool = False
