"""The Redis cache backend, on txredisapi (asynchronous, Twisted-native).

txredisapi and ``twisted.internet.reactor`` are imported inside methods only: importing them at
module level would install the default reactor before Scrapy installs the asyncio one.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from twisted.internet.defer import CancelledError as TwistedCancelledError
from twisted.internet.defer import Deferred

from scrapy_apigw.cache.base import CacheError
from scrapy_apigw.cache.redis_client import RedisClient, RedisFailure
from scrapy_apigw.deferreds import Waiter, deferred_from_coro, fail, new_waiter, settle, settled
from scrapy_apigw.exceptions import ConfigError
from scrapy_apigw.secrets import Secret

__all__ = ["MGET_MAX_KEYS", "RedisAddress", "RedisCacheBackend", "parse_redis_url"]

_DEFAULT_PORT = 6379
#: The most keys one batched lookup (``MGET``) asks for; more lookups in one loop turn are
#: sent as several batches.
MGET_MAX_KEYS = 200
_PEM_END = b"-----END CERTIFICATE-----"


@dataclass(frozen=True)
class RedisAddress:
    """Where a Redis server is and how to log in, parsed from a ``redis://`` URL.

    Attributes:
        host: host name or IP address (IPv6 without brackets).
        port: TCP port.
        db: database number (``SELECT``).
        username: ACL user name (Redis 6+), or ``None`` for the default user.
        password: the password, wrapped so it never shows in reprs and logs.
        tls: True for ``rediss://``: TLS with certificate and host name verification.
    """

    host: str
    port: int = _DEFAULT_PORT
    db: int = 0
    username: str | None = None
    password: Secret | None = None
    tls: bool = False

    def describe(self) -> str:
        """Return the URL without the password, e.g. ``redis://:***@cache.internal:6379/0``."""
        scheme = "rediss" if self.tls else "redis"
        auth = ""
        if self.username or self.password:
            auth = f"{self.username or ''}:{'***' if self.password else ''}@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{auth}{host}:{self.port}/{self.db}"


def parse_redis_url(url: str) -> RedisAddress:
    """Parse ``redis://[[user]:password@]host[:port][/db]`` (or ``rediss://`` for TLS).

    User name and password are percent-decoded. txredisapi has no URL parser, hence this one.

    Raises:
        ConfigError: not a redis/rediss URL, no host, a bad port or db, or a query string or
            fragment (options are not taken from the URL). The message never shows the password.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        # urlsplit's message may quote the URL, password included
        raise ConfigError("the Redis URL cannot be parsed") from None
    where = f"{parts.scheme}://{parts.hostname or ''}"
    if parts.scheme not in ("redis", "rediss"):
        raise ConfigError(
            f"the Redis URL must start with redis:// or rediss://, got {parts.scheme or 'none'}://"
        )
    if not parts.hostname:
        raise ConfigError(f"the Redis URL has no host ({where})")
    if parts.query or parts.fragment:
        raise ConfigError(f"the Redis URL must not have a query string or fragment ({where})")
    try:
        port = parts.port or _DEFAULT_PORT
    except ValueError:
        raise ConfigError(f"the Redis URL has an invalid port ({where})") from None
    db_text = parts.path.strip("/") or "0"
    if not db_text.isdigit():
        raise ConfigError(f"the Redis URL's database must be a number, got /{db_text} ({where})")
    password = unquote(parts.password) if parts.password is not None else None
    return RedisAddress(
        host=parts.hostname,
        port=port,
        db=int(db_text),
        username=unquote(parts.username) if parts.username else None,
        password=Secret(password) if password else None,
        tls=parts.scheme == "rediss",
    )


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _load_ca_file(path: str | os.PathLike[str]) -> Any:
    from twisted.internet.ssl import Certificate, trustRootFromCertificates

    try:
        pem = Path(path).read_bytes()
        blocks = [b + _PEM_END for b in pem.split(_PEM_END) if b"-----BEGIN" in b]
        certificates = [Certificate.loadPEM(block) for block in blocks]
    except Exception as exc:
        raise ConfigError(f"cannot read the Redis CA file {path}: {exc}") from None
    if not certificates:
        raise ConfigError(f"the Redis CA file {path} holds no PEM certificate")
    return trustRootFromCertificates(certificates)


class RedisCacheBackend:
    """Cache entries in Redis: ``SET key value PX ttl_ms``, ``GET``, ``DEL``.

    The connections (a :class:`~.redis_client.RedisClient` on txredisapi) are made in the
    background and re-made with backoff after a restart (about 1 s first delay, growing to 10 s
    during a long outage). Every operation is bounded by ``timeout``: each step of connecting
    (TCP, TLS handshake, AUTH, SELECT), each command (waiting for a connection included) and
    :meth:`close`. Values travel as raw bytes: with ``charset=None`` txredisapi returns bulk
    replies as ``bytes`` and encodes ``str`` keys as UTF-8; ``convertNumbers=False`` so a cached
    ``"123"`` is not turned into an int.

    Args:
        url: ``redis://[[user]:password@]host[:port][/db]``, or ``rediss://`` for TLS (the
            server's certificate is verified for the URL's host name).
        timeout: seconds for one command, waiting for a connection included; also for each
            step of connecting and for :meth:`close`.
        poolsize: connections kept open.
        tls_ca_file: PEM file of the CA certificate(s) to trust for ``rediss://`` (a private
            CA); ``None`` trusts the system's CAs.

    Raises:
        ConfigError: invalid URL, timeout <= 0, poolsize < 1, or an unreadable CA file.
    """

    name = "redis"
    #: Seconds a process may use a cache generation it read before reading it again
    #: (:class:`~.resilient.ResponseCache`): another process's invalidation is seen within it.
    generation_max_age = 1.0

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 1.0,
        poolsize: int = 4,
        tls_ca_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self.address = parse_redis_url(url)
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ConfigError(f"the Redis timeout must be > 0 seconds, got {timeout!r}")
        if poolsize < 1:
            raise ConfigError(f"the Redis pool size must be >= 1, got {poolsize!r}")
        self.timeout = float(timeout)
        self.poolsize = int(poolsize)
        self._trust_root = _load_ca_file(tls_ca_file) if tls_ca_file else None
        self._client: RedisClient | None = None
        #: lookups waiting to be sent at the next reactor turn (see :meth:`get`)
        self._reads: list[tuple[str, Waiter[bytes | None]]] = []
        self._batches: set[Deferred[None]] = set()  # batches in flight (kept referenced)

    def describe(self) -> str:
        """Return the server's URL without the password."""
        return self.address.describe()

    def __repr__(self) -> str:
        return f"RedisCacheBackend({self.describe()!r})"

    async def open(self) -> None:
        """Start the connection pool, wait for a first connection and check that Redis answers
        PING.

        Bounded: the first connection attempt takes at most one ``timeout`` per step (TCP
        connect, TLS handshake, AUTH, SELECT), PING one more. When Redis cannot be used the
        pool is kept: it keeps trying to connect in the background, so later commands work as
        soon as Redis is up; a later call only checks PING.

        Raises:
            CacheError: a :class:`~.redis_client.RedisFailure` saying why (unreachable, TLS
                handshake, refused login, not a Redis server, no reply in time).
        """
        if self._client is None:
            self._client = RedisClient(
                self.address,
                timeout=self.timeout,
                poolsize=self.poolsize,
                trust_root=self._trust_root,
            )
            await self._client.connect()
        await self._command("PING")

    async def close(self) -> None:
        """Close every connection and stop reconnecting, within ``timeout`` seconds (what does
        not close in time is aborted). Never raises."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def get(self, key: str) -> bytes | None:
        """Return the value of *key*, or ``None``.

        The lookups issued in one event-loop turn (a warm crawl's items asking at once) are
        sent together, as one ``MGET`` of up to :data:`MGET_MAX_KEYS` keys, when there are
        several (one round trip and one reply to parse instead of one per key); a lone lookup
        is a ``GET``. Each batch is bounded by ``timeout`` as a command is, and when it fails
        every lookup in it fails with its reason (``MGET failed: ...``). A key holding a value
        that is not a string reads as absent in an ``MGET`` (``GET`` would answer
        ``WRONGTYPE``): nothing but the cache writes under its keys.

        Raises:
            CacheError: Redis unreachable, timed out, or answered with an error.
        """
        if self._client is None:
            raise CacheError("the Redis backend is not open")
        # The reactor's timer, and a Future only where asyncio runs: any reactor will do.
        from twisted.internet import reactor as _reactor

        waiter: Waiter[bytes | None] = new_waiter()
        if not self._reads:
            reactor: Any = _reactor  # typed loosely: zope interfaces confuse mypy
            reactor.callLater(0, self._send_reads)
        self._reads.append((key, waiter))
        return await waiter

    def _send_reads(self) -> None:
        """Send the lookups gathered in this reactor turn: GET for one, MGET for more."""
        reads, self._reads = self._reads, []
        for start in range(0, len(reads), MGET_MAX_KEYS):
            batch = reads[start : start + MGET_MAX_KEYS]
            sent: Deferred[None] = deferred_from_coro(self._read_batch(batch))
            self._batches.add(sent)
            sent.addBoth(self._batch_done, sent)

    def _batch_done(self, result: Any, sent: Deferred[None]) -> None:
        self._batches.discard(sent)
        # A failed batch has failed each of its lookups already; nothing is left to report.
        return None

    async def _read_batch(self, batch: list[tuple[str, Waiter[bytes | None]]]) -> None:
        try:
            if len(batch) == 1:
                values = [await self._command("GET", batch[0][0])]
                command = "GET"
            else:
                reply = await self._command("MGET", *(key for key, _ in batch))
                command = "MGET"
                if not isinstance(reply, list) or len(reply) != len(batch):
                    raise CacheError(f"MGET returned {type(reply).__name__}, expected a list")
                values = reply
        except (asyncio.CancelledError, TwistedCancelledError):
            for _, waiter in batch:  # the batch itself was cancelled: so are its lookups
                waiter.cancel()
            raise
        except Exception as exc:
            if len(batch) == 1:
                if not settled(batch[0][1]):
                    fail(batch[0][1], exc)
                return
            problem = getattr(exc, "problem", None)
            for _, waiter in batch:
                if not settled(waiter):
                    # One exception per lookup: each is raised in its own task.
                    failure = (
                        RedisFailure(problem, str(exc))
                        if isinstance(exc, RedisFailure) and problem is not None
                        else CacheError(str(exc))
                    )
                    fail(waiter, failure)
            return
        for (_, waiter), value in zip(batch, values, strict=True):
            if settled(waiter):  # its lookup was cancelled (the item ended)
                continue
            if value is None or isinstance(value, bytes):
                settle(waiter, value)
            else:
                fail(
                    waiter,
                    CacheError(f"{command} returned {type(value).__name__}, expected bytes"),
                )

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store *value* for *ttl* seconds (``PX``, rounded up to whole milliseconds).

        Raises:
            CacheError: Redis unreachable, timed out, or answered with an error.
        """
        await self._command("SET", key, value, "PX", str(max(1, math.ceil(ttl * 1000))))

    async def delete(self, key: str) -> None:
        """Delete *key*.

        Raises:
            CacheError: Redis unreachable, timed out, or answered with an error.
        """
        await self._command("DEL", key)

    async def counter(self, name: str, field: str) -> int:
        """The counter *field* of the counters *name* (a HASH that never expires), 0 if absent.

        Raises:
            CacheError: Redis unreachable, timed out, or answered with an error.
        """
        value = await self._command("HGET", name, field)
        return 0 if value is None else int(value)

    async def add(self, name: str, increments: Mapping[str, int]) -> dict[str, int]:
        """Add each increment to its counter of *name* (``HINCRBY``); return the new values.

        Raises:
            CacheError: Redis unreachable, timed out, or answered with an error.
        """
        result = {}
        for field, increment in increments.items():
            result[field] = int(await self._command("HINCRBY", name, field, str(int(increment))))
        return result

    async def counters(self, name: str) -> dict[str, int]:
        """Every counter of *name*.

        Raises:
            CacheError: Redis unreachable, timed out, or answered with an error.
        """
        reply = await self._command("HGETALL", name)
        if isinstance(reply, dict):
            pairs = list(reply.items())
        else:
            values = list(reply or ())
            pairs = list(zip(values[::2], values[1::2], strict=True))
        return {_text(field): int(value) for field, value in pairs}

    async def scan(self, prefix: str) -> list[str]:
        """Every key starting with *prefix* (``SCAN`` in steps of 1000: O(keys), for admin
        statistics only, never on a lookup's path).

        Raises:
            CacheError: Redis unreachable, timed out, or answered with an error.
        """
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + "*"
        keys: list[str] = []
        cursor = "0"
        while True:
            cursor_value, batch = await self._command(
                "SCAN", cursor, "MATCH", pattern, "COUNT", "1000"
            )
            keys.extend(_text(key) for key in batch)
            cursor = _text(cursor_value)
            if cursor == "0":
                return keys

    async def _command(self, command: str, *args: str | bytes) -> Any:
        if self._client is None:
            raise CacheError("the Redis backend is not open")
        return await self._client.execute(command, *args)
