"""The embedded cache backend: an SQLite file, no server, kept between runs.

SQLite calls block, so they run on a dedicated one-thread pool (not the reactor's shared pool,
which DNS lookups and other components use): one thread means one connection used by one thread
at a time, and operations run in the order they were issued. The reactor is imported lazily.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.project import data_path
from twisted.python.threadpool import ThreadPool

from scrapy_apigw.cache.base import CacheError

__all__ = ["EmbeddedCacheBackend", "default_embedded_path"]

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS apigw_cache (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS apigw_cache_expires_at ON apigw_cache (expires_at);
"""


def default_embedded_path() -> str:
    """Return ``<project data dir>/apigw/cache.sqlite3`` and create its directory.

    The data dir is Scrapy's ``.scrapy`` (:func:`scrapy.utils.project.data_path`), next to
    ``HTTPCACHE_DIR``'s default: inside a project it is the project's, elsewhere ``./.scrapy``.
    """
    return os.path.join(data_path("apigw", createdir=True), "cache.sqlite3")


class EmbeddedCacheBackend:
    """Cache entries in an SQLite file, with a wall-clock expiry time per row.

    Expired rows read as absent and are deleted when the backend opens. WAL journal mode lets
    several processes (Scrapyd jobs of one project) read while one writes; a writer waits up to
    *busy_timeout* seconds for another's lock.

    Args:
        path: the database file; its directory is created if missing.
        clock: wall-clock time in seconds since the epoch (``time.time``); injectable for tests.
            Wall time, not monotonic, because expiry times outlive the process.
        busy_timeout: seconds to wait for another connection's write lock.
    """

    name = "embedded"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 5.0,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._pool: ThreadPool | None = None
        self._trigger: Any = None
        self._db: sqlite3.Connection | None = None

    def describe(self) -> str:
        """Return ``sqlite:<path>``."""
        return f"sqlite:{self.path}"

    def __repr__(self) -> str:
        return f"EmbeddedCacheBackend({str(self.path)!r})"

    async def open(self) -> None:
        """Start the worker thread, open (or create) the database and purge expired rows.

        Raises:
            CacheError: the file cannot be created or is not an SQLite database.
        """
        if self._pool is not None:
            return
        from twisted.internet import reactor as _reactor

        reactor: Any = _reactor  # Twisted's interface stubs confuse mypy here
        pool = ThreadPool(minthreads=1, maxthreads=1, name="apigw-cache-sqlite")
        pool.start()
        self._pool = pool
        # Like the reactor's own pool: never leave a thread behind that keeps the process alive.
        self._trigger = reactor.addSystemEventTrigger("during", "shutdown", pool.stop)
        try:
            await self._run(self._open_db, self._clock())
        except CacheError:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the database and stop the worker thread."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        from twisted.internet import reactor as _reactor
        from twisted.internet import threads

        reactor: Any = _reactor
        try:
            await maybe_deferred_to_future(threads.deferToThreadPool(reactor, pool, self._close_db))
        finally:
            reactor.removeSystemEventTrigger(self._trigger)
            # Returns at once: the queue is empty and the thread is idle.
            pool.stop()

    async def get(self, key: str) -> bytes | None:
        """Return the value of *key* if present and not expired, else ``None``.

        Raises:
            CacheError: SQLite failed (disk error, lock timeout, not open).
        """
        return await self._run(self._get, key, self._clock())

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store *value* until now + *ttl* seconds.

        Raises:
            CacheError: SQLite failed (disk error, lock timeout, not open).
        """
        await self._run(self._set, key, value, self._clock() + ttl)

    async def delete(self, key: str) -> None:
        """Delete *key*.

        Raises:
            CacheError: SQLite failed (disk error, lock timeout, not open).
        """
        await self._run(self._delete, key)

    async def _run(self, func: Callable[..., _T], *args: Any) -> _T:
        if self._pool is None:
            raise CacheError("the embedded cache is not open")
        from twisted.internet import reactor, threads

        d = threads.deferToThreadPool(reactor, self._pool, func, *args)
        try:
            return await maybe_deferred_to_future(d)
        except (sqlite3.Error, OSError) as exc:
            raise CacheError(f"sqlite {self.path}: {type(exc).__name__}: {exc}") from exc

    # The methods below run in the worker thread only.

    def _open_db(self, now: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit, each statement is its own short transaction.
        db = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout,
            isolation_level=None,
            check_same_thread=False,  # one worker thread, but it is not guaranteed to be the same
        )
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # A cache can lose its last writes on power loss; it must not slow every write.
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            db.execute("DELETE FROM apigw_cache WHERE expires_at <= ?", (now,))
        except BaseException:
            db.close()
            raise
        self._db = db

    def _close_db(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.ProgrammingError("database not open")
        return self._db

    def _get(self, key: str, now: float) -> bytes | None:
        row = (
            self._conn()
            .execute("SELECT value FROM apigw_cache WHERE key = ? AND expires_at > ?", (key, now))
            .fetchone()
        )
        return None if row is None else bytes(row[0])

    def _set(self, key: str, value: bytes, expires_at: float) -> None:
        self._conn().execute(
            "INSERT OR REPLACE INTO apigw_cache (key, value, expires_at) VALUES (?, ?, ?)",
            (key, sqlite3.Binary(value), expires_at),
        )

    def _delete(self, key: str) -> None:
        self._conn().execute("DELETE FROM apigw_cache WHERE key = ?", (key,))
