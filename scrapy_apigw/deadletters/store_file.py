"""The local dead-letter store: an SQLite file under ``.scrapy/`` (no server needed).

Why SQLite rather than JSON Lines: a record is rewritten on every attempt (its attempt count
grows) and deleted when a replay succeeds. In SQLite both are one short transaction on the
record's primary key; a JSON Lines file would have to be rewritten whole (or grow forever and be
compacted) and could not be shared safely by two Scrapyd jobs writing at once, which SQLite's WAL
mode allows (a writer waits up to *busy_timeout* for another's lock). Reads for a replay go in
key order, a page at a time, so a store of any size is read in bounded memory.

SQLite calls block: they run on a dedicated one-thread pool, in the order issued (as the
embedded cache's do). The reactor is imported lazily.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

from scrapy_apigw.cache.base import CacheError
from scrapy_apigw.cache.sqlite_thread import SqliteThread
from scrapy_apigw.deadletters.record import DeadLetter

__all__ = ["FileDeadLetterStore", "default_deadletter_path"]

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS apigw_deadletters (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    last_attempt REAL NOT NULL,
    first_attempt REAL NOT NULL,
    record TEXT NOT NULL
) WITHOUT ROWID;
"""

_UPSERT = """
INSERT INTO apigw_deadletters (key, status, attempts, last_attempt, first_attempt, record)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    status = excluded.status,
    attempts = apigw_deadletters.attempts + excluded.attempts,
    last_attempt = excluded.last_attempt,
    record = excluded.record
RETURNING attempts, first_attempt
"""


def default_deadletter_path() -> str:
    """Where dead letters go when ``APIGW_DEADLETTER_PATH`` is not set: next to the embedded
    cache (:func:`~scrapy_apigw.cache.embedded.default_embedded_path`), as
    ``deadletters.sqlite3``. In a project: ``<project>/.scrapy/apigw/deadletters.sqlite3``; in a
    Scrapyd job (no ``scrapy.cfg`` in its working directory):
    ``$XDG_CACHE_HOME/scrapy-apigw/<project>/deadletters.sqlite3``. Never raises."""
    from scrapy_apigw.cache.embedded import default_embedded_path

    return os.path.join(os.path.dirname(default_embedded_path()), "deadletters.sqlite3")


class FileDeadLetterStore:
    """Dead letters in an SQLite file, one row per track key.

    Args:
        path: the database file; its directory is created when the store opens.
        busy_timeout: seconds to wait for another process's write lock.
    """

    name = "file"

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._thread = SqliteThread("apigw-deadletters-sqlite", "the dead-letter file", self.path)
        self._db: sqlite3.Connection | None = None

    def describe(self) -> str:
        """``sqlite:<path>``."""
        return f"sqlite:{self.path}"

    async def open(self) -> None:
        """Start the worker thread and open (or create) the file. No-op when open.

        Raises:
            CacheError: the file cannot be created or is not an SQLite database.
        """
        if self._thread.running:
            return
        self._thread.start()
        try:
            await self._run(self._open_db)
        except CacheError:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the file and stop the worker thread. Never raises."""
        with contextlib.suppress(Exception):
            await self._thread.stop(self._close_db)

    async def put(self, record: DeadLetter) -> DeadLetter:
        """Store *record*, merged with the one of the same key: attempts added up (a new
        record brings ``record.attempts``, normally 1), first attempt kept; return the stored
        record.

        Raises:
            CacheError: SQLite failed (disk error, lock timeout, not open).
        """
        attempts, first = await self._run(self._put, record)
        record.attempts, record.first_attempt = attempts, first
        return record

    async def remove(self, key: str) -> bool:
        """Delete the record of *key*; True if there was one.

        Raises:
            CacheError: SQLite failed.
        """
        return await self._run(self._remove, key)

    async def get(self, key: str) -> DeadLetter | None:
        """The record of *key*, or None.

        Raises:
            CacheError: SQLite failed.
        """
        rows = await self._run(self._select, "WHERE key = ?", (key,))
        return rows[0] if rows else None

    async def count(self) -> int:
        """How many records the store holds.

        Raises:
            CacheError: SQLite failed.
        """
        return await self._run(self._count)

    async def track_keys(self) -> list[str]:
        """The track keys of every record.

        Raises:
            CacheError: SQLite failed.
        """
        return await self._run(self._keys)

    async def scan(self, page: int = 500) -> AsyncIterator[DeadLetter]:
        """Every record, in key order, read *page* at a time (bounded memory). A record
        rewritten during the scan (a replay that failed again) keeps its key and is not seen
        twice.

        Raises:
            CacheError: SQLite failed.
        """
        after = ""
        while True:
            rows = await self._run(
                self._select, "WHERE key > ? ORDER BY key LIMIT ?", (after, int(page))
            )
            for record in rows:
                yield record
            if len(rows) < page:
                return
            after = rows[-1].key

    async def _run(self, func: Callable[..., _T], *args: Any) -> _T:
        return await self._thread.run(func, *args)

    # The methods below run in the worker thread only.

    def _open_db(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
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

    def _put(self, record: DeadLetter) -> tuple[int, float]:
        row = (
            self._conn()
            .execute(
                _UPSERT,
                (
                    record.key,
                    record.status,
                    record.attempts,
                    record.last_attempt,
                    record.first_attempt,
                    record.to_json(),
                ),
            )
            .fetchone()
        )
        return int(row[0]), float(row[1])

    def _remove(self, key: str) -> bool:
        db = self._conn()
        # A completed item usually has no record: look before taking the write lock.
        if db.execute("SELECT 1 FROM apigw_deadletters WHERE key = ?", (key,)).fetchone() is None:
            return False
        return db.execute("DELETE FROM apigw_deadletters WHERE key = ?", (key,)).rowcount > 0

    def _keys(self) -> list[str]:
        return [row[0] for row in self._conn().execute("SELECT key FROM apigw_deadletters")]

    def _count(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM apigw_deadletters").fetchone()[0])

    def _select(self, where: str, params: tuple[Any, ...]) -> list[DeadLetter]:
        rows = (
            self._conn()
            .execute(
                "SELECT attempts, last_attempt, first_attempt, record FROM apigw_deadletters "
                + where,
                params,
            )
            .fetchall()
        )
        records = []
        for attempts, last, first, text in rows:
            record = DeadLetter.from_json(text)
            record.attempts, record.last_attempt, record.first_attempt = (
                int(attempts),
                float(last),
                float(first),
            )
            records.append(record)
        return records
