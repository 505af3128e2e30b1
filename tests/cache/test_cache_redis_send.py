"""How a command leaves: the client's own RESP encoder, and the write at once (no reactor turn,
no Nagle delay).

The encoder against txredisapi's for the argument types the gateway sends; the write against the
session redis-server over loopback (the bytes are in the kernel when ``execute_command``
returns, not in Twisted's buffer until the reactor's next turn).
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
import txredisapi
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future

from scrapy_apigw.cache.redis import parse_redis_url
from scrapy_apigw.cache.redis_client import RedisClient, _encode_command


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("PING",), b"*1\r\n$4\r\nPING\r\n"),
        (
            ("EVALSHA", "ab12", "1", "k:{p}", "2.5", 7),
            b"*6\r\n$7\r\nEVALSHA\r\n$4\r\nab12\r\n$1\r\n1\r\n$5\r\nk:{p}\r\n$3\r\n2.5\r\n"
            b"$1\r\n7\r\n",
        ),
        (
            ("SET", b"k\x00\r\n", "\u00e9"),
            b"*3\r\n$3\r\nSET\r\n$4\r\nk\x00\r\n\r\n$2\r\n\xc3\xa9\r\n",
        ),
        (("GET", ""), b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n"),
    ],
)
def test_the_encoder_gives_the_bytes_txredisapi_would(
    args: tuple[Any, ...], expected: bytes
) -> None:
    assert _encode_command(args, "utf-8", "strict") == expected
    assert txredisapi.BaseRedisProtocol()._build_command(*args) == expected


@pytest.mark.parametrize("odd", [1.5, True, None, bytearray(b"x")])
def test_other_argument_types_are_left_to_txredisapi(odd: Any) -> None:
    assert _encode_command(("SET", "k", odd), "utf-8", "strict") is None


def test_no_charset_is_left_to_txredisapi() -> None:
    assert _encode_command(("PING",), None, "strict") is None


def test_a_string_the_charset_cannot_encode_raises() -> None:
    with pytest.raises(UnicodeEncodeError):
        _encode_command(("SET", "\u00e9"), "ascii", "strict")


@pytest_twisted.ensureDeferred
async def test_a_command_is_on_the_wire_when_execute_command_returns(redis_url: str) -> None:
    # RedisClient.execute must run in an asyncio Task (as in a crawl).
    await deferred_from_coro(on_the_wire(redis_url))


async def on_the_wire(redis_url: str) -> None:
    client = RedisClient(parse_redis_url(redis_url), timeout=2.0, poolsize=1)
    client.start()
    try:
        assert await client.execute("PING") == "PONG"
        connection = client._factory.pool[0]
        transport = connection.transport
        # Nagle's algorithm is off: a small command in flight never holds the next one back.
        assert transport.getTcpNoDelay()
        reply = connection.execute_command("ECHO", "now")
        # Written by execute_command itself: nothing left in Twisted's buffers, no writer.
        assert (transport.dataBuffer, transport._tempDataBuffer) == (b"", [])
        assert transport not in transport.reactor.getWriters()
        assert await maybe_deferred_to_future(reply) == b"now"
        # The same connection with the write left to the reactor: buffered until its turn.
        connection.write_now = False
        later = connection.execute_command("ECHO", "later")
        assert transport._tempDataBuffer == [b"*2\r\n$4\r\nECHO\r\n$5\r\nlater\r\n"]
        assert transport in transport.reactor.getWriters()
        assert await maybe_deferred_to_future(later) == b"later"
    finally:
        await client.close()
