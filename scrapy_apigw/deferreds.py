"""Deferreds and coroutines, one to the other, at the cost of one check.

Scrapy's :func:`scrapy.utils.defer.maybe_deferred_to_future` and
:func:`~scrapy.utils.defer.deferred_from_coro` ask :func:`scrapy.utils.asyncio.is_asyncio_available`
on every call, and ``deferred_to_future`` asks it again: in a warm crawl, where each item makes
a dozen of these conversions, the checks alone were about 4 % of the time (py-spy, 2026-12-03).
These two do the same with one ``asyncio.get_running_loop()``: a running asyncio loop is what
``is_asyncio_available`` checks first, and what makes it answer True. Without one (another
reactor, or called outside the loop) they hand over to Scrapy's, so the contract is Scrapy's in
every case.

Where no Deferred is needed at all, :func:`new_waiter` and :func:`start_task` make the asyncio
object itself (a Future, a Task) when asyncio runs, and a Deferred under another reactor: a
coroutine awaits either as is, with no conversion (:data:`Waiter`).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar, cast

from scrapy.utils import defer as scrapy_defer
from twisted.internet.defer import Deferred

__all__ = [
    "Waiter",
    "deferred_from_coro",
    "fail",
    "maybe_deferred_to_future",
    "new_waiter",
    "settle",
    "settled",
    "start_task",
]

_T = TypeVar("_T")


def maybe_deferred_to_future(d: Deferred[_T]) -> Deferred[_T] | asyncio.Future[_T]:
    """*d* as something a Scrapy coroutine can await: an :class:`asyncio.Future` on the running
    asyncio loop, else (another reactor) *d* itself, as
    :func:`scrapy.utils.defer.maybe_deferred_to_future` returns."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return scrapy_defer.maybe_deferred_to_future(d)
    return d.asFuture(loop)


def deferred_from_coro(o: Awaitable[_T]) -> Deferred[_T]:
    """A Deferred of the coroutine (or other awaitable) *o*: a task of the running asyncio
    loop wrapped in a Deferred, else (another reactor) as
    :func:`scrapy.utils.defer.deferred_from_coro` makes it. A Deferred is returned as is."""
    if isinstance(o, Deferred):
        return o
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return cast("Deferred[_T]", scrapy_defer.deferred_from_coro(o))
    if inspect.iscoroutine(o):
        return Deferred.fromFuture(loop.create_task(cast("Coroutine[Any, Any, _T]", o)))
    return Deferred.fromFuture(asyncio.ensure_future(o, loop=loop))


#: What :func:`new_waiter` makes: an asyncio Future on the running asyncio loop, else a Deferred.
#: Either is awaited as is from the coroutine that made it (a Future from an asyncio Task, a
#: Deferred from a coroutine Twisted runs), and settled with :func:`settle` / :func:`fail`.
Waiter = Deferred[_T] | asyncio.Future[_T]


def new_waiter() -> Waiter[Any]:
    """A result to be settled later, for a coroutine to await: a Future of the running asyncio
    loop (no Deferred and no Deferred-to-Future bridge on the way: a warm crawl awaits one per
    cache hit), else (another reactor) a Deferred."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return Deferred()
    return loop.create_future()


def settled(waiter: Waiter[Any]) -> bool:
    """True once *waiter* has a result, an error, or was cancelled."""
    return waiter.called if isinstance(waiter, Deferred) else waiter.done()


def settle(waiter: Waiter[_T], value: _T) -> None:
    """Give *waiter* its result (it must not be :func:`settled` yet)."""
    if isinstance(waiter, Deferred):
        waiter.callback(value)
    else:
        waiter.set_result(value)


def fail(waiter: Waiter[Any], error: BaseException) -> None:
    """Give *waiter* an error (it must not be :func:`settled` yet)."""
    if isinstance(waiter, Deferred):
        waiter.errback(error)
    else:
        waiter.set_exception(error)


def start_task(o: Awaitable[_T]) -> Waiter[_T]:
    """Run *o* (a coroutine, or another awaitable: a Deferred, a Future) concurrently: as a
    Task of the running asyncio loop, else (another reactor) as :func:`deferred_from_coro`
    makes it. The result is awaited as is by a coroutine of the same loop (a :class:`Waiter`)
    and cancelled with ``cancel()``; unlike :func:`deferred_from_coro`, no Deferred wraps the
    Task."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return deferred_from_coro(o)
    if inspect.iscoroutine(o):
        return loop.create_task(cast("Coroutine[Any, Any, _T]", o))
    if isinstance(o, Deferred):
        return o.asFuture(loop)
    return asyncio.ensure_future(o, loop=loop)
