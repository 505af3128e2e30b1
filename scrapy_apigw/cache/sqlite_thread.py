"""One worker thread for one SQLite file (the embedded cache, the dead-letter file).

SQLite connections belong to the thread that made them, and a file's writes are serialised
anyway: each store runs every statement on a single-thread Twisted ``ThreadPool`` of its own and
awaits the result on the reactor.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from scrapy_apigw.cache.base import CacheError
from scrapy_apigw.deferreds import maybe_deferred_to_future

__all__ = ["SqliteThread"]

_T = TypeVar("_T")


class SqliteThread:
    """The worker thread of one SQLite file.

    Args:
        name: the thread's name (``apigw-cache-sqlite``...).
        what: what the file is, for the "not open" error (``"the embedded cache"``).
        path: the file's path, for the errors of its statements.
    """

    def __init__(self, name: str, what: str, path: object) -> None:
        self.name, self.what, self.path = name, what, path
        self._pool: Any = None
        self._trigger: Any = None

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._pool is not None

    def start(self) -> None:
        """Start the thread (no-op when running)."""
        if self._pool is not None:
            return
        from twisted.internet import reactor as _reactor
        from twisted.python.threadpool import ThreadPool

        reactor: Any = _reactor  # Twisted's interface stubs confuse mypy here
        pool = ThreadPool(minthreads=1, maxthreads=1, name=self.name)
        pool.start()
        self._pool = pool
        # Like the reactor's own pool: never leave a thread behind that keeps the process alive.
        self._trigger = reactor.addSystemEventTrigger("during", "shutdown", pool.stop)

    async def run(self, func: Callable[..., _T], *args: Any) -> _T:
        """``func(*args)`` on the thread.

        Raises:
            CacheError: not running, or an ``sqlite3.Error`` / ``OSError`` of *func* (naming
                the path).
        """
        if self._pool is None:
            raise CacheError(f"{self.what} is not open")
        from twisted.internet import reactor, threads

        d = threads.deferToThreadPool(reactor, self._pool, func, *args)
        try:
            return await maybe_deferred_to_future(d)
        except (sqlite3.Error, OSError) as exc:
            raise CacheError(f"sqlite {self.path}: {type(exc).__name__}: {exc}") from exc

    async def stop(self, last: Callable[[], Any]) -> None:
        """Run *last* (closing the connection) on the thread, then stop it (no-op when not
        running). An exception of *last* is raised after the thread stopped."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        from twisted.internet import reactor as _reactor
        from twisted.internet import threads

        reactor: Any = _reactor
        try:
            await maybe_deferred_to_future(threads.deferToThreadPool(reactor, pool, last))
        finally:
            reactor.removeSystemEventTrigger(self._trigger)
            # Returns at once: the queue is empty and the thread is idle.
            pool.stop()
