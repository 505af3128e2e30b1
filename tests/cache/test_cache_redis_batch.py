"""Batched Redis lookups (one MGET per event-loop turn) and replies parsed in one read.

A warm crawl's items ask the cache at once: the lookups of one loop turn travel as one
``MGET``, and the replies that arrive in one read are parsed there and then (txredisapi would
take one reactor turn, and pause the transport, per reply). Against a real redis-server, whose
``INFO commandstats`` counts the commands it got.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterator
from typing import Any

import pytest
import pytest_twisted
from fixtures_bad_redis import BadServer
from fixtures_redis import RedisServer
from scrapy.utils.defer import deferred_from_coro
from twisted.internet.defer import Deferred
from twisted.internet.testing import StringTransport

from scrapy_apigw.cache import RedisCacheBackend
from scrapy_apigw.cache.redis import MGET_MAX_KEYS
from scrapy_apigw.cache.redis_client import RedisFailure, RedisProblem, _pool_classes

TIMEOUT = 0.8
SLACK = 2.0  # generous: CI runs on a loaded 2-core machine


def task(awaitable: Awaitable[Any]) -> Deferred[Any]:
    """Run *awaitable* as an asyncio Task (as Scrapy runs pipelines); fail after 10 s."""
    from twisted.internet import reactor

    d = deferred_from_coro(awaitable)
    d.addTimeout(10, reactor)
    return d


def calls(server: RedisServer, command: str) -> int:
    """How many *command* commands the server ran since the last ``CONFIG RESETSTAT``."""
    info = server.command("INFO", "commandstats")
    text = info.decode() if isinstance(info, bytes) else str(info)
    for line in text.splitlines():
        if line.startswith(f"cmdstat_{command.lower()}:"):
            return int(line.split("calls=", 1)[1].split(",", 1)[0])
    return 0


@pytest.fixture
def backend(redis_url: str) -> Iterator[RedisCacheBackend]:
    backend = RedisCacheBackend(redis_url, timeout=5.0)
    yield backend


@pytest_twisted.ensureDeferred
async def test_lookups_of_one_turn_are_one_mget(
    backend: RedisCacheBackend, redis_server: RedisServer
) -> None:
    await task(backend.open())
    try:
        await task(backend.set("a", b"\x00 first", 60))
        await task(backend.set("b", "Été".encode(), 60))
        redis_server.command("CONFIG", "RESETSTAT")

        async def together() -> list[bytes | None]:
            return await asyncio.gather(
                backend.get("a"), backend.get("b"), backend.get("absent"), backend.get("a")
            )

        assert await task(together()) == [b"\x00 first", "Été".encode(), None, b"\x00 first"]
        assert (calls(redis_server, "MGET"), calls(redis_server, "GET")) == (1, 0)
        # A lookup alone is a GET.
        assert await task(backend.get("b")) == "Été".encode()
        assert (calls(redis_server, "MGET"), calls(redis_server, "GET")) == (1, 1)
    finally:
        await task(backend.close())


@pytest_twisted.ensureDeferred
async def test_more_lookups_than_a_batch_holds_are_several_mgets(
    backend: RedisCacheBackend, redis_server: RedisServer
) -> None:
    count = 2 * MGET_MAX_KEYS + 50
    await task(backend.open())
    try:
        for n in range(0, count, 3):  # every third key present
            await task(backend.set(f"k{n}", f"value {n}".encode(), 60))
        redis_server.command("CONFIG", "RESETSTAT")

        async def together() -> list[bytes | None]:
            return await asyncio.gather(*(backend.get(f"k{n}") for n in range(count)))

        values = await task(together())
        assert values == [f"value {n}".encode() if n % 3 == 0 else None for n in range(count)]
        assert (calls(redis_server, "MGET"), calls(redis_server, "GET")) == (3, 0)
    finally:
        await task(backend.close())


@pytest_twisted.ensureDeferred
async def test_a_cancelled_lookup_leaves_the_others_of_its_batch(
    backend: RedisCacheBackend, redis_server: RedisServer
) -> None:
    await task(backend.open())
    try:
        await task(backend.set("a", b"1", 60))
        await task(backend.set("b", b"2", 60))

        async def one_cancelled() -> tuple[bool, bytes | None]:
            first = asyncio.ensure_future(backend.get("a"))
            second = asyncio.ensure_future(backend.get("b"))
            redis_server.pause()
            try:
                await asyncio.sleep(0.2)  # both sent in one MGET, not answered yet
                first.cancel()
            finally:
                redis_server.resume()
            value = await second
            await asyncio.sleep(0)
            return first.cancelled(), value

        assert await task(one_cancelled()) == (True, b"2")
    finally:
        if redis_server.paused:
            redis_server.resume()
        await task(backend.close())


@pytest_twisted.ensureDeferred
async def test_a_batch_without_reply_fails_each_lookup_within_the_timeout() -> None:
    server = BadServer()  # accepts connections, never answers
    try:
        backend = RedisCacheBackend(f"redis://127.0.0.1:{server.port}/0", timeout=TIMEOUT)
        with pytest.raises(RedisFailure):
            await task(backend.open())  # PING unanswered; the pool stays
        started = time.monotonic()

        async def together() -> list[Any]:
            gets = (backend.get("a"), backend.get("b"), backend.get("c"))
            return await asyncio.gather(*gets, return_exceptions=True)

        failures = await task(together())
        seconds = time.monotonic() - started
        assert all(isinstance(f, RedisFailure) for f in failures)
        assert [f.problem for f in failures] == [RedisProblem.TIMEOUT] * 3
        assert [str(f) for f in failures] == [f"MGET got no reply within {TIMEOUT:g} s"] * 3
        assert len({id(f) for f in failures}) == 3  # each lookup raises its own
        assert seconds < TIMEOUT + SLACK
        await task(backend.close())
    finally:
        server.stop()


def test_replies_arriving_together_are_parsed_at_once() -> None:
    """Several replies in one read (a pipelined burst, an MGET) are all delivered during that
    read, the transport never paused; a reply split across reads is delivered once whole."""
    _, protocol_class, _ = _pool_classes()
    protocol = protocol_class(charset=None, convertNumbers=False)
    transport = StringTransport()
    protocol.transport = transport
    replies: list[Any] = []
    for _ in range(4):
        protocol.replyQueue.get().addCallback(replies.append)
    protocol.dataReceived(b"$3\r\nabc\r\n$-1\r\n*3\r\n$1\r\nx\r\n$-1\r\n$2\r\nyz\r\n$5\r\nhel")
    assert replies == [b"abc", None, [b"x", None, b"yz"]]
    assert transport.producerState == "producing" and not protocol.paused
    protocol.dataReceived(b"lo\r\n")
    assert replies == [b"abc", None, [b"x", None, b"yz"], b"hello"]
