"""Single-flight: identical lookups in flight at once make one call and share its outcome.

The idea of Go's ``golang.org/x/sync/singleflight`` (``Group.Do``), on Deferreds so that it works
under any Twisted reactor (asyncio or not): the first caller for a key starts the call, callers
that come while it is in flight wait for the same result, or the same exception.

The shared call runs on its own, detached from every caller: a caller that is cancelled (its
item's deadline, a stop) leaves without cancelling the call for the others. Only when the last
waiting caller has left is the call itself cancelled, as a caller alone would have cancelled it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from scrapy_apigw.deferreds import deferred_from_coro, maybe_deferred_to_future

__all__ = ["Flight", "SingleFlight"]

_T = TypeVar("_T")


class Flight(Generic[_T]):
    """One call in flight and the callers waiting for it.

    Attributes:
        key: what identifies the call (e.g. its cache key).
        tags: one entry per caller still waiting, in arrival order: what each caller passed as
            ``tag`` to :meth:`SingleFlight.share` (e.g. its item's run). The call may read it,
            e.g. to stop retrying once every waiting item has ended.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self.tags: list[Any] = []
        self._waiters: list[Deferred[_T]] = []
        self._call: Deferred[_T] | None = None

    def _join(self, tag: Any) -> Deferred[_T]:
        waiter: Deferred[_T] = Deferred(lambda d: self._leave(d))
        self._waiters.append(waiter)
        self.tags.append(tag)
        return waiter

    def _leave(self, waiter: Deferred[_T]) -> None:
        # The waiter's canceller: that caller goes; the call goes on for the others.
        index = self._waiters.index(waiter)
        del self._waiters[index]
        del self.tags[index]
        if not self._waiters and self._call is not None and not self._call.called:
            self._call.cancel()

    def _settle(self, result: _T | Failure) -> None:
        waiters, self._waiters, self.tags = self._waiters, [], []
        for waiter in waiters:
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)


class SingleFlight(Generic[_T]):
    """Shares one call among the identical calls made while it is in flight.

    Once a call has finished, its key is free again: a later caller starts a new call (by then
    the answer is normally in the cache).
    """

    def __init__(self) -> None:
        self._flights: dict[str, Flight[_T]] = {}

    def in_flight(self, key: str) -> bool:
        """True while a call for *key* is running."""
        return key in self._flights

    async def share(
        self,
        key: str,
        start: Callable[[Flight[_T]], Coroutine[Any, Any, _T]],
        tag: Any = None,
    ) -> tuple[_T, bool]:
        """Return the result of the call for *key*, starting it with ``start(flight)`` unless
        one is already in flight.

        Args:
            key: identifies the call; identical calls have equal keys.
            start: makes the call; given the :class:`Flight` (whose ``tags`` say who waits).
            tag: anything identifying this caller, listed in ``flight.tags`` while it waits.

        Returns:
            ``(result, joined)``: *joined* is True when this caller joined a call already in
            flight (a call saved).

        Raises:
            Whatever the shared call raised (the same exception for every caller), or the
            cancellation of this caller.
        """
        waiter, joined = self.join(key, start, tag)
        return await maybe_deferred_to_future(waiter), joined

    def join(
        self,
        key: str,
        start: Callable[[Flight[_T]], Coroutine[Any, Any, _T]],
        tag: Any = None,
    ) -> tuple[Deferred[_T], bool]:
        """:meth:`share` without waiting: the call for *key* is in flight when this returns
        (started now unless it already was), and ``(waiter, joined)`` says how it ends: a
        Deferred firing with its result or failure (cancelling it leaves the call, as a
        cancelled caller of :meth:`share` does) and whether a call was already in flight."""
        flight = self._flights.get(key)
        joined = flight is not None
        if flight is None:
            flight = self._flights[key] = Flight(key)
            waiter = flight._join(tag)
            call: Deferred[_T] = deferred_from_coro(start(flight))
            flight._call = call
            call.addBoth(self._finished, flight)
        else:
            waiter = flight._join(tag)
        return waiter, joined

    def _finished(self, result: _T | Failure, flight: Flight[_T]) -> None:
        # Free the key first: a caller resumed below that asks again starts a new call.
        if self._flights.get(flight.key) is flight:
            del self._flights[flight.key]
        flight._settle(result)
        # Returns None: the outcome went to the waiters (a failure no one waits for is dropped).
