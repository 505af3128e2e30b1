"""What the health and admin endpoints (and the ``apigw`` admin commands) read and change.

Two implementations of one interface, :class:`OpsState`:

- :class:`CrawlState`, inside a crawl: the crawler's :class:`~scrapy_apigw.gateway.Gateway`
  (this process's breakers and buckets), plus the fleet's shared state in Redis when
  ``APIGW_SHARED_LIMITS`` is on, plus the pipeline's answer cache;
- :class:`RedisState`, from Redis only (``apigw serve``, the command line): the fleet's shared
  state and the Redis cache, so it answers for the fleet between jobs.

A reset acts on the whole fleet:

- **Breaker.** With shared limits every process asks the fleet's breaker in Redis before each
  call (``peek``, then ``allow``), so a reset there closes the circuit for every running
  process at its next call. Each process's own breaker decides only while Redis fails; the
  reset is counted in the fleet's ``resets`` HASH, which every heartbeat reads
  (:meth:`~scrapy_apigw.fleet.store.FleetStore.beat`), so each process also resets its own
  breaker within one heartbeat interval (``APIGW_FLEET_HEARTBEAT / 3``, 5 s by default).
- **Rate limits.** The shared pause ends, the shared bucket is full, the fleet's line empty and
  the effective (adaptive) rate the configured one; each process resets its own pause,
  rate-limit streak (and unavailable period) and adaptive rate at its next heartbeat, as
  above. The window log and a learned quota are kept: the provider counts those sends too.
- **Cache.** :meth:`~scrapy_apigw.cache.resilient.ResponseCache.invalidate` bumps a generation
  kept in the cache backend (O(1)); see its bound there.

Errors: :class:`UnknownProvider` (HTTP 404) and :class:`StateUnavailable` (503; the message
is log-safe, never a password).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from scrapy_apigw.exceptions import ApiGatewayError
from scrapy_apigw.providers.registry import ProviderConfig

if TYPE_CHECKING:
    from scrapy_apigw.cache import ResponseCache
    from scrapy_apigw.fleet.store import BreakerLimits, FleetStore, RateLimits
    from scrapy_apigw.gateway import Gateway, ProviderState
    from scrapy_apigw.settings import GatewaySettings

__all__ = ["CrawlState", "OpsState", "RedisState", "StateUnavailable", "UnknownProvider"]

_US = 1_000_000


class UnknownProvider(ApiGatewayError, KeyError):
    """No enabled provider (or cached data type) of that name."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown provider"


class StateUnavailable(ApiGatewayError):
    """The state cannot be read or changed now (Redis or the cache backend failed, or there is
    none). The message says why, log-safe."""


class OpsState:
    """The interface of the health and admin endpoints (see the module docstring).

    Every method returns JSON-ready dicts; provider names are the enabled providers'.

    Args:
        providers: the enabled providers' configurations, by name (as the processes use them:
            scaled in sandbox mode).
        store: the fleet's store, or None without shared limits.
        cache: the answer cache, or None without one.
        fleet: the fleet's name (for the health report).
        wall: wall clock, seconds since the epoch (report times).
    """

    #: ``"crawl"`` or ``"redis"``: where the state comes from.
    mode = "crawl"

    def __init__(
        self,
        providers: Mapping[str, ProviderConfig],
        store: FleetStore | None = None,
        cache: ResponseCache | None = None,
        fleet: str | None = None,
        wall: Any = time.time,
    ) -> None:
        self.providers = dict(providers)
        self._store = store
        self._cache = cache
        self.fleet = fleet
        self._wall = wall

    # -- what the implementations provide -----------------------------------------------------

    @property
    def store(self) -> FleetStore | None:
        """The fleet's store in use, or None."""
        return self._store

    @property
    def cache(self) -> ResponseCache | None:
        """The answer cache in use, or None."""
        return self._cache

    def local(self, provider: str) -> ProviderState | None:
        """This process's state of *provider* (None from Redis only)."""
        return None

    def reset_local_breaker(self, provider: str) -> None:
        """Reset this process's breaker of *provider* (nothing from Redis only)."""

    def reset_local_limits(self, provider: str) -> None:
        """Reset this process's rate limits of *provider* (nothing from Redis only)."""

    def counted(self, kind: str, provider: str, count: int) -> None:
        """The fleet counted this reset as number *count* (this process already did it)."""

    # -- the interface ------------------------------------------------------------------------

    def check(self, provider: str) -> ProviderConfig:
        """The configuration of *provider*.

        Raises:
            UnknownProvider: not an enabled provider.
        """
        config = self.providers.get(provider)
        if config is None:
            raise UnknownProvider(
                f"unknown provider {provider!r}; known: {', '.join(sorted(self.providers))}"
            )
        return config

    async def health(self) -> dict[str, Any]:
        """The design documents' health report: ``status`` (``healthy``, ``degraded``: Redis
        failing or a circuit not closed, ``unhealthy``: every circuit open, or Redis failing
        where it is the only source), ``redis``, ``adapters`` and ``circuit_breakers``."""
        redis = await self._redis_health()
        breakers: dict[str, Any] = {}
        redis_failing = redis["status"] == "unavailable"
        for name in sorted(self.providers):
            # Redis just failed to answer: one timeout per report, not one per provider.
            breakers[name] = await self._breaker(name, quiet=True, skip_fleet=redis_failing)
        adapters = {
            # No URL: a user-configured one could hold a credential.
            name: {
                "enabled": True,
                "rate": config.rate,
                "burst": config.burst,
                "circuit": breakers[name].get("state"),
            }
            for name, config in sorted(self.providers.items())
        }
        states = [view.get("state") for view in breakers.values()]
        if (redis_failing and self.mode == "redis") or (
            states and all(s == "open" for s in states)
        ):
            status = "unhealthy"
        elif redis_failing or any(s != "closed" for s in states):
            status = "degraded"
        else:
            status = "healthy"
        return {
            "status": status,
            "mode": self.mode,
            "time": _iso(self._wall()),
            "redis": redis,
            "adapters": adapters,
            "circuit_breakers": breakers,
        }

    async def breakers(self) -> dict[str, Any]:
        """Every provider's circuit breaker (see :meth:`breaker`).

        Raises:
            StateUnavailable: from Redis only, and Redis fails.
        """
        return {name: await self._breaker(name) for name in sorted(self.providers)}

    async def breaker(self, provider: str) -> dict[str, Any]:
        """*provider*'s circuit: ``state`` (closed, open, half_open), ``source`` (``fleet``:
        the one in Redis every process asks; ``local``: this process's), the counts
        (``failures`` in a row, ``opened``), the thresholds, ``retry_in`` seconds and
        ``last_failure_time`` (ISO 8601 UTC or None); in a crawl with shared limits also
        ``local``, this process's own breaker.

        Raises:
            UnknownProvider: not an enabled provider.
            StateUnavailable: from Redis only, and Redis fails.
        """
        self.check(provider)
        return await self._breaker(provider)

    async def reset_breaker(self, provider: str) -> dict[str, Any]:
        """Close *provider*'s circuit for the whole fleet (and this process's); returns
        :meth:`breaker` after the reset.

        Raises:
            UnknownProvider: not an enabled provider.
            StateUnavailable: shared limits are on and Redis fails (this process's breaker is
                reset all the same), or there is no breaker to reset (Redis only, no Redis).
        """
        config = self.check(provider)
        self.reset_local_breaker(provider)
        store = self.store
        if store is not None:
            from scrapy_apigw.fleet.store import FleetUnavailable

            try:
                await store.reset_breaker(provider, breaker_limits(config))
                self.counted("breaker", provider, await store.count_reset("breaker", provider))
            except FleetUnavailable as exc:
                raise StateUnavailable(f"breaker reset of {provider} failed: {exc}") from None
        return await self._breaker(provider)

    async def reset_all_breakers(self) -> dict[str, Any]:
        """:meth:`reset_breaker` for every provider; returns :meth:`breakers`.

        Raises:
            StateUnavailable: as :meth:`reset_breaker`.
        """
        for name in sorted(self.providers):
            await self.reset_breaker(name)
        return await self.breakers()

    async def rate_limits(self) -> dict[str, Any]:
        """Every provider's rate limits (see :meth:`rate_limit`).

        Raises:
            StateUnavailable: from Redis only, and Redis fails.
        """
        return {name: await self._limits(name) for name in sorted(self.providers)}

    async def rate_limit(self, provider: str) -> dict[str, Any]:
        """*provider*'s rate limits: ``configured`` (rate req/s, burst, window quota), and the
        state now: ``rate``/``burst`` in force (effective, adaptive), ``tokens``,
        ``paused_for`` seconds, ``waiters``, ``window_sends``, ``learned_quota``, ``source``;
        in a crawl also ``unavailable_for`` seconds (a provider that keeps rate limiting).

        Raises:
            UnknownProvider: not an enabled provider.
            StateUnavailable: from Redis only, and Redis fails.
        """
        self.check(provider)
        return await self._limits(provider)

    async def reset_rate_limits(self, provider: str) -> dict[str, Any]:
        """Reset *provider*'s rate limits for the whole fleet (see the module docstring);
        returns :meth:`rate_limit` after the reset.

        Raises:
            UnknownProvider: not an enabled provider.
            StateUnavailable: as :meth:`reset_breaker`.
        """
        config = self.check(provider)
        self.reset_local_limits(provider)
        store = self.store
        if store is not None:
            from scrapy_apigw.fleet.store import FleetUnavailable

            try:
                await store.limits(provider, rate_limits(config), reset=True)
                self.counted("limits", provider, await store.count_reset("limits", provider))
            except FleetUnavailable as exc:
                raise StateUnavailable(f"rate-limit reset of {provider} failed: {exc}") from None
        return await self._limits(provider)

    async def cache_stats(self) -> dict[str, Any]:
        """The cache's ``backend``, ``namespace`` and, per provider and data type,
        ``entries``, ``old_entries``, ``generation``, ``hits`` and ``misses``.

        Raises:
            StateUnavailable: no cache, or its backend fails.
        """
        from scrapy_apigw.cache import CacheError

        cache = self._need_cache()
        try:
            rows = await cache.stats()
        except CacheError as exc:
            raise StateUnavailable(str(exc)) from None
        providers: dict[str, dict[str, Any]] = {}
        for (provider, data_type), row in sorted(rows.items()):
            providers.setdefault(provider, {})[data_type] = row
        return {
            "backend": cache.backend.name,
            "cache": cache.describe(),
            "namespace": cache.namespace,
            "providers": providers,
        }

    async def invalidate_cache(self, provider: str, data_type: str | None = None) -> dict[str, Any]:
        """Invalidate *provider*'s cached answers of *data_type* (None: of every data type it
        caches), in O(1) per data type (see
        :meth:`~scrapy_apigw.cache.resilient.ResponseCache.invalidate`).

        Returns:
            ``{"provider", "invalidated": {data_type: new generation}}``.

        Raises:
            UnknownProvider: not an enabled provider, or a data type it does not cache.
            StateUnavailable: no cache, or its backend fails.
        """
        from scrapy_apigw.cache import CacheError

        config = self.check(provider)
        cache = self._need_cache()
        known = sorted(config.cache_ttl)
        if data_type is not None and data_type not in known:
            raise UnknownProvider(
                f"{provider} caches no data type {data_type!r}; known: {', '.join(known)}"
            )
        invalidated = {}
        try:
            for name in [data_type] if data_type is not None else known:
                invalidated[name] = await cache.invalidate(provider, name)
        except CacheError as exc:
            raise StateUnavailable(str(exc)) from None
        return {"provider": provider, "invalidated": invalidated}

    async def coverage(self) -> dict[str, Any]:
        """The coverage report of every crawl that used this cache (the fleet's: each crawl
        adds its items' coverage to the cache's counters), in the shape of
        :meth:`~scrapy_apigw.ops.coverage.Coverage.report` plus ``"scope": "fleet"``;
        ``finished`` is None (crawls come and go).

        Raises:
            StateUnavailable: no cache, or its backend fails.
        """
        from scrapy_apigw.cache import CacheError
        from scrapy_apigw.ops.coverage import FLEET_COUNTERS, Coverage

        cache = self._need_cache()
        try:
            counts = await cache.counters(FLEET_COUNTERS)
        except CacheError as exc:
            raise StateUnavailable(str(exc)) from None
        report = Coverage.from_counts(counts).report()
        report.update(finished=None, scope="fleet")
        return report

    # -- helpers -------------------------------------------------------------------------------

    def _need_cache(self) -> ResponseCache:
        cache = self.cache
        if cache is None:
            raise StateUnavailable(
                "no answer cache here (APIGW_CACHE_ENABLED is False, the pipeline is not "
                "running, or no APIGW_REDIS_URL for `apigw serve`)"
            )
        return cache

    async def _redis_health(self) -> dict[str, Any]:
        store = self.store
        if store is None:
            return {"status": "not configured", "shared_limits": False}
        from scrapy_apigw.fleet.store import FleetUnavailable

        try:
            await store.ping()
        except FleetUnavailable as exc:
            return {
                "status": "unavailable",
                "shared_limits": True,
                "fleet": self.fleet,
                "error": str(exc),
            }
        return {"status": "ok", "shared_limits": True, "fleet": self.fleet}

    async def _breaker(
        self, provider: str, quiet: bool = False, skip_fleet: bool = False
    ) -> dict[str, Any]:
        config = self.providers[provider]
        local = self.local(provider)
        local_view = _local_breaker(local, self._wall) if local is not None else None
        store = self.store
        if store is not None and skip_fleet:
            if local_view is not None:
                return {**local_view, "fleet_error": "Redis unavailable"}
            return {"state": None, "source": None, "error": "Redis unavailable"}
        if store is None:
            if local_view is None:
                if quiet:
                    return {"state": None, "source": None, "error": "no shared state"}
                raise StateUnavailable("no fleet state: APIGW_REDIS_URL is not set")
            return local_view
        from scrapy_apigw.fleet.store import FleetUnavailable

        limits = breaker_limits(config)
        try:
            decision = await store.peek(provider, limits)
            fields = await store.breaker_fields(provider)
        except FleetUnavailable as exc:
            if local_view is not None:
                return {**local_view, "fleet_error": str(exc)}
            if quiet:
                return {"state": None, "source": None, "error": str(exc)}
            raise StateUnavailable(str(exc)) from None
        last = int(fields.get("last_failure", "0") or 0)
        view: dict[str, Any] = {
            "state": decision.state.value,
            "source": "fleet",
            "failures": decision.failures,
            "opened": int(fields.get("opened", "0") or 0),
            "probes": decision.probes,
            "resets": int(fields.get("resets", "0") or 0),
            "retry_in": _round(decision.retry_in),
            "last_failure_time": _iso(last / _US) if last else None,
            **_thresholds(config),
        }
        if local_view is not None:
            view["local"] = local_view
        return view

    async def _limits(self, provider: str) -> dict[str, Any]:
        config = self.providers[provider]
        configured = {
            "rate": config.rate,
            "burst": config.burst,
            "window_limit": config.window_limit,
            "window": config.window,
        }
        local = self.local(provider)
        view: dict[str, Any] = {"configured": configured}
        if local is not None:
            view.update(_local_limits(local))
        store = self.store
        if store is None:
            if local is None:
                raise StateUnavailable("no fleet state: APIGW_REDIS_URL is not set")
            return view
        from scrapy_apigw.fleet.store import FleetUnavailable

        try:
            shared = await store.limits(provider, rate_limits(config))
        except FleetUnavailable as exc:
            if local is not None:
                return {**view, "fleet_error": str(exc)}
            raise StateUnavailable(str(exc)) from None
        fleet = {
            "source": "fleet",
            "rate": shared.rate,
            "burst": shared.burst,
            "tokens": _round(shared.tokens),
            "paused_for": _round(shared.paused_for),
            "waiters": shared.waiters,
            "window_sends": shared.window_sends,
            "learned_quota": (
                dataclasses.asdict(shared.learned) if shared.learned is not None else None
            ),
        }
        if local is not None:
            fleet["local"] = {k: view.pop(k) for k in list(view) if k != "configured"}
        view.update(fleet)
        return view


class CrawlState(OpsState):
    """:class:`OpsState` of a running crawl: its gateway, the fleet's store when limits are
    shared (``gateway.shared``), and the pipeline's cache (``gateway.cache``)."""

    mode = "crawl"

    def __init__(self, gateway: Gateway, wall: Any = time.time) -> None:
        super().__init__(
            {name: state.config for name, state in gateway.states.items()},
            fleet=gateway.settings.fleet if gateway.settings.shared_limits else None,
            wall=wall,
        )
        self.gateway = gateway

    @property
    def store(self) -> FleetStore | None:
        """The fleet's store while the crawl shares limits, else None."""
        shared = self.gateway.shared
        return shared.store if shared is not None else None

    @property
    def cache(self) -> ResponseCache | None:
        """The pipeline's cache once open, else None."""
        return self.gateway.cache

    def local(self, provider: str) -> ProviderState | None:
        """The gateway's state of *provider*."""
        return self.gateway.states.get(provider)

    def reset_local_breaker(self, provider: str) -> None:
        """:meth:`Gateway.reset_breaker`."""
        self.gateway.reset_breaker(provider)

    def reset_local_limits(self, provider: str) -> None:
        """:meth:`Gateway.reset_limits`."""
        self.gateway.reset_limits(provider)

    def counted(self, kind: str, provider: str, count: int) -> None:
        """Tell the heartbeats this reset is done here (not to do it again)."""
        shared = self.gateway.shared
        if shared is not None:
            shared.saw_reset(kind, provider, count)


class RedisState(OpsState):
    """:class:`OpsState` from Redis only: the fleet's store and the Redis cache of *settings*
    (``APIGW_REDIS_URL``, ``APIGW_FLEET``, ``APIGW_CACHE_NAMESPACE``; the providers as the
    crawls configure them). Nothing connects until :meth:`open`; :meth:`close` when done.

    Raises:
        StateUnavailable: *settings* has no ``APIGW_REDIS_URL``.
    """

    mode = "redis"

    def __init__(self, settings: GatewaySettings, wall: Any = time.time) -> None:
        if not settings.redis_url:
            raise StateUnavailable(
                "the fleet's state is in Redis: set APIGW_REDIS_URL (or pass --redis-url)"
            )
        if settings.sandbox:
            # The crawls' providers are scaled to the sandbox speed; so must the scripts' be.
            settings = settings.routed_to_sandbox(settings.sandbox_url or "http://127.0.0.1")
        super().__init__(
            {name: c for name, c in settings.providers.items() if c.enabled},
            fleet=settings.fleet,
            wall=wall,
        )
        self.settings = settings

    async def open(self) -> None:
        """Connect to Redis (in the background: a Redis that is down is reported by each
        call) and open the cache."""
        from scrapy_apigw.cache import RedisCacheBackend, ResponseCache
        from scrapy_apigw.fleet.store import FleetStore

        settings = self.settings
        assert settings.redis_url
        if self._store is None:
            self._store = FleetStore.connect(
                settings.redis_url,
                fleet=settings.fleet,
                namespace=settings.cache_namespace,
                timeout=settings.cache_timeout,
            )
        if self._cache is None:
            backend = RedisCacheBackend(settings.redis_url, timeout=settings.cache_timeout)
            self._cache = ResponseCache(backend, namespace=settings.cache_namespace)
            await self._cache.open()

    async def close(self) -> None:
        """Close the connections. Never raises."""
        store, self._store = self._store, None
        cache, self._cache = self._cache, None
        if store is not None:
            await store.close()
        if cache is not None:
            await cache.close()


def breaker_limits(config: ProviderConfig) -> BreakerLimits:
    """*config*'s breaker rules as the fleet's processes pass them to Redis."""
    from scrapy_apigw.fleet.store import BreakerLimits

    return BreakerLimits(config.failure_threshold, config.open_timeout, config.success_threshold)


def rate_limits(config: ProviderConfig) -> RateLimits:
    """*config*'s rate limits as the gateway shares them (:meth:`Gateway.rate_limits`)."""
    from scrapy_apigw.fleet.store import RateLimits
    from scrapy_apigw.gateway import FLEET_EARLY, WINDOW_MARGIN

    window_limit, window = config.window_limit or 0, config.window or 0.0
    if not (window_limit and window):
        window_limit, window = 0, 0.0
    return RateLimits(
        rate=config.rate,
        burst=config.burst,
        window_limit=max(1, window_limit - WINDOW_MARGIN) if window_limit else 0,
        window=float(window),
        margin=WINDOW_MARGIN,
        early=FLEET_EARLY,
    )


def _thresholds(config: ProviderConfig) -> dict[str, Any]:
    return {
        "failure_threshold": config.failure_threshold,
        "success_threshold": config.success_threshold,
        "open_timeout": config.open_timeout,
    }


def _local_breaker(state: ProviderState, wall: Any) -> dict[str, Any]:
    breaker = state.breaker
    last = breaker.last_failure
    retry_in = breaker.retry_in()
    return {
        "state": breaker.state.value,
        "source": "local",
        "failures": breaker.failure_count,
        "opened": breaker.opened_count,
        "rejected": breaker.rejected_count,
        "successes_total": breaker.successes_total,
        "failures_total": breaker.failures_total,
        "retry_in": None if math.isinf(retry_in) else _round(retry_in),
        "last_failure_time": (_iso(wall() - (state.clock() - last)) if last is not None else None),
        **_thresholds(state.config),
    }


def _local_limits(state: ProviderState) -> dict[str, Any]:
    bucket = state.bucket
    return {
        "source": "local",
        "rate": bucket.rate,
        "burst": bucket.burst,
        "tokens": _round(bucket.tokens),
        "paused_for": _round(max(0.0, bucket.blocked_until - state.clock())),
        "unavailable_for": _round(state.rate_limits.unavailable_for()),
        "window_sends": state.window.count() if state.window is not None else 0,
    }


def _round(value: float) -> float:
    return round(float(value), 3)


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"
