"""A reset acts on the whole fleet: two crawlers' gateways share one real Redis; the breaker
(or the rate limits) is reset by another process (``apigw breakers reset``, the command line
as a real subprocess) or through the admin API of one of the crawls, and the circuit closes
for both: at once for the fleet's breaker every call asks, and at the next heartbeat for each
process's own breaker and pause."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_twisted
from admin_helpers import TOKEN, Server, gateway_settings, task
from scrapy.utils.test import get_crawler

from scrapy_apigw.core.breaker import BreakerState
from scrapy_apigw.core.outcome import Outcome
from scrapy_apigw.exceptions import CircuitOpenError
from scrapy_apigw.fleet.limiter import BreakerTicket
from scrapy_apigw.gateway import Gateway
from scrapy_apigw.ops.admin import ops_children
from scrapy_apigw.ops.state import CrawlState

MB = "musicbrainz"
FLEET = "admin-test"
ROOT = Path(__file__).resolve().parents[2]


def settings(redis_url: str) -> dict[str, Any]:
    return {
        "APIGW_REDIS_URL": redis_url,
        "APIGW_FLEET": FLEET,
        # Heartbeats only when the test beats: no timer decides for it.
        "APIGW_FLEET_HEARTBEAT": 3000,
        "APIGW_ADMIN_TOKEN": TOKEN,
        "APIGW_PROVIDERS": {MB: {"failure_threshold": 2, "open_timeout": 600}},
    }


async def start_gateway(redis_url: str) -> Gateway:
    gateway = Gateway(get_crawler(), gateway_settings(settings(redis_url)))
    gateway.share_limits(gateway._connect_fleet())
    assert gateway.shared is not None
    await task(gateway.shared.start())  # the first beat
    return gateway


@pytest_twisted.async_yield_fixture
async def crawls(redis_url: str) -> AsyncIterator[list[Gateway]]:
    gateways = [await start_gateway(redis_url) for _ in range(2)]
    yield gateways
    for gateway in gateways:
        await task(gateway.close())


async def trip_the_fleet(gateway: Gateway) -> None:
    state = gateway.states[MB]
    for _ in range(2):
        await task(gateway.fleet_record_breaker(state, Outcome.SERVER_ERROR, BreakerTicket(True)))


async def refused(gateway: Gateway) -> bool:
    try:
        await task(gateway.fleet_check_circuit(gateway.states[MB]))
    except CircuitOpenError:
        return True
    return False


def cli(*args: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    """``apigw ...`` as its own process (the lead wires ``apigw``; this is its admin part)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SCRAPY_SETTINGS_MODULE", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "scrapy_apigw.ops.admin_cli",
            *args,
            "--redis-url",
            redis_url,
            "--fleet",
            FLEET,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT / "tests",
        check=False,
    )


@pytest_twisted.ensureDeferred
async def test_a_breaker_reset_by_the_command_line_closes_the_circuit_for_every_process(
    crawls: list[Gateway], redis_url: str
) -> None:
    a, b = crawls
    await trip_the_fleet(a)
    assert await refused(a) and await refused(b)
    # b's own breaker opened too, say during an earlier Redis outage: it would decide again
    # at the next one.
    for _ in range(2):
        b.states[MB].breaker.record_failure()
    assert b.states[MB].breaker.state is BreakerState.OPEN

    done = await task(
        _in_thread(lambda: cli("breakers", "reset", MB, redis_url=redis_url)), timeout=130
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["state"] == "closed"

    assert not await refused(a) and not await refused(b)  # at their next call
    assert b.states[MB].breaker.state is BreakerState.OPEN  # until its next heartbeat
    await task(b.shared.heartbeat())  # type: ignore[union-attr]
    assert b.states[MB].breaker.state is BreakerState.CLOSED
    assert b.stats.get_value(f"apigw/{MB}/breaker/resets") == 1


@pytest_twisted.ensureDeferred
async def test_a_reset_through_one_crawls_admin_api_reaches_the_other_crawl(
    crawls: list[Gateway],
) -> None:
    a, b = crawls
    server = Server(ops_children(CrawlState(a)))
    try:
        await trip_the_fleet(b)
        for gateway in crawls:
            for _ in range(2):
                gateway.states[MB].breaker.record_failure()
            gateway.pause(gateway.states[MB], 300.0, "test")
        listed = (await server.call("GET", "/admin/circuit-breakers")).json[MB]
        assert (listed["source"], listed["state"], listed["local"]["state"]) == (
            "fleet",
            "open",
            "open",
        )
        answer = await server.call("POST", f"/admin/circuit-breakers/{MB}/reset")
        assert answer.status == 200
        assert (answer.json["state"], answer.json["local"]["state"]) == ("closed", "closed")
        assert not await refused(b)
        limits = await server.call("POST", f"/admin/rate-limits/{MB}/reset")
        assert limits.status == 200
        assert limits.json["paused_for"] == 0 and limits.json["local"]["paused_for"] == 0
        assert b.states[MB].bucket.blocked_until > b.clock() + 200  # until its next beat
        await task(b.shared.heartbeat())  # type: ignore[union-attr]
        assert b.states[MB].breaker.state is BreakerState.CLOSED
        assert b.states[MB].bucket.blocked_until <= b.clock()
        assert b.stats.get_value(f"apigw/{MB}/rate_limit/resets") == 1
        # a did both itself: its own heartbeat does not reset it a second time.
        await task(a.shared.heartbeat())  # type: ignore[union-attr]
        assert a.stats.get_value(f"apigw/{MB}/breaker/resets") == 1
        assert a.stats.get_value(f"apigw/{MB}/rate_limit/resets") == 1
        await task(a.acquire(a.states[MB]))  # not held by the ended pause
    finally:
        await server.close()
    for answer in server.answers:
        assert TOKEN not in answer.text()


def _in_thread(function: Any) -> Any:
    """Await a blocking *function* (a subprocess) without blocking the reactor."""
    from twisted.internet import threads

    async def run() -> Any:
        from scrapy.utils.defer import maybe_deferred_to_future

        return await maybe_deferred_to_future(threads.deferToThread(function))

    return run()
