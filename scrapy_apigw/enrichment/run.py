"""One item's enrichment in flight, which can be ended early: by its deadline or by a stop.

The waterfall writes each provider's result into :attr:`ItemRun.results` as it finishes. When
the run is ended (``APIGW_ITEM_TIMEOUT`` passed, or the graceful stop's grace is over) the
results so far are kept, the waterfall's task is cancelled (its pending token wait, retry sleep
or HTTP exchange with it: the treq request is aborted and its error consumed), and the item
moves on at once: the providers it did not finish are ``failed`` with the run's reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.python.failure import Failure

from scrapy_apigw.deferreds import deferred_from_coro, maybe_deferred_to_future
from scrapy_apigw.exceptions import Interrupted
from scrapy_apigw.providers.base import ProviderResult

logger = logging.getLogger(__name__)

__all__ = ["INTERRUPTED", "ItemRun", "item_timeout_reason"]

#: Reason of the providers an item did not finish because the crawl is stopping.
INTERRUPTED = "interrupted"


def item_timeout_reason(seconds: float) -> str:
    """Reason of the providers an item did not finish by its deadline, e.g. ``"item timeout
    (30 s)"``."""
    return f"item timeout ({seconds:g} s)"


class ItemRun:
    """The enrichment of one item: its results so far, and how to end it early.

    Args:
        reactor: the ``IReactorTime`` arming the deadline timers (default: the running reactor).
    """

    def __init__(self, reactor: Any = None) -> None:
        #: provider name -> result, in waterfall order, filled as providers finish
        self.results: dict[str, ProviderResult] = {}
        #: why the run was ended early; None while it runs or when it finished by itself
        self.reason: str | None = None
        self._reactor = reactor
        self._done: Deferred[None] = Deferred()
        self._task: Deferred[Any] | None = None
        self._timers: list[Any] = []
        self._settled: dict[str, ProviderResult] | None = None

    @property
    def ended(self) -> bool:
        """True once the run was ended early."""
        return self.reason is not None

    def check(self, provider: str) -> None:
        """Raise :class:`~scrapy_apigw.exceptions.Interrupted` (with the run's reason) if the
        run was ended: no further call or attempt is to be made for this item."""
        if self.reason is not None:
            raise Interrupted(provider, self.reason)

    async def run(self, work: Coroutine[Any, Any, Any]) -> dict[str, ProviderResult]:
        """Run *work* (the waterfall, filling :attr:`results`) until it finishes or the run is
        ended; return the results at that moment. Every timer of the run is gone after."""
        if self.ended:
            work.close()
            return dict(self.results)
        self._task = deferred_from_coro(work)
        self._task.addBoth(self._finished)
        try:
            await maybe_deferred_to_future(self._done)
        finally:
            self._cancel_timers()
        return dict(self._settled if self._settled is not None else self.results)

    def end_after(self, seconds: float, reason: str) -> None:
        """End the run with *reason* in *seconds* (an earlier deadline wins). No-op once done."""
        if self._done.called:
            return
        if self._reactor is None:
            from twisted.internet import reactor

            self._reactor = reactor
        self._timers.append(self._reactor.callLater(max(0.0, seconds), self.end, reason))

    def end(self, reason: str) -> None:
        """End the run now: keep the results so far, cancel the work. No-op once done."""
        if self._done.called or self.reason is not None:
            return
        self.reason = reason
        self._settled = dict(self.results)
        self._cancel_timers()
        if self._task is not None and not self._task.called:
            self._task.cancel()
        if not self._done.called:
            self._done.callback(None)

    def _finished(self, result: Any) -> None:
        if isinstance(result, Failure) and not result.check(CancelledError, asyncio.CancelledError):
            # The waterfall never raises; if it did, the item still moves on with its results.
            logger.error(
                "apigw: enrichment of an item failed",
                exc_info=result.value,
            )
        if not self._done.called:
            self._done.callback(None)

    def _cancel_timers(self) -> None:
        timers, self._timers = self._timers, []
        for timer in timers:
            if timer.active():
                timer.cancel()
