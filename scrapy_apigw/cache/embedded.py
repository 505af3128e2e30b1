"""The embedded cache backend: an SQLite file, no server, kept between runs.

SQLite calls block, so they run on a dedicated one-thread pool (not the reactor's shared pool,
which DNS lookups and other components use): one thread means one connection used by one thread
at a time, and operations run in the order they were issued. The reactor is imported lazily.

Except the quick reads: a lookup issued while no write or delete is pending reads at once on
the calling (reactor) thread, through a second, read-only connection that never waits for a
lock. A warm crawl's lookups are nearly all such reads; the hop to the worker thread and back
(two thread wake-ups and a reactor turn) cost several times the read itself (a primary-key
lookup in SQLite's page cache: microseconds). The order stays the issued one: a lookup issued
after a pending write goes through the worker, behind that write; a read that finds the file
locked (WAL readers are blocked only by another connection's recovery or checkpoint reset)
also goes to the worker, which waits up to *busy_timeout*.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from scrapy.exceptions import NotConfigured
from scrapy.utils.project import data_path

from scrapy_apigw.cache.base import CacheError
from scrapy_apigw.cache.sqlite_thread import SqliteThread

__all__ = ["EmbeddedCacheBackend", "default_embedded_path"]

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS apigw_cache (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS apigw_cache_expires_at ON apigw_cache (expires_at);
CREATE TABLE IF NOT EXISTS apigw_counters (
    name TEXT NOT NULL,
    field TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (name, field)
) WITHOUT ROWID;
"""


def default_embedded_path(environ: Mapping[str, str] = os.environ) -> str:
    """Return where the embedded cache lives when ``APIGW_CACHE_PATH`` is not set.

    - In a Scrapy project (a ``scrapy.cfg`` above the working directory, as for ``scrapy
      crawl``): ``<project>/.scrapy/apigw/cache.sqlite3``, Scrapy's data dir
      (:func:`scrapy.utils.project.data_path`, where ``HTTPCACHE_DIR`` goes too; a
      ``[datadir]`` section of ``scrapy.cfg`` moves it). Outside any project:
      ``./.scrapy/apigw/cache.sqlite3``.
    - Where Scrapy's data dir cannot be found or made: a Scrapyd job (``SCRAPY_SETTINGS_MODULE``
      is set but the job's working directory has no ``scrapy.cfg``, so ``data_path()`` raises
      ``NotConfigured``), or a read-only project: the user's cache directory,
      ``$XDG_CACHE_HOME/scrapy-apigw/<project>/cache.sqlite3`` (``~/.cache`` when
      ``XDG_CACHE_HOME`` is unset or relative: XDG Base Directory spec), *project* being
      ``SCRAPY_PROJECT`` (Scrapyd sets it to the deployed project's name) or ``default``.
      All jobs of one project on one node share that file (SQLite WAL lets them).

    Scrapy's data dir is created here, as :func:`~scrapy.utils.project.data_path` does; the
    user cache directory is not (the backend creates it when it opens, and a failure there
    degrades the cache to misses instead of failing the crawl). Never raises.

    Args:
        environ: the environment to read (``os.environ``; injectable for tests).
    """
    try:
        return os.path.join(data_path("apigw", createdir=True), "cache.sqlite3")
    except (NotConfigured, OSError):
        pass
    cache_home = environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(cache_home):
        cache_home = os.path.join(os.path.expanduser("~"), ".cache")
    # A project name is one path component, whatever Scrapyd was given.
    project = re.sub(r"[^A-Za-z0-9_.-]", "_", environ.get("SCRAPY_PROJECT") or "default")
    return os.path.join(
        cache_home, "scrapy-apigw", project.lstrip(".") or "default", "cache.sqlite3"
    )


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
    #: Seconds a process may use a cache generation it read before reading it again: 1 s, as
    #: on Redis (reading it with every hit would be a second SQLite query per warm lookup).
    generation_max_age = 1.0

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
        self._thread = SqliteThread("apigw-cache-sqlite", "the embedded cache", self.path)
        self._db: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None  # used on the reactor thread only
        self._writes_pending = 0  # sets and deletes handed to the worker, not finished yet

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
        if self._thread.running:
            return
        self._thread.start()
        try:
            await self._run(self._open_db, self._clock())
        except CacheError:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the database and stop the worker thread."""
        if not self._thread.running:
            return
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()
        await self._thread.stop(self._close_db)

    async def get(self, key: str) -> bytes | None:
        """Return the value of *key* if present and not expired, else ``None``.

        Raises:
            CacheError: SQLite failed (disk error, lock timeout, not open).
        """
        now = self._clock()
        reader = self._reader
        if reader is not None and self._thread.running and not self._writes_pending:
            try:
                return self._read(reader, key, now)
            except sqlite3.OperationalError:
                pass  # locked: the worker thread waits for the lock, the reactor must not
            except sqlite3.Error as exc:
                raise CacheError(f"sqlite {self.path}: {type(exc).__name__}: {exc}") from exc
        return await self._run(self._get, key, now)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store *value* until now + *ttl* seconds.

        Raises:
            CacheError: SQLite failed (disk error, lock timeout, not open).
        """
        await self._write(self._set, key, value, self._clock() + ttl)

    async def delete(self, key: str) -> None:
        """Delete *key*.

        Raises:
            CacheError: SQLite failed (disk error, lock timeout, not open).
        """
        await self._write(self._delete, key)

    async def counter(self, name: str, field: str) -> int:
        """The counter *field* of the counters *name* (never expire), 0 if absent.

        Raises:
            CacheError: SQLite failed (disk error, lock timeout, not open).
        """
        reader = self._reader
        if reader is not None and self._thread.running and not self._writes_pending:
            try:
                return self._counter(reader, name, field)
            except sqlite3.OperationalError:
                pass  # locked: the worker waits for the lock
            except sqlite3.Error as exc:
                raise CacheError(f"sqlite {self.path}: {type(exc).__name__}: {exc}") from exc
        return await self._run(lambda: self._counter(self._conn(), name, field))

    async def add(self, name: str, increments: Mapping[str, int]) -> dict[str, int]:
        """Add each increment to its counter of *name* (one transaction); return the new
        values.

        Raises:
            CacheError: SQLite failed (disk error, lock timeout, not open).
        """
        self._writes_pending += 1
        try:
            return await self._run(self._add, name, dict(increments))
        finally:
            self._writes_pending -= 1

    async def counters(self, name: str) -> dict[str, int]:
        """Every counter of *name*.

        Raises:
            CacheError: SQLite failed (disk error, lock timeout, not open).
        """
        return await self._run(self._counters, name)

    async def scan(self, prefix: str) -> list[str]:
        """Every unexpired key starting with *prefix* (O(keys): admin statistics only).

        Raises:
            CacheError: SQLite failed (disk error, lock timeout, not open).
        """
        return await self._run(self._scan, prefix, self._clock())

    async def _write(self, func: Callable[..., None], *args: Any) -> None:
        # While a write is pending, lookups queue behind it on the worker (issued order).
        self._writes_pending += 1
        try:
            await self._run(func, *args)
        finally:
            self._writes_pending -= 1

    async def _run(self, func: Callable[..., _T], *args: Any) -> _T:
        return await self._thread.run(func, *args)

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
            # The quick reads' connection (see the module docstring): never waits for a lock.
            reader = sqlite3.connect(
                self.path, timeout=0, isolation_level=None, check_same_thread=False
            )
        except BaseException:
            db.close()
            raise
        self._db = db
        self._reader = reader

    def _close_db(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()
        reader, self._reader = self._reader, None  # a failed open's: close() took the usual one
        if reader is not None:
            reader.close()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.ProgrammingError("database not open")
        return self._db

    def _get(self, key: str, now: float) -> bytes | None:
        return self._read(self._conn(), key, now)

    @staticmethod
    def _read(db: sqlite3.Connection, key: str, now: float) -> bytes | None:
        # Runs on either thread, each with its own connection.
        row = db.execute(
            "SELECT value FROM apigw_cache WHERE key = ? AND expires_at > ?", (key, now)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def _set(self, key: str, value: bytes, expires_at: float) -> None:
        self._conn().execute(
            "INSERT OR REPLACE INTO apigw_cache (key, value, expires_at) VALUES (?, ?, ?)",
            (key, sqlite3.Binary(value), expires_at),
        )

    @staticmethod
    def _counter(db: sqlite3.Connection, name: str, field: str) -> int:
        row = db.execute(
            "SELECT value FROM apigw_counters WHERE name = ? AND field = ?", (name, field)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def _add(self, name: str, increments: dict[str, int]) -> dict[str, int]:
        db = self._conn()
        result = {}
        db.execute("BEGIN IMMEDIATE")
        try:
            for field, increment in increments.items():
                db.execute(
                    "INSERT INTO apigw_counters (name, field, value) VALUES (?, ?, ?) "
                    "ON CONFLICT (name, field) DO UPDATE SET value = value + excluded.value",
                    (name, field, int(increment)),
                )
                result[field] = self._counter(db, name, field)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return result

    def _counters(self, name: str) -> dict[str, int]:
        rows = (
            self._conn()
            .execute("SELECT field, value FROM apigw_counters WHERE name = ?", (name,))
            .fetchall()
        )
        return {str(field): int(value) for field, value in rows}

    def _scan(self, prefix: str, now: float) -> list[str]:
        # A range on the primary key: the prefix's keys sort between it and its successor.
        rows = (
            self._conn()
            .execute(
                "SELECT key FROM apigw_cache WHERE key >= ? AND key < ? AND expires_at > ?",
                (prefix, prefix + "\U0010ffff", now),
            )
            .fetchall()
        )
        return [str(row[0]) for row in rows]

    def _delete(self, key: str) -> None:
        self._conn().execute("DELETE FROM apigw_cache WHERE key = ?", (key,))
