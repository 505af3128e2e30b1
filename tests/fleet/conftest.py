"""Fixtures of the fleet tests: a fake server clock and stores on the session redis-server.

Never import txredisapi or the reactor at module level here (see tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from fixtures_redis import RedisServer, own_redis_server
from fleet_helpers import pool

from scrapy_apigw.core.clock import FakeClock
from scrapy_apigw.fleet import FleetStore


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own, to freeze, kill and restart (not the session one)."""
    with own_redis_server(tmp_path) as server:
        yield server


@pytest.fixture
def password_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own that wants the password ``right-pass-4711``."""
    with own_redis_server(tmp_path, ("--requirepass", "right-pass-4711")) as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    """The instant the test-only script variants decide at: 1000 s after the epoch."""
    return FakeClock(1000.0)


@pytest_twisted.async_yield_fixture
async def redis_pool(redis_url: str) -> AsyncIterator[Any]:
    """A txredisapi pool (8 connections) to the flushed session redis-server."""
    connections = pool(redis_url)
    yield connections
    await connections.disconnect()


@pytest.fixture
def make_store(redis_pool: Any, clock: FakeClock) -> Callable[..., FleetStore]:
    """``make_store(process_id="a", **kwargs)``: a store of fleet ``test`` on the shared pool,
    deciding at the fake *clock* (test-only script variants) unless ``clock=None``."""

    def make(process_id: str = "a", **kwargs: Any) -> FleetStore:
        kwargs.setdefault("clock", clock)
        return FleetStore(redis_pool, fleet="test", process_id=process_id, **kwargs)

    return make


@pytest.fixture
def store(make_store: Callable[..., FleetStore]) -> FleetStore:
    """A store of process ``a`` at the fake clock."""
    return make_store()
