"""The pending waits of one provider, so they can all be cut short at once.

Calls to a provider wait in two ways: for their turn at the :class:`~scrapy_apigw.pacer.Pacer`
(token bucket, pause, window quota) and before a retry (backoff or Retry-After). When the
provider becomes unavailable (it keeps rate limiting) or the crawl stops, waiting on is
pointless: :meth:`Waits.fail_all` makes every pending wait raise at once, and leaves no timer
behind. A waiter that is cancelled (its item's deadline) gives its place up the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from scrapy_apigw.deferreds import maybe_deferred_to_future

__all__ = ["Waits"]


class Waits:
    """Registry of the Deferreds a provider's callers are waiting on.

    Args:
        reactor: the ``IReactorTime`` arming sleep timers (default: the running reactor; tests
            pass ``twisted.internet.task.Clock``).
    """

    def __init__(self, reactor: Any = None) -> None:
        self._reactor = reactor
        self._pending: dict[Deferred[None], Any] = {}  # Deferred -> its timer, or None

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def sleeping(self) -> int:
        """Retries sleeping before they go back to the pacer (their backoff or Retry-After)."""
        return sum(timer is not None for timer in self._pending.values())

    async def wait(self, turn: Deferred[None]) -> None:
        """Wait for *turn* (e.g. a pacer turn) unless :meth:`fail_all` fails it first.

        Raises:
            Exception: the one :meth:`fail_all` was given.
        """
        if turn.called:
            await maybe_deferred_to_future(turn)
            return
        self._pending.setdefault(turn, None)
        try:
            await maybe_deferred_to_future(turn)
        finally:
            self._pending.pop(turn, None)

    async def sleep(self, seconds: float) -> None:
        """Sleep *seconds* unless :meth:`fail_all` cuts it short (the timer is then cancelled).

        Raises:
            Exception: the one :meth:`fail_all` was given.
        """
        if self._reactor is None:
            from twisted.internet import reactor

            self._reactor = reactor

        def cancel(_: Deferred[None]) -> None:
            if timer.active():
                timer.cancel()

        slept: Deferred[None] = Deferred(cancel)
        timer = self._reactor.callLater(max(0.0, seconds), self._wake, slept)
        self._pending[slept] = timer
        await self.wait(slept)

    def fail_all(self, error: Callable[[], Exception]) -> int:
        """Make every pending wait raise ``error()`` now; return how many there were."""
        pending, self._pending = self._pending, {}
        failed = 0
        for turn, timer in pending.items():
            if timer is not None and timer.active():
                timer.cancel()
            if not turn.called:
                turn.errback(Failure(error()))
                failed += 1
        return failed

    def _wake(self, slept: Deferred[None]) -> None:
        self._pending.pop(slept, None)
        if not slept.called:
            slept.callback(None)
