"""The adaptive rate, fleet-wide: one AIMD record per provider in a real redis-server, written
with a compare-and-set and read by every acquire, at a fake clock (test-only script variants:
the gateways' clock and the scripts' instants are the same fake clock).

Spotify's defaults: 10 req/s, burst 20; AIMD: x0.5 per congestion event, hold 1 s, quiet 2 s,
+1 req/s per step.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
import pytest_twisted
from fleet_helpers import task
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler

from scrapy_apigw.core.clock import FakeClock
from scrapy_apigw.core.fallback import LimiterMode
from scrapy_apigw.core.outcome import Outcome
from scrapy_apigw.fleet import FleetStore
from scrapy_apigw.fleet.limiter import SharedLimits
from scrapy_apigw.gateway import Gateway
from scrapy_apigw.settings import GatewaySettings


class Sleeps:
    """The limiter's injected sleep: advances the fake clock and records each wait."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(round(seconds, 6))
        self.clock.advance(seconds)


def fleet_gateway(store: FleetStore, clock: FakeClock) -> Gateway:
    settings = GatewaySettings.from_settings(Settings({}), environ={})
    gateway = Gateway(get_crawler(), settings, clock=clock)
    gateway.share_limits(SharedLimits(store, 15.0, gateway.stats.inc_value, clock))
    return gateway


def decreases(gateway: Gateway) -> int | None:
    return gateway.stats.get_value("apigw/spotify/rate/decreases")


@pytest.mark.usefixtures("redis_url")
@pytest_twisted.ensureDeferred
async def test_a_compare_and_set_writes_only_over_the_version_it_was_computed_from(
    store: FleetStore, redis_server: Any
) -> None:
    empty = await task(store.adapt("spotify", None))
    assert (empty.written, empty.version, empty.fields) == (False, 0, {})
    first = await task(store.adapt("spotify", 0, {"rate": "5.0", "burst": "10"}))
    assert (first.written, first.version, first.fields) == (True, 1, {"rate": "5.0", "burst": "10"})
    assert first.server_time == 1000.0
    late = await task(store.adapt("spotify", 0, {"rate": "7.0", "burst": "3"}))
    assert (late.written, late.version, late.fields["rate"]) == (False, 1, "5.0")
    assert 3_500_000 < redis_server.command("PTTL", store.keys("spotify").adaptive) <= 3_600_000


@pytest.mark.usefixtures("redis_url")
@pytest_twisted.ensureDeferred
async def test_every_acquire_paces_at_the_fleets_effective_rate_never_above_the_configured(
    make_store: Callable[..., FleetStore], clock: FakeClock
) -> None:
    store = make_store("a")
    gateway = fleet_gateway(store, clock)
    state = gateway.states["spotify"]
    limits = gateway.rate_limits(state)
    await task(store.adapt("spotify", 0, {"rate": "2.0", "burst": "1"}))
    sleeps = Sleeps(clock)
    for _ in range(3):
        await task(gateway.shared.acquire("spotify", limits, sleeps))
    # 2 req/s, burst 1, not the configured 10 and 20: tokens due at 0.5 and 1.0, each granted
    # the gateway's early 2 ms before.
    assert sleeps.waits == [0.498, 0.5]
    assert (state.bucket.rate, state.bucket.burst) == (2.0, 1)
    await task(store.adapt("spotify", 1, {"rate": "50.0", "burst": "100"}))
    clock.advance(10.0)
    await task(gateway.shared.acquire("spotify", limits, sleeps))
    assert (state.bucket.rate, state.bucket.burst) == (10.0, 20)  # the ceiling: configured


@pytest.mark.usefixtures("redis_url")
@pytest_twisted.ensureDeferred
async def test_two_gateways_see_one_effective_rate_and_one_decrease_per_congestion_event(
    make_store: Callable[..., FleetStore], clock: FakeClock
) -> None:
    a = fleet_gateway(make_store("a"), clock)
    b = fleet_gateway(make_store("b"), clock)
    sa, sb = a.states["spotify"], b.states["spotify"]
    # a's request sent at 1000.0 is refused at 1000.1 (Retry-After: 1).
    clock.set(1000.1)
    a.record_pacing(sa, Outcome.RATE_LIMITED, {"retry-after": "1"}, sent_at=1000.0)
    await task(a.shared.drain())
    assert (sa.bucket.rate, sa.bucket.burst) == (5.0, 10)
    assert decreases(a) == 1
    # b's request, sent before a's decrease, is refused too: the same event, no decrease.
    clock.set(1000.2)
    b.record_pacing(sb, Outcome.RATE_LIMITED, {"retry-after": "1"}, sent_at=1000.05)
    await task(b.shared.drain())
    assert decreases(b) is None
    record = await task(a.shared.store.adapt("spotify", None))
    assert (record.version, record.fields["rate"], record.fields["burst"]) == (2, "5.0", "10")
    assert record.fields["decreases"] == "1"
    # After the shared pause (1001.2), b paces at the fleet's 5 req/s: one token, then 0.2 s
    # (the first granted the gateway's early 2 ms before its token is due).
    clock.set(1001.2)
    sleeps = Sleeps(clock)
    limits = b.rate_limits(sb)
    for _ in range(3):
        await task(b.shared.acquire("spotify", limits, sleeps))
    assert sleeps.waits == [0.198, 0.2]
    assert (sb.bucket.rate, sb.bucket.burst) == (5.0, 10)
    assert b.stats.get_value("apigw/spotify/rate/effective") == 5.0
    # A success one quiet interval after the last rate limit (1000.2 + 2 s) steps the fleet up.
    clock.set(1002.3)
    b.record_pacing(sb, Outcome.SUCCESS, {})
    await task(b.shared.drain())
    assert sb.bucket.rate == 6.0
    await task(a.shared.acquire("spotify", a.rate_limits(sa), Sleeps(clock)))
    assert sa.bucket.rate == 6.0  # a learns it from its next acquire
    # ... and a's next success, within b's quiet interval, writes nothing.
    a.record_pacing(sa, Outcome.SUCCESS, {})
    await task(a.shared.drain())
    record = await task(a.shared.store.adapt("spotify", None))
    assert (record.version, record.fields["rate"]) == (3, "6.0")


@pytest_twisted.ensureDeferred
async def test_redis_down_the_local_adaptive_rate_decides(clock: FakeClock) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = FleetStore.connect(f"redis://127.0.0.1:{port}", fleet="t", timeout=0.2, clock=clock)
    try:
        gateway = fleet_gateway(store, clock)
        state = gateway.states["spotify"]
        clock.set(1000.1)
        gateway.record_pacing(state, Outcome.RATE_LIMITED, {}, sent_at=1000.0)
        await task(gateway.shared.drain())
        assert gateway.shared.fallback.mode is LimiterMode.FALLBACK
        assert (state.bucket.rate, state.bucket.burst) == (5.0, 10)
        clock.set(1002.0)
        gateway.record_pacing(state, Outcome.RATE_LIMITED, {}, sent_at=1001.5)
        assert (state.bucket.rate, state.bucket.burst) == (2.5, 5)
        assert gateway.stats.get_value("apigw/spotify/rate/decreases") == 2
        assert gateway.stats.get_value("apigw/spotify/rate/effective") == 2.5
    finally:
        await task(store.close())
