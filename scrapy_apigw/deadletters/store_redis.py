"""The shared dead-letter store: a Redis stream, when ``APIGW_REDIS_URL`` is set.

Keys (namespaced like the cache, ``APIGW_CACHE_NAMESPACE``; no credential in any of them):

- ``<ns>:deadletters``: the stream; one entry per track key with the fields ``key``,
  ``status``, ``attempts``, ``last_attempt``, ``first_attempt`` and ``record`` (the
  :class:`~scrapy_apigw.deadletters.record.DeadLetter` as JSON). Every process of a fleet
  appends to it; ``XRANGE``/``XLEN`` show it (``redis-cli XRANGE apigw:deadletters - +``).
- ``<ns>:deadletters:index``: hash, track key -> its entry's ID;
- ``<ns>:deadletters:attempts`` and ``<ns>:deadletters:first``: hashes, track key -> attempt
  count and first attempt time.

A record rewritten (a new failed attempt) is a new entry (``XADD``) and the old one is deleted
(``XDEL``), in one Lua script, so the stream holds one entry per track and its order is the
order of last attempts. A replay that succeeds deletes the entry and the hash fields (another
script). The stream is never trimmed: a record leaves it only by succeeding.

The connection is a :class:`~scrapy_apigw.cache.redis_client.RedisClient` (every command
bounded in time); txredisapi and the reactor are imported lazily.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from scrapy_apigw.cache.base import CacheError
from scrapy_apigw.deadletters.record import DeadLetter

__all__ = ["RedisDeadLetterStore", "stream_keys"]

# KEYS: stream, index, attempts, first. ARGV: key, status, record JSON, last attempt,
# first attempt, attempts to add. Returns {attempts, first attempt}.
_PUT = """
local n = redis.call('HINCRBY', KEYS[3], ARGV[1], ARGV[6])
redis.call('HSETNX', KEYS[4], ARGV[1], ARGV[5])
local first = redis.call('HGET', KEYS[4], ARGV[1])
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old then redis.call('XDEL', KEYS[1], old) end
local id = redis.call('XADD', KEYS[1], '*', 'key', ARGV[1], 'status', ARGV[2],
    'attempts', tostring(n), 'last_attempt', ARGV[4], 'first_attempt', first, 'record', ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], id)
return {n, first}
"""

# KEYS: stream, index, attempts, first. ARGV: key. Returns 1 if a record was removed.
_REMOVE = """
local old = redis.call('HGET', KEYS[2], ARGV[1])
if not old then return 0 end
redis.call('XDEL', KEYS[1], old)
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1
"""


def stream_keys(namespace: str) -> tuple[str, str, str, str]:
    """The store's keys under *namespace*: stream, index, attempts, first (see the module
    docstring), e.g. ``("apigw:deadletters", "apigw:deadletters:index", ...)``."""
    stream = f"{namespace}:deadletters"
    return stream, f"{stream}:index", f"{stream}:attempts", f"{stream}:first"


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _entry(fields: Any) -> DeadLetter:
    values = list(fields)
    data = {_text(k): v for k, v in zip(values[::2], values[1::2], strict=True)}
    record = DeadLetter.from_json(data["record"])
    record.attempts = int(_text(data["attempts"]))
    record.last_attempt = float(_text(data["last_attempt"]))
    record.first_attempt = float(_text(data["first_attempt"]))
    return record


class RedisDeadLetterStore:
    """Dead letters in a Redis stream (see the module docstring).

    Args:
        url: ``redis://`` / ``rediss://`` URL (``APIGW_REDIS_URL``).
        namespace: key prefix (``APIGW_CACHE_NAMESPACE``).
        timeout: seconds per command, waiting for a connection included
            (``APIGW_CACHE_TIMEOUT``).

    Raises:
        ConfigError: an invalid URL.
    """

    name = "redis"

    def __init__(self, url: str, *, namespace: str = "apigw", timeout: float = 1.0) -> None:
        from scrapy_apigw.cache.redis import parse_redis_url

        self.address = parse_redis_url(url)
        self.keys = stream_keys(namespace)
        self.timeout = timeout
        self._client: Any = None

    def describe(self) -> str:
        """``<stream key> on <URL without password>``."""
        return f"stream {self.keys[0]} on {self.address.describe()}"

    async def open(self) -> None:
        """Start the connection pool (in the background: an unreachable Redis does not fail
        here; the writes then go to the fallback file). Never raises."""
        if self._client is not None:
            return
        from scrapy_apigw.cache.redis_client import RedisClient

        self._client = RedisClient(self.address, timeout=self.timeout, poolsize=1)
        self._client.start()

    async def close(self) -> None:
        """Close the connection within ``timeout``. Never raises."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def put(self, record: DeadLetter) -> DeadLetter:
        """Store *record*, merged with the one of the same key (attempts added up, first
        attempt kept); return the stored record.

        Raises:
            CacheError: Redis unreachable, timed out or answered an error.
        """
        reply = await self._command(
            "EVAL",
            _PUT,
            "4",
            *self.keys,
            record.key,
            record.status,
            record.to_json(),
            repr(record.last_attempt),
            repr(record.first_attempt),
            str(record.attempts),
        )
        record.attempts = int(reply[0])
        record.first_attempt = float(_text(reply[1]))
        return record

    async def remove(self, key: str) -> bool:
        """Delete the record of *key*; True if there was one.

        Raises:
            CacheError: Redis unreachable, timed out or answered an error.
        """
        return int(await self._command("EVAL", _REMOVE, "4", *self.keys, key)) == 1

    async def get(self, key: str) -> DeadLetter | None:
        """The record of *key*, or None.

        Raises:
            CacheError: Redis unreachable, timed out or answered an error.
        """
        entry_id = await self._command("HGET", self.keys[1], key)
        if entry_id is None:
            return None
        entries = await self._command("XRANGE", self.keys[0], entry_id, entry_id)
        return _entry(entries[0][1]) if entries else None

    async def count(self) -> int:
        """How many records the stream holds (``XLEN``).

        Raises:
            CacheError: Redis unreachable, timed out or answered an error.
        """
        return int(await self._command("XLEN", self.keys[0]))

    async def track_keys(self) -> list[str]:
        """The track keys of every record (``HKEYS`` of the index).

        Raises:
            CacheError: Redis unreachable, timed out or answered an error.
        """
        return [_text(key) for key in await self._command("HKEYS", self.keys[1])]

    async def scan(self, page: int = 500) -> AsyncIterator[DeadLetter]:
        """Every record in the stream when the scan starts, oldest last attempt first, *page*
        entries at a time (bounded memory). Entries appended during the scan (records
        rewritten by a replay that failed again) are not seen: the scan stops at the last ID
        present when it started.

        Raises:
            CacheError: Redis unreachable, timed out or answered an error.
        """
        last = await self._command("XREVRANGE", self.keys[0], "+", "-", "COUNT", "1")
        if not last:
            return
        end = _text(last[0][0])
        start = "-"
        while True:
            entries = await self._command(
                "XRANGE", self.keys[0], start, end, "COUNT", str(int(page))
            )
            for entry_id, fields in entries:
                yield _entry(fields)
                start = "(" + _text(entry_id)
            if len(entries) < page:
                return

    async def _command(self, command: str, *args: str | bytes) -> Any:
        if self._client is None:
            raise CacheError("the Redis dead-letter store is not open")
        return await self._client.execute(command, *args)
