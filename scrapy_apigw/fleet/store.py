"""The fleet's shared limits in Redis: one client for the Lua scripts of this package.

Every method is one atomic script run (``EVALSHA``; after a Redis restart or ``SCRIPT FLUSH``
the ``NOSCRIPT`` answer is followed by one ``EVAL`` that loads the script again), each command
bounded by :attr:`FleetStore.timeout` seconds (the ``EVAL`` is sent only while time is left).
The connections are the cache's :class:`~scrapy_apigw.cache.redis_client.RedisClient` (bounded
connect, TLS, ``AUTH`` and ``SELECT``; failures that say why). Decisions are taken at the Redis
server's clock (``TIME``), the one clock every process shares. Whatever goes wrong (not
connected, refused login, timeout, an error reply) is raised as :class:`FleetUnavailable`, so
the caller can fall back to its local limits.

txredisapi and ``twisted.internet.reactor`` are imported inside functions only (here and in
``redis_client``): importing them at module level would install the default reactor before
Scrapy installs the asyncio one.
"""

from __future__ import annotations

import math
import os
import secrets
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scrapy_apigw.cache.redis import RedisAddress, parse_redis_url
from scrapy_apigw.cache.redis_client import RedisClient, RedisFailure
from scrapy_apigw.core.breaker import BreakerState
from scrapy_apigw.core.clock import Clock
from scrapy_apigw.core.latency import LatencyHistogram
from scrapy_apigw.core.ratelimit import Quota
from scrapy_apigw.deferreds import maybe_deferred_to_future
from scrapy_apigw.exceptions import ApiGatewayError, ConfigError
from scrapy_apigw.fleet.keys import ProviderKeys, processes_key, provider_keys, resets_key
from scrapy_apigw.fleet.scripts import SCRIPT_NAMES, Script, load_script

__all__ = [
    "AdaptiveRecord",
    "BreakerDecision",
    "BreakerLimits",
    "FleetStore",
    "FleetUnavailable",
    "Heartbeat",
    "LearnedQuota",
    "LimitsView",
    "PauseDecision",
    "RateDecision",
    "RateLimits",
]

_US = 1_000_000  # microseconds per second: the scripts' unit of time


class FleetUnavailable(ApiGatewayError):
    """Redis gave no decision: not connected, login refused, no reply in time, or an error reply.

    The message names the operation and the server (password hidden), never a credential.
    """


@dataclass(frozen=True)
class RateLimits:
    """One provider's rate limits, as every process of the fleet must configure them.

    ``rate`` and ``burst`` mean what they mean for
    :class:`~scrapy_apigw.core.ratelimit.TokenBucket`: the bucket holds at most ``burst``
    tokens, starts full and refills at ``rate`` per second.
    ``window_limit`` sends per moving ``window`` seconds is the optional sliding-window quota
    of :class:`~scrapy_apigw.core.ratelimit.SlidingWindowLog` (Discogs: 60 per 60 s), already
    reduced by any safety margin; where one is configured, a limit the provider announced
    (:meth:`FleetStore.learn_quota`) replaces it, minus ``margin``.

    Attributes:
        rate: tokens (requests) per second, finite and > 0.
        burst: capacity, tokens, >= 1.
        window_limit: sends per window, >= 0 (0: no window quota).
        window: window length, seconds, >= 0 (0: no window quota).
        margin: sends kept below a learned limit, >= 0 (the gateway keeps 1).
        grace: seconds a waiter may be late for its turn and keep its place (and the token kept
            for it) in the fleet's line, >= 0.
        early: seconds before a token is due within which it is granted now, >= 0 (the
            script caps it at a quarter of ``1 / rate``): a process paced at the fleet's rate
            asks about when the token is due, a round trip early as often as late, and would
            otherwise be told to wait a millisecond and ask again. The bucket may then run
            ``early × rate`` tokens below zero: any L seconds hold at most
            ``burst + rate × (L + early)`` grants (docs/design.md, "Early grants").

    Raises:
        ValueError: a value out of range, or only one of ``window_limit`` / ``window`` set.
    """

    rate: float
    burst: int
    window_limit: int = 0
    window: float = 0.0
    margin: int = 0
    grace: float = 0.1
    early: float = 0.0

    def __post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise ValueError(f"rate must be finite and > 0 req/s, got {self.rate}")
        if self.burst < 1:
            raise ValueError(f"burst must be >= 1 token, got {self.burst}")
        if self.window_limit < 0 or not (self.window >= 0 and math.isfinite(self.window)):
            raise ValueError(
                f"window quota must be >= 0 sends per >= 0 s, got {self.window_limit} "
                f"per {self.window} s"
            )
        if (self.window_limit > 0) != (self.window > 0):
            raise ValueError(
                f"window_limit and window go together, got {self.window_limit} per {self.window} s"
            )
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0 sends, got {self.margin}")
        if not (self.grace >= 0 and math.isfinite(self.grace)):
            raise ValueError(f"grace must be finite and >= 0 s, got {self.grace}")
        if not (self.early >= 0 and math.isfinite(self.early)):
            raise ValueError(f"early must be finite and >= 0 s, got {self.early}")


@dataclass(frozen=True)
class LearnedQuota:
    """The quota a provider announced, as stored for the fleet; ``None`` where not announced.

    Attributes:
        limit: requests per window (e.g. ``X-Discogs-Ratelimit``).
        remaining: requests left in the window when last announced.
    """

    limit: int | None
    remaining: int | None


@dataclass(frozen=True)
class RateDecision:
    """The answer to one :meth:`FleetStore.acquire`.

    Attributes:
        granted: True: one token was taken now, send at once. False: nothing was taken; the
            waiter is in the fleet's line and must ask again after ``wait``.
        wait: seconds until the waiter's turn (0.0 when granted). Not a reservation: the turn
            is when a token and a window place should be there for it, and the next
            :meth:`~FleetStore.acquire` decides.
        tokens: bucket level after the decision, tokens (below 1 during a pause).
        ahead: waiters before this one in the line (0 when granted).
        paused_for: seconds until the shared pause ends (0.0: not paused).
        window_used: sends granted in the window ending now (0 without a window quota).
        window_limit: the window limit in force, learned or configured (0: no window quota).
        learned: the provider's announced quota, or ``None`` if none is stored.
        server_time: the instant of the decision, seconds since the epoch (Redis ``TIME``).
        rate: the rate in force, req/s: the fleet's effective rate (:meth:`FleetStore.adapt`),
            at most the configured one.
        burst: the burst in force, tokens, likewise.
        adaptive_version: version of the fleet's adaptive record (0: none stored).
        next_wait: when granted with ``queue_next``: seconds from the decision until this
            waiter's next turn, its place in the line already taken (ask again then); None
            when it was not put back in line.
    """

    granted: bool
    wait: float
    tokens: float
    ahead: int
    paused_for: float
    window_used: int
    window_limit: int
    learned: LearnedQuota | None
    server_time: float
    rate: float = 0.0
    burst: int = 0
    adaptive_version: int = 0
    next_wait: float | None = None


@dataclass(frozen=True)
class AdaptiveRecord:
    """The fleet's adaptive-rate record of one provider, as :meth:`FleetStore.adapt` left it.

    Attributes:
        written: True if the call wrote its new state (the version it was computed from was
            current); False: nothing written (a read, or someone else wrote first).
        version: the record's version now (0: no record stored).
        fields: the stored fields (``rate``, ``burst``...; see
            :func:`scrapy_apigw.fleet.adaptive.state_from_fields`), decoded text; empty when
            none is stored.
        server_time: the instant of the call, seconds since the epoch (Redis ``TIME``).
    """

    written: bool
    version: int
    fields: dict[str, str]
    server_time: float


@dataclass(frozen=True)
class PauseDecision:
    """The answer to one :meth:`FleetStore.pause`.

    Attributes:
        applied: True if this pause ends later than the one in force (set-if-later).
        paused_for: seconds from the server's now until the pause in force ends.
        server_time: the instant of the decision, seconds since the epoch.
    """

    applied: bool
    paused_for: float
    server_time: float


@dataclass(frozen=True)
class BreakerLimits:
    """One provider's circuit breaker rules; the meaning of
    :class:`~scrapy_apigw.core.breaker.CircuitBreaker`'s arguments.

    Attributes:
        failure_threshold: consecutive failures that open the circuit, >= 1.
        open_timeout: seconds OPEN before probing, and the lease of a probe permit; > 0.
        success_threshold: half-open successes that close the circuit, and the number of
            probe permits out at once, fleet-wide; >= 1.

    Raises:
        ValueError: a value out of range.
    """

    failure_threshold: int
    open_timeout: float
    success_threshold: int

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.success_threshold < 1:
            raise ValueError(
                f"thresholds must be >= 1, got failure_threshold={self.failure_threshold}, "
                f"success_threshold={self.success_threshold}"
            )
        if not (self.open_timeout > 0 and math.isfinite(self.open_timeout)):
            raise ValueError(f"open_timeout must be finite and > 0 s, got {self.open_timeout}")


@dataclass(frozen=True)
class BreakerDecision:
    """The answer to one breaker operation of :class:`FleetStore`.

    Attributes:
        allowed: for :meth:`~FleetStore.allow`: True in CLOSED, or a half-open probe permit
            was handed out; for :meth:`~FleetStore.peek`: True unless OPEN; else False.
        previous: the stored state before the call.
        state: the state after the call.
        transitions: each state change this call made, ``(old, new)`` in order (at most two,
            e.g. OPEN → HALF_OPEN → CLOSED when the first probe's success closes the circuit).
            Each fleet transition is reported to exactly one process, the one that caused it.
        retry_in: seconds until a probe may go; > 0 only when OPEN.
        failures: the fleet's current run of consecutive failures.
        probes: half-open probe permits out (unexpired), fleet-wide.
        permit: the permit handed out by :meth:`~FleetStore.allow` in HALF_OPEN (give it back
            with the result), else ``None``.
    """

    allowed: bool
    previous: BreakerState
    state: BreakerState
    transitions: tuple[tuple[BreakerState, BreakerState], ...]
    retry_in: float
    failures: int
    probes: int
    permit: str | None


@dataclass(frozen=True)
class Heartbeat:
    """The answer to one :meth:`FleetStore.beat`.

    Attributes:
        processes: live processes of the fleet, this one included (>= 1).
        resets: admin resets so far per ``"<kind>:<provider>"`` (kind ``breaker`` or
            ``limits``), as counted in Redis (see :mod:`scrapy_apigw.ops.state`).
    """

    processes: int
    resets: Mapping[str, int]


@dataclass(frozen=True)
class LimitsView:
    """One provider's shared rate-limit state, as :meth:`FleetStore.limits` read it.

    Attributes:
        tokens: bucket level now, tokens (below 1 during a pause or after early grants).
        paused_for: seconds until the shared pause ends (0.0: not paused).
        waiters: processes in the fleet's line.
        window_sends: sends granted in the window ending now (0 without a window quota).
        learned: the provider's announced quota, or None.
        rate: the rate in force, req/s (the fleet's effective rate, at most the configured).
        burst: the burst in force, tokens.
        adaptive: True when the fleet's adaptive record lowered rate or burst.
        server_time: the instant read, seconds since the epoch (Redis ``TIME``).
    """

    tokens: float
    paused_for: float
    waiters: int
    window_sends: int
    learned: LearnedQuota | None
    rate: float
    burst: int
    adaptive: bool
    server_time: float


class _NoScript(Exception):
    """Redis does not know the script (restarted, or ``SCRIPT FLUSH``)."""


class FleetStore:
    """The fleet's shared rate, pause, quota, breaker and heartbeats, in Redis.

    Keys: see :mod:`scrapy_apigw.fleet.keys`; every key expires once idle. One round trip per
    call (two after a Redis restart or ``SCRIPT FLUSH``: ``NOSCRIPT``, then ``EVAL``).

    Args:
        redis: a started :class:`~scrapy_apigw.cache.redis_client.RedisClient` (see
            :meth:`connect` to make one from a URL), or a txredisapi connection or pool
            (anything with ``execute_command`` returning a Deferred; ``charset`` and
            ``convertNumbers`` may be anything).
        fleet: the fleet's name (``APIGW_FLEET``): processes naming the same fleet share limits.
        namespace: first part of every key (the cache namespace, ``APIGW_CACHE_NAMESPACE``).
        timeout: seconds one call may take in all, waiting for a connection included; > 0.
        process_id: this process's id in the line and the heartbeats; default
            ``<host>:<pid>:<random hex>``.
        breaker_ttl: seconds an idle provider's breaker counts are kept (an OPEN circuit is
            always kept until its open period and a lease have passed); > 0.
        clock: TEST HOOK. When given, every script runs in its test-only variant and decides at
            ``clock()`` seconds (microsecond resolution) instead of Redis ``TIME``. Never use it
            in production: the processes of a fleet have different clocks.
        describe: how to name the server in errors (no password), e.g.
            :meth:`RedisAddress.describe`.

    Raises:
        ConfigError: an invalid fleet or namespace name, timeout or ttl.
    """

    def __init__(
        self,
        redis: Any,
        *,
        fleet: str,
        namespace: str = "apigw",
        timeout: float = 0.5,
        process_id: str | None = None,
        breaker_ttl: float = 3600.0,
        clock: Clock | None = None,
        describe: str = "redis",
    ) -> None:
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ConfigError(f"the fleet's Redis timeout must be > 0 seconds, got {timeout!r}")
        if not (breaker_ttl > 0 and math.isfinite(breaker_ttl)):
            raise ConfigError(f"the fleet's breaker ttl must be > 0 seconds, got {breaker_ttl!r}")
        self._processes_key = processes_key(namespace, fleet)  # checks both names
        self._resets_key = resets_key(namespace, fleet)
        self._redis = redis
        self.fleet = fleet
        self.namespace = namespace
        self.timeout = float(timeout)
        self.process_id = process_id or (
            f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        )
        self.breaker_ttl = float(breaker_ttl)
        self._clock = clock
        self._describe = describe
        variant = "server" if clock is None else "argument"
        self._scripts = {name: load_script(name, variant) for name in SCRIPT_NAMES}
        self._keys: dict[str, ProviderKeys] = {}
        self._owned: RedisClient | None = None
        #: Times a script body was sent because Redis did not know it (``NOSCRIPT``).
        self.script_loads = 0
        #: Duration of each script's round trips (``EVALSHA``, and ``EVAL`` after
        #: ``NOSCRIPT``), by script name (``"rate"`` is :meth:`acquire`), wall-clock seconds.
        #: A measurement, never a decision: it reads ``time.perf_counter``, not the clock.
        self.round_trips: dict[str, LatencyHistogram] = {}

    @classmethod
    def connect(
        cls,
        address: RedisAddress | str,
        *,
        fleet: str,
        namespace: str = "apigw",
        timeout: float = 0.5,
        poolsize: int = 2,
        process_id: str | None = None,
        breaker_ttl: float = 3600.0,
        clock: Clock | None = None,
        trust_root: Any = None,
    ) -> FleetStore:
        """Make a store on its own :class:`~scrapy_apigw.cache.redis_client.RedisClient` to
        *address* (closed by :meth:`close`).

        The client connects in the background, each step (TCP, TLS, ``AUTH``, ``SELECT``)
        bounded by *timeout*, and reconnects after a restart; nothing waits here. A refused
        password stops reconnecting and is named by every later failure.

        Args:
            address: a parsed address or a ``redis://`` / ``rediss://`` URL.
            poolsize: connections kept open, >= 1.
            trust_root: for ``rediss://``, a Twisted ``IOpenSSLTrustRoot``; ``None`` trusts
                the system's CAs.
            (the rest: as the constructor)

        Raises:
            ConfigError: an invalid URL, pool size, or any constructor argument.
        """
        if isinstance(address, str):
            address = parse_redis_url(address)
        if poolsize < 1:
            raise ConfigError(f"the fleet's Redis pool size must be >= 1, got {poolsize!r}")
        client = RedisClient(address, timeout=timeout, poolsize=poolsize, trust_root=trust_root)
        store = cls(
            client,
            fleet=fleet,
            namespace=namespace,
            timeout=timeout,
            process_id=process_id,
            breaker_ttl=breaker_ttl,
            clock=clock,
            describe=address.describe(),
        )
        client.start()
        store._owned = client
        return store

    async def close(self) -> None:
        """Close the client made by :meth:`connect` (a connection passed in is left open).

        Never raises; bounded by :attr:`timeout`.
        """
        client, self._owned = self._owned, None
        if client is not None:
            await client.close()

    def keys(self, provider: str) -> ProviderKeys:
        """The Redis keys of *provider*'s state in this fleet.

        Raises:
            ConfigError: an invalid provider name.
        """
        keys = self._keys.get(provider)
        if keys is None:
            keys = self._keys[provider] = provider_keys(self.namespace, self.fleet, provider)
        return keys

    @property
    def processes_key(self) -> str:
        """The Redis key of this fleet's heartbeats."""
        return self._processes_key

    # -- rate ---------------------------------------------------------------------------------

    async def acquire(
        self,
        provider: str,
        limits: RateLimits,
        waiter: str | None = None,
        queue_next: bool = False,
    ) -> RateDecision:
        """Ask for one send to *provider* now, for the whole fleet, in one round trip.

        Granted only if the shared pause is over, the bucket holds a token beyond those kept
        for the waiters ahead in the line, and the window quota has room; the token is then
        taken. Otherwise nothing is taken, the waiter joins (or keeps) its place in the line,
        and ``wait`` says when its turn comes: ask again then (no polling in between).

        Args:
            provider: provider name, e.g. ``"discogs"``.
            limits: the provider's rate limits (the same in every process of the fleet).
            waiter: who waits, default :attr:`process_id`. One place per id: a process that
                asks for one request at a time (its FIFO pacer's head) holds one place.
            queue_next: the waiter has another send queued behind this one: when granted, it
                takes its place in the line for that one at once and ``next_wait`` tells its
                turn (one round trip per send instead of an ask that is only told the wait).
                A place not claimed within ``grace`` of its turn lapses, as any waiter's.

        Raises:
            FleetUnavailable: no decision from Redis within :attr:`timeout`.
        """
        keys = self.keys(provider)
        reply = await self._run(
            "rate",
            (keys.bucket, keys.line, keys.window, keys.quota, keys.adaptive),
            (
                repr(float(limits.rate)),
                str(int(limits.burst)),
                waiter or self.process_id,
                str(_microseconds(limits.grace)),
                str(int(limits.window_limit)),
                str(_microseconds(limits.window)),
                str(int(limits.margin)),
                str(_microseconds(limits.early)),
                "1" if queue_next else "0",
            ),
        )
        # One string of 14 numbers (rate.lua): one line for the client to parse, not 17.
        fields = _text(reply[0]).split()
        if len(fields) != 14:
            raise FleetUnavailable(
                f"fleet rate on {self._describe}: unexpected reply of {len(fields)} fields"
            )
        granted, wait, tokens, ahead, pause, now, used, limit, qlimit, qremaining = fields[:10]
        learned_limit, learned_remaining = _count(qlimit), _count(qremaining)
        learned = (
            LearnedQuota(learned_limit, learned_remaining)
            if learned_limit is not None or learned_remaining is not None
            else None
        )
        now_us = int(now)
        rate, burst, version, next_wait = fields[10:14]
        next_us = int(next_wait)
        return RateDecision(
            granted=granted == "1",
            wait=int(wait) / _US,
            tokens=float(tokens),
            ahead=int(ahead),
            paused_for=max(0, int(pause) - now_us) / _US,
            window_used=int(used),
            window_limit=int(limit),
            learned=learned,
            server_time=now_us / _US,
            rate=float(rate),
            burst=int(burst),
            adaptive_version=int(version),
            next_wait=next_us / _US if next_us >= 0 else None,
        )

    async def pause(self, provider: str, seconds: float, limits: RateLimits) -> PauseDecision:
        """Give no token to anyone in the fleet before the server's now + *seconds*.

        Set-if-later: a pause ending no later than the one in force changes nothing. At its
        end exactly one token is there and refill goes on from it (no burst after a pause), as
        :meth:`~scrapy_apigw.core.ratelimit.TokenBucket.block_until` does.

        Args:
            seconds: the pause, >= 0 (e.g. a Retry-After, RFC 9110 §10.2.3); 0 pauses until
                now, which drops the level to one token.
            limits: the provider's rate limits (for the bucket's expiry).

        Raises:
            ValueError: *seconds* is negative or not finite.
            FleetUnavailable: no decision from Redis within :attr:`timeout`.
        """
        if not (seconds >= 0 and math.isfinite(seconds)):
            raise ValueError(f"a pause must be finite and >= 0 s, got {seconds}")
        keys = self.keys(provider)
        applied, pause, now = (
            await self._run(
                "pause",
                (keys.bucket,),
                (str(_microseconds(seconds)), repr(float(limits.rate)), str(int(limits.burst))),
            )
        )[:3]
        now_us = _int(now)
        return PauseDecision(
            applied=bool(_int(applied)),
            paused_for=max(0, _int(pause) - now_us) / _US,
            server_time=now_us / _US,
        )

    async def learn_quota(self, provider: str, quota: Quota, ttl: float) -> bool:
        """Store the quota *provider* announced, for *ttl* seconds, for the whole fleet.

        Fields the response did not announce (``None``) keep their stored value. Every
        :meth:`acquire` reads the quota back, and a learned ``limit`` replaces the configured
        window limit (minus :attr:`RateLimits.margin`).

        Args:
            quota: parsed headers, e.g. ``parse_quota_headers(headers, "x-discogs-ratelimit")``.
            ttl: seconds to keep it, > 0 (e.g. the provider's window).

        Returns:
            True if something was stored; False when *quota* announced nothing (no call made).

        Raises:
            ValueError: *ttl* is not finite and > 0.
            FleetUnavailable: no answer from Redis within :attr:`timeout`.
        """
        if not (ttl > 0 and math.isfinite(ttl)):
            raise ValueError(f"a quota's ttl must be finite and > 0 s, got {ttl}")
        fields = (quota.limit, quota.remaining, quota.used)
        if all(value is None for value in fields):
            return False
        await self._run(
            "quota",
            (self.keys(provider).quota,),
            (
                *("" if value is None else str(int(value)) for value in fields),
                str(max(1, math.ceil(ttl * 1000))),
            ),
        )
        return True

    # -- breaker ------------------------------------------------------------------------------

    async def allow(self, provider: str, limits: BreakerLimits) -> BreakerDecision:
        """Ask the fleet's breaker for permission to make one call.

        ``allowed`` is True in CLOSED; False in OPEN; in HALF_OPEN, True while fewer than
        ``success_threshold`` unexpired probe permits are out fleet-wide (the caller then holds
        ``permit`` and reports its result with it). A permit is leased for ``open_timeout``.

        Raises:
            FleetUnavailable: no decision from Redis within :attr:`timeout`.
        """
        return await self._breaker("allow", provider, limits)

    async def peek(self, provider: str, limits: BreakerLimits) -> BreakerDecision:
        """The breaker's state now, taking no permit (``allowed`` is False only when OPEN).

        Applies an elapsed open timeout (OPEN → HALF_OPEN) like any other call.

        Raises:
            FleetUnavailable: no decision from Redis within :attr:`timeout`.
        """
        return await self._breaker("peek", provider, limits)

    async def record_success(
        self, provider: str, limits: BreakerLimits, permit: str | None = None
    ) -> BreakerDecision:
        """Report a call that showed the provider healthy; resets the consecutive failures.

        In HALF_OPEN it releases *permit* (none given: the oldest lease) and counts a probe
        success; ``success_threshold`` of them close the circuit.

        Raises:
            FleetUnavailable: no decision from Redis within :attr:`timeout`.
        """
        return await self._breaker("success", provider, limits, permit)

    async def record_failure(
        self, provider: str, limits: BreakerLimits, permit: str | None = None
    ) -> BreakerDecision:
        """Report a call that showed the provider failing (5xx, timeout, connection error).

        ``failure_threshold`` consecutive failures in CLOSED, or any failure in HALF_OPEN, open
        the circuit for ``open_timeout``; a failure while OPEN does not extend it (Polly v8).

        Raises:
            FleetUnavailable: no decision from Redis within :attr:`timeout`.
        """
        return await self._breaker("failure", provider, limits, permit)

    async def record_ignored(
        self, provider: str, limits: BreakerLimits, permit: str | None = None
    ) -> BreakerDecision:
        """Report a call whose outcome says nothing about health (e.g. 404, 429): only
        releases a half-open permit.

        Raises:
            FleetUnavailable: no decision from Redis within :attr:`timeout`.
        """
        return await self._breaker("ignored", provider, limits, permit)

    async def reset_breaker(self, provider: str, limits: BreakerLimits) -> BreakerDecision:
        """Close the fleet's circuit with no failure counted and no permit out (admin use).

        Raises:
            FleetUnavailable: no decision from Redis within :attr:`timeout`.
        """
        return await self._breaker("reset", provider, limits)

    async def _breaker(
        self, op: str, provider: str, limits: BreakerLimits, permit: str | None = None
    ) -> BreakerDecision:
        keys = self.keys(provider)
        reply = await self._run(
            "breaker",
            (keys.breaker, keys.probes),
            (
                op,
                str(int(limits.failure_threshold)),
                str(int(limits.success_threshold)),
                str(_microseconds(limits.open_timeout)),
                permit or "",
                str(max(1, math.ceil(self.breaker_ttl * 1000))),
            ),
        )
        allowed, retry_in, failures, probes, granted, before, after = reply[:7]
        states = [BreakerState(_text(value)) for value in reply[7:]]
        return BreakerDecision(
            allowed=bool(_int(allowed)),
            previous=BreakerState(_text(before)),
            state=BreakerState(_text(after)),
            transitions=tuple(zip(states[::2], states[1::2], strict=True)),
            retry_in=_int(retry_in) / _US,
            failures=_int(failures),
            probes=_int(probes),
            permit=_text(granted) or None,
        )

    # -- heartbeats ---------------------------------------------------------------------------

    async def heartbeat(self, ttl: float) -> int:
        """Say this process is alive for *ttl* seconds; return the fleet's live processes
        (:meth:`beat`'s ``processes``).

        Raises:
            ValueError: *ttl* is not finite and > 0.
            FleetUnavailable: no answer from Redis within :attr:`timeout`.
        """
        return (await self.beat(ttl)).processes

    async def beat(self, ttl: float) -> Heartbeat:
        """Say this process is alive for *ttl* seconds; return the fleet's live processes and
        the admin reset counters.

        A process counts as live for *ttl* after its last heartbeat (so beat more often than
        that); every process of a fleet must use the same *ttl*. Used for the local fallback's
        share: ``rate / live processes``. The reset counters tell each process, at its next
        beat, that an operator reset a breaker or rate limits (:meth:`count_reset`).

        Raises:
            ValueError: *ttl* is not finite and > 0.
            FleetUnavailable: no answer from Redis within :attr:`timeout`.
        """
        if not (ttl > 0 and math.isfinite(ttl)):
            raise ValueError(f"a heartbeat's ttl must be finite and > 0 s, got {ttl}")
        reply = await self._run(
            "heartbeat",
            (self._processes_key, self._resets_key),
            (self.process_id, str(_microseconds(ttl))),
        )
        fields = [_text(value) for value in reply[2:]]
        resets = {name: int(count) for name, count in zip(fields[::2], fields[1::2], strict=True)}
        return Heartbeat(processes=_int(reply[0]), resets=resets)

    async def count_reset(self, kind: str, provider: str) -> int:
        """Count one admin reset of *provider*'s ``"breaker"`` or ``"limits"``; every process
        learns of it with its next :meth:`beat`. Returns the count so far.

        Raises:
            ValueError: an unknown *kind*.
            FleetUnavailable: no answer from Redis within :attr:`timeout`.
        """
        if kind not in ("breaker", "limits"):
            raise ValueError(f"unknown reset kind {kind!r}")
        self.keys(provider)  # checks the name
        reply = await self._command(
            "reset", self._deadline(), "HINCRBY", self._resets_key, f"{kind}:{provider}", "1"
        )
        return _int(reply)

    async def breaker_fields(self, provider: str) -> dict[str, str]:
        """The stored fields of *provider*'s breaker HASH (empty: never used or expired), e.g.
        ``{"state": "open", "failures": "5", "opened": "1", "last_failure": "<us>"}``.

        Raises:
            FleetUnavailable: no answer from Redis within :attr:`timeout`.
        """
        reply = await self._command(
            "breaker", self._deadline(), "HGETALL", self.keys(provider).breaker
        )
        if isinstance(reply, dict):
            return {_text(k): _text(v) for k, v in reply.items()}
        values = [_text(value) for value in reply or ()]
        return dict(zip(values[::2], values[1::2], strict=True))

    async def limits(self, provider: str, limits: RateLimits, reset: bool = False) -> LimitsView:
        """Read *provider*'s shared rate-limit state; with *reset*, reset it first (admin):
        the shared pause ends, the bucket is full, the line empty and the effective rate and
        burst are the configured ones again. The window log and the learned quota are kept
        (the provider counts those sends too).

        Raises:
            FleetUnavailable: no answer from Redis within :attr:`timeout`.
        """
        keys = self.keys(provider)
        reply = await self._run(
            "limits",
            (keys.bucket, keys.line, keys.window, keys.quota, keys.adaptive),
            (
                "reset" if reset else "inspect",
                repr(float(limits.rate)),
                str(int(limits.burst)),
                str(_microseconds(limits.window)),
            ),
        )
        now, tokens, pause, waiters, sends, qlimit, qremaining, rate, burst = reply[:9]
        now_us = _int(now)
        learned_limit, learned_remaining = _count(qlimit), _count(qremaining)
        rate_text = _text(rate)
        return LimitsView(
            tokens=_float(tokens),
            paused_for=max(0, _int(pause) - now_us) / _US,
            waiters=_int(waiters),
            window_sends=_int(sends),
            learned=(
                LearnedQuota(learned_limit, learned_remaining)
                if learned_limit is not None or learned_remaining is not None
                else None
            ),
            rate=float(rate_text) if rate_text else float(limits.rate),
            burst=_int(burst) if _int(burst) >= 0 else int(limits.burst),
            adaptive=bool(rate_text),
            server_time=now_us / _US,
        )

    async def leave(self) -> None:
        """Remove this process from the fleet's heartbeats (at shutdown).

        Raises:
            FleetUnavailable: no answer from Redis within :attr:`timeout`.
        """
        await self._command("leave", self._deadline(), "ZREM", self._processes_key, self.process_id)

    async def ping(self) -> None:
        """Check that Redis answers within :attr:`timeout`.

        Raises:
            FleetUnavailable: it does not.
        """
        await self._command("ping", self._deadline(), "PING")

    # -- transport ----------------------------------------------------------------------------

    async def _run(self, name: str, keys: Sequence[str], args: Sequence[str]) -> list[Any]:
        script: Script = self._scripts[name]
        if self._clock is not None:
            args = (str(round(self._clock() * _US)), *args)
        started = time.perf_counter()
        deadline = time.monotonic() + self.timeout
        tail = (str(len(keys)), *keys, *args)
        try:
            reply = await self._command(name, deadline, "EVALSHA", script.sha, *tail)
        except _NoScript:
            # Restarted or SCRIPT FLUSH: EVAL runs the script and caches it on the server, so
            # it is sent once per server (not per call) and EVALSHA works again after it.
            self.script_loads += 1
            reply = await self._command(name, deadline, "EVAL", script.source, *tail)
        histogram = self.round_trips.get(name)
        if histogram is None:
            histogram = self.round_trips[name] = LatencyHistogram()
        histogram.add(time.perf_counter() - started)
        if not isinstance(reply, list):
            raise FleetUnavailable(
                f"fleet {name} on {self._describe}: unexpected reply {type(reply).__name__}"
            )
        return reply

    def _deadline(self) -> float:
        return time.monotonic() + self.timeout

    async def _command(self, name: str, deadline: float, command: str, *args: str | bytes) -> Any:
        where = f"fleet {name} on {self._describe}"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FleetUnavailable(f"{where}: no reply within {self.timeout:g} s")
        if not isinstance(self._redis, RedisClient):
            return await self._command_on_connection(where, remaining, command, *args)
        try:
            # Bounded by the client's timeout (this store's), waiting for a connection included.
            return await self._redis.execute(command, *args)
        except RedisFailure as failure:
            text = str(failure)
            if "NOSCRIPT" in text:
                raise _NoScript() from None
            raise FleetUnavailable(f"{where}: {text}") from None

    async def _command_on_connection(self, where: str, remaining: float, *args: str | bytes) -> Any:
        # A txredisapi connection or pool passed to the constructor (tests, custom set-ups).
        from twisted.internet import defer, reactor

        try:
            d = self._redis.execute_command(*args)
            d.addTimeout(remaining, reactor)
            return await maybe_deferred_to_future(d)
        except defer.TimeoutError:
            error = f"no reply within {self.timeout:g} s"
        except Exception as exc:
            text = str(exc)
            if text.startswith("NOSCRIPT"):
                raise _NoScript() from None
            error = f"{type(exc).__name__}: {text}"
        raise FleetUnavailable(f"{where}: {error}")

    def __repr__(self) -> str:
        return f"FleetStore(fleet={self.fleet!r}, {self._describe})"

    # -- adaptive rate (kept at the end of the class) -----------------------------------------

    async def adapt(
        self,
        provider: str,
        version: int | None,
        fields: Mapping[str, str] | None = None,
        ttl: float = 3600.0,
    ) -> AdaptiveRecord:
        """Compare-and-set *provider*'s adaptive-rate record, or read it (*version* None).

        The AIMD rules run in the client (:mod:`scrapy_apigw.core.adaptive`); this stores
        their result only if the record is still at *version*, the one the result was computed
        from (0: none was stored), so two processes never overwrite each other's decrease.
        Every :meth:`acquire` then paces at the stored ``rate`` and ``burst`` (at most the
        configured ones).

        Args:
            version: the version *fields* were computed from; None reads only.
            fields: the new state, field -> decimal string (see
                :func:`scrapy_apigw.fleet.adaptive.state_fields`); ignored when reading.
            ttl: seconds the record is kept after its last write, > 0.

        Returns:
            The record after the call; ``written`` says whether *fields* were stored.

        Raises:
            ValueError: *ttl* is not finite and > 0.
            FleetUnavailable: no answer from Redis within :attr:`timeout`.
        """
        if not (ttl > 0 and math.isfinite(ttl)):
            raise ValueError(f"an adaptive record's ttl must be finite and > 0 s, got {ttl}")
        pairs = [text for item in (fields or {}).items() for text in item]
        reply = await self._run(
            "adaptive",
            (self.keys(provider).adaptive,),
            ("" if version is None else str(int(version)), str(math.ceil(ttl * 1000)), *pairs),
        )
        written, now, stored = reply[:3]
        record = [_text(value) for value in reply[3:]]
        values = dict(zip(record[::2], record[1::2], strict=True))
        values.pop("version", None)
        return AdaptiveRecord(
            written=bool(_int(written)),
            version=_int(stored),
            fields=values,
            server_time=_int(now) / _US,
        )


def _microseconds(seconds: float) -> int:
    # Rounded up: a wait or window never comes out shorter than asked.
    return math.ceil(seconds * _US - 1e-6)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _int(value: Any) -> int:
    return int(_text(value)) if isinstance(value, (bytes, str)) else int(value)


def _float(value: Any) -> float:
    return float(_text(value)) if isinstance(value, (bytes, str)) else float(value)


def _count(value: Any) -> int | None:
    number = _int(value)
    return None if number < 0 else number
