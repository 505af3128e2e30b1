"""Every Redis operation is bounded, connecting and closing included, and says why it failed.

Real servers over loopback: the session redis-server (stopped, frozen with SIGSTOP, or spoken to
with TLS it does not have), a password-protected one, and the servers of
:mod:`fixtures_bad_redis` (accepts and never answers; answers garbage; TLS then silence). Times
are bounds derived from the timeout, never sleeps. See test_cache_redis.py for ``task()``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from fixtures_bad_redis import (
    BadServer,
    TlsFiles,
    client_connections,
    redis_leftovers,
    tls_certificate,
    wait_until,
)
from fixtures_redis import RedisServer, find_redis_server
from scrapy.utils.defer import deferred_from_coro
from twisted.internet.defer import Deferred

from scrapy_apigw.cache import RedisCacheBackend, open_cache
from scrapy_apigw.cache.redis import parse_redis_url
from scrapy_apigw.cache.redis_client import RedisClient, RedisFailure, RedisProblem
from scrapy_apigw.providers.base import ApiAnswer, ApiCall

TIMEOUT = 0.8
#: Scheduling slack on a loaded 2-core machine, added to each bound; "at once" is below it, so
#: below one timeout.
SLACK = 0.5
TRACK = ApiCall("spotify", "track", "/tracks/1")
OK = ApiAnswer("ok", 200, {"id": "1"})


def task(awaitable: Awaitable[Any]) -> Deferred[Any]:
    """Run *awaitable* as an asyncio Task; fail after 10 s instead of hanging."""
    from twisted.internet import reactor

    d = deferred_from_coro(awaitable)
    d.addTimeout(10, reactor)
    return d


async def timed(awaitable: Awaitable[Any]) -> tuple[Any, float]:
    """``(result or raised RedisFailure, seconds)`` of *awaitable* run as a task."""
    started = time.monotonic()
    try:
        result = await task(awaitable)
    except RedisFailure as failure:
        result = failure
    return result, time.monotonic() - started


@pytest.fixture(autouse=True)
def close_forgotten_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Close the clients a failed test left open: their reconnection timers would fail the
    leftover checks of the tests after it."""
    started: list[RedisClient] = []
    start = RedisClient.start

    def recording_start(self: RedisClient) -> None:
        started.append(self)
        start(self)

    monkeypatch.setattr(RedisClient, "start", recording_start)
    yield
    for client in started:
        if client.started:
            deferred_from_coro(client.close()).addErrback(lambda _: None)


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    return tls_certificate(tmp_path)


@pytest.fixture
def silent_server() -> Iterator[BadServer]:
    server = BadServer()
    yield server
    server.stop()


@pytest.fixture
def twisted_errors() -> Iterator[list[dict[str, Any]]]:
    """Error events logged through Twisted (e.g. "Unhandled Error" tracebacks)."""
    from twisted.logger import globalLogPublisher

    errors: list[dict[str, Any]] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("isError") or "log_failure" in event:
            errors.append(event)

    globalLogPublisher.addObserver(observe)
    yield errors
    globalLogPublisher.removeObserver(observe)


def connected_clients(server: RedisServer) -> int:
    """Clients of *server*, not counting the connection that asks."""
    info = server.command("INFO", "clients").decode()
    line = next(x for x in info.splitlines() if x.startswith("connected_clients:"))
    return int(line.split(":")[1]) - 1


async def assert_closes_in_time(backend: RedisCacheBackend, port: int) -> None:
    _, seconds = await timed(backend.close())
    assert seconds < TIMEOUT + SLACK
    assert redis_leftovers(port) == []


# --- rediss:// to a server without TLS --------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_rediss_to_a_plain_redis_is_reported_once_degrades_and_closes_in_time(
    redis_url: str, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's hang: the crawl never got past closing the cache."""
    caplog.set_level(logging.INFO, logger="scrapy_apigw.cache")
    url = f"rediss://:hunter2@127.0.0.1:{redis_server.port}/0"
    started = time.monotonic()
    cache = await task(open_cache(url, redis_timeout=TIMEOUT))
    # Redis waits for the end of a "command line" that a ClientHello rarely holds (no TLS
    # answer: one timeout), or answers "-ERR", which is no TLS record (at once).
    assert time.monotonic() - started < TIMEOUT + SLACK
    assert not cache.available
    assert await task(cache.get(TRACK)) is None
    await task(cache.put(TRACK, OK, 60))
    _, seconds = await timed(cache.close())
    assert seconds < TIMEOUT + SLACK
    assert redis_leftovers(redis_server.port) == []
    await wait_until(lambda: connected_clients(redis_server) == 0, 5, "Redis saw every close")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert (
        f"rediss:// handshake with 127.0.0.1:{redis_server.port} failed: "
        "is the server speaking TLS?" in warnings[0]
    )
    assert f"rediss://:***@127.0.0.1:{redis_server.port}/0" in warnings[0]
    assert "hunter2" not in caplog.text


@pytest_twisted.ensureDeferred
async def test_tls_handshake_without_answer_fails_after_one_timeout(
    silent_server: BadServer,
) -> None:
    backend = RedisCacheBackend(f"rediss://127.0.0.1:{silent_server.port}/0", timeout=TIMEOUT)
    failure, seconds = await timed(backend.open())
    assert isinstance(failure, RedisFailure)
    assert failure.problem is RedisProblem.TLS
    assert str(failure) == (
        f"rediss:// handshake with 127.0.0.1:{silent_server.port} failed: "
        f"is the server speaking TLS? (no TLS answer within {TIMEOUT:g} s)"
    )
    assert TIMEOUT <= seconds < TIMEOUT + SLACK
    # A command without a connection says why there is none.
    failure, seconds = await timed(backend.get("k"))
    assert isinstance(failure, RedisFailure) and failure.problem is RedisProblem.TLS
    assert str(failure).startswith("GET failed: rediss:// handshake with")
    assert seconds < TIMEOUT + SLACK
    await assert_closes_in_time(backend, silent_server.port)
    await wait_until(lambda: silent_server.open_connections == 0, 5, "every connection closed")


@pytest_twisted.ensureDeferred
async def test_tls_handshake_answered_with_a_redis_error_fails_at_once() -> None:
    server = BadServer(reply=b"-ERR unknown command\r\n")
    try:
        backend = RedisCacheBackend(f"rediss://127.0.0.1:{server.port}/0", timeout=TIMEOUT)
        failure, seconds = await timed(backend.open())
        assert isinstance(failure, RedisFailure) and failure.problem is RedisProblem.TLS
        assert str(failure).startswith(
            f"rediss:// handshake with 127.0.0.1:{server.port} failed: "
            "is the server speaking TLS? ("
        )
        assert seconds < SLACK  # no waiting for a timeout
        await assert_closes_in_time(backend, server.port)
    finally:
        server.stop()


@pytest_twisted.ensureDeferred
async def test_tls_server_that_never_answers_close_notify_is_aborted_at_close(
    tls_files: TlsFiles,
) -> None:
    """Closing a TLS connection waits for the peer's close_notify: forever, before the fix."""
    server = BadServer(tls=tls_files)
    try:
        url = f"rediss://localhost:{server.port}/0"
        backend = RedisCacheBackend(url, timeout=TIMEOUT, tls_ca_file=tls_files.ca)
        failure, _ = await timed(backend.open())
        assert isinstance(failure, RedisFailure) and failure.problem is RedisProblem.TIMEOUT
        assert str(failure) == f"PING got no reply within {TIMEOUT:g} s"
        await wait_until(lambda: server.handshakes == 4, 5, "four TLS connections")
        await assert_closes_in_time(backend, server.port)
        await wait_until(lambda: server.open_connections == 0, 5, "every connection aborted")
    finally:
        server.stop()


# --- servers that do not speak Redis --------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_server_that_accepts_and_never_answers(silent_server: BadServer) -> None:
    backend = RedisCacheBackend(f"redis://127.0.0.1:{silent_server.port}/0", timeout=TIMEOUT)
    failure, seconds = await timed(backend.open())
    assert isinstance(failure, RedisFailure) and failure.problem is RedisProblem.TIMEOUT
    assert str(failure) == f"PING got no reply within {TIMEOUT:g} s"
    assert TIMEOUT <= seconds < TIMEOUT + SLACK
    for operation in (backend.get("k"), backend.set("k", b"v", 60), backend.delete("k")):
        failure, seconds = await timed(operation)
        assert isinstance(failure, RedisFailure) and failure.problem is RedisProblem.TIMEOUT
        assert seconds < TIMEOUT + SLACK
    await assert_closes_in_time(backend, silent_server.port)
    await wait_until(lambda: silent_server.open_connections == 0, 5, "every connection closed")


@pytest.mark.parametrize(
    ("reply", "sent"),
    [
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "a line starting with 'HTTP/1.1 400'"),
        (b"\xff\xfe\x00 binary\r\n", "unreadable bytes: 'utf-8' codec can't decode byte 0xff"),
        (b"x" * 20000, "a line of more than 16384 bytes"),
    ],
    ids=["http", "binary", "endless-line"],
)
@pytest_twisted.ensureDeferred
async def test_server_answering_garbage_is_a_protocol_error(
    reply: bytes, sent: str, twisted_errors: list[dict[str, Any]]
) -> None:
    server = BadServer(reply=reply)
    try:
        backend = RedisCacheBackend(f"redis://127.0.0.1:{server.port}/0", timeout=TIMEOUT)
        failure, seconds = await timed(backend.open())
        assert isinstance(failure, RedisFailure) and failure.problem is RedisProblem.PROTOCOL
        assert str(failure).startswith(
            f"PING failed: the server at 127.0.0.1:{server.port} does not speak the Redis "
            f"protocol (it sent {sent}"
        )
        assert seconds < SLACK  # no waiting for a timeout
        await assert_closes_in_time(backend, server.port)
    finally:
        server.stop()
    assert twisted_errors == []  # no "Unhandled Error" traceback


# --- a real Redis: stopped, frozen, refusing -------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_refused_connection_fails_at_once_and_close_stops_reconnecting(
    redis_url: str, redis_server: RedisServer
) -> None:
    redis_server.stop()
    backend = RedisCacheBackend(redis_url, timeout=TIMEOUT)
    failure, seconds = await timed(backend.open())
    assert isinstance(failure, RedisFailure) and failure.problem is RedisProblem.UNREACHABLE
    assert str(failure).startswith(f"could not connect to 127.0.0.1:{redis_server.port}: ")
    assert "refused" in str(failure)
    assert seconds < SLACK
    # The client goes on reconnecting (a timer or an attempt in flight); on a loaded machine
    # the next attempt may not be scheduled yet at the instant open() failed, so wait for it.
    await wait_until(
        lambda: redis_leftovers(redis_server.port) != [], 2, "the client goes on reconnecting"
    )
    await assert_closes_in_time(backend, redis_server.port)


@pytest.mark.parametrize(
    ("step", "extra_args", "url"),
    [
        ("AUTH", ("--requirepass", "pw"), "redis://:pw@127.0.0.1:{port}/0"),
        ("SELECT 2", (), "redis://127.0.0.1:{port}/2"),
    ],
    ids=["auth", "select"],
)
@pytest_twisted.ensureDeferred
async def test_frozen_redis_at_login_times_out_then_recovers(
    step: str, extra_args: tuple[str, ...], url: str, tmp_path: Path
) -> None:
    """txredisapi stops reconnecting for good after a timed-out AUTH or SELECT; here only a
    refusal does, so the cache comes back once Redis does."""
    binary = find_redis_server()
    if binary is None:
        pytest.skip("no redis-server")
    server = RedisServer(binary, tmp_path, extra_args=extra_args)
    server.start()
    try:
        server.pause()  # the kernel still accepts connections: the login gets no answer
        backend = RedisCacheBackend(url.format(port=server.port), timeout=TIMEOUT)
        failure, seconds = await timed(backend.open())
        assert isinstance(failure, RedisFailure) and failure.problem is RedisProblem.TIMEOUT
        assert str(failure) == f"{step} got no reply within {TIMEOUT:g} s"
        assert seconds < TIMEOUT + SLACK
        # Every login attempt so far has timed out and dropped its connection (txredisapi would
        # now have stopped reconnecting): only then may Redis answer again.
        await wait_until(lambda: not client_connections(server.port), 5, "logins dropped")
        server.resume()
        deadline = time.monotonic() + 15
        while (result := (await timed(backend.set("k", b"v", 60)))[0]) is not None:
            assert time.monotonic() < deadline, f"no recovery: {result}"
            await task(asyncio.sleep(0.1))
        login = [("AUTH", "pw")] if extra_args else []
        db = 2 if step.startswith("SELECT") else 0
        assert server.commands(*login, ("SELECT", db), ("GET", "k"))[-1] == b"v"
        await assert_closes_in_time(backend, server.port)
    finally:
        server.stop()


@pytest_twisted.ensureDeferred
async def test_frozen_redis_commands_and_close_are_bounded(
    redis_url: str, redis_server: RedisServer
) -> None:
    backend = RedisCacheBackend(redis_url, timeout=TIMEOUT)
    await task(backend.open())
    await task(backend.set("k", b"v" * 100_000, 60))
    redis_server.pause()
    for operation in (backend.get("k"), backend.set("k", b"w" * 1_000_000, 60)):
        failure, seconds = await timed(operation)
        assert isinstance(failure, RedisFailure) and failure.problem is RedisProblem.TIMEOUT
        assert seconds < TIMEOUT + SLACK
    await assert_closes_in_time(backend, redis_server.port)


# --- the client's classification of failures (what issue 6 will reuse) ------------------------


@pytest_twisted.ensureDeferred
async def test_failures_are_classified(redis_url: str, redis_server: RedisServer) -> None:
    client = RedisClient(parse_redis_url(redis_url), timeout=TIMEOUT)
    try:
        await task(client.connect())
        assert await task(client.execute("SET", "n", "not a number")) == "OK"
        failure, _ = await timed(client.execute("INCR", "n"))
        assert isinstance(failure, RedisFailure) and failure.problem is RedisProblem.REPLY
        assert str(failure) == "INCR failed: ERR value is not an integer or out of range"
        failure, _ = await timed(client.execute("LPUSH", "n", "x"))
        assert isinstance(failure, RedisFailure) and failure.problem is RedisProblem.REPLY
        assert str(failure).startswith("LPUSH failed: WRONGTYPE")
        assert await task(client.execute("GET", "n")) == b"not a number"
    finally:
        await task(client.close())
    failure, _ = await timed(client.execute("GET", "n"))
    assert isinstance(failure, RedisFailure) and failure.problem is RedisProblem.UNREACHABLE
    assert str(failure) == "GET: the Redis client is closed"

    url = f"redis://127.0.0.1:{redis_server.port}/99"
    bad_db = RedisClient(parse_redis_url(url), timeout=TIMEOUT)
    failure, _ = await timed(bad_db.connect())
    await task(bad_db.close())
    assert isinstance(failure, RedisFailure) and failure.problem is RedisProblem.LOGIN
    assert str(failure) == "could not select database 99: ERR DB index is out of range"


@pytest_twisted.ensureDeferred
async def test_wrong_password_is_a_login_failure_and_stops_reconnecting(tmp_path: Path) -> None:
    binary = find_redis_server()
    if binary is None:
        pytest.skip("no redis-server")
    server = RedisServer(binary, tmp_path, extra_args=("--requirepass", "right"))
    server.start()
    try:
        url = f"redis://:s3cret-pw@127.0.0.1:{server.port}/0"
        client = RedisClient(parse_redis_url(url), timeout=TIMEOUT)
        failure, _ = await timed(client.connect())
        assert isinstance(failure, RedisFailure) and failure.problem is RedisProblem.LOGIN
        assert str(failure).startswith("could not auth: WRONGPASS")
        assert "s3cret-pw" not in str(failure)
        failure, seconds = await timed(client.execute("PING"))
        assert isinstance(failure, RedisFailure) and failure.problem is RedisProblem.LOGIN
        assert seconds < SLACK  # not reconnecting: fails at once
        await wait_until(lambda: redis_leftovers(server.port) == [], 5, "no reconnection")
        await task(client.close())
    finally:
        server.stop()
