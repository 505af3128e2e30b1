"""The micro-batcher: single-ID lookups of one kind collected into one batch call.

Spotify answers up to 100 audio features (``/audio-features?ids=``) or 50 tracks
(``/tracks?ids=``) in one call, and one MusicBrainz recording search ``isrc:(A OR B ...)`` answers
many ISRCs (PROVIDERS.md sections 1 and 2). A provider module declares a :class:`BatchRule` per
data type; the transport hands the cache misses of that data type to a :class:`Batcher`, which
collects them per group (same provider, data type, method, other parameters) until the batch is
full (``max_size`` lookups) or the window has passed since its first lookup, then sends the batch
once and gives each waiting lookup its own answer.

Each waiting lookup gets from :meth:`Batcher.submit`:

- an :class:`ApiAnswer` (``ok`` or ``not_found``: the batch answered for it);
- ``None``: the batch did not certainly answer for it (the batch endpoint refused, or the answer
  may have left it out): the caller looks it up on its own;
- or the batch's exception, the same for every lookup of the batch (the provider failed after
  the batch's retries).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.python.failure import Failure

from scrapy_apigw.deferreds import deferred_from_coro, maybe_deferred_to_future
from scrapy_apigw.providers.base import ApiAnswer, ApiCall

__all__ = ["BatchRule", "Batcher", "SendBatch"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchRule:
    """How single lookups of one data type are batched.

    Attributes:
        data_type: the single calls' data type (``"audio_features"``, ``"isrc"``...).
        max_size: most lookups in one batch (the provider's limit: Spotify 100 audio features,
            50 tracks).
        build: ``calls -> the one batch call`` answering them all (duplicate IDs sent once).
        split: ``(the batch's ok answer, calls) -> one entry per call, in order``: an
            ``ok``/``not_found`` :class:`ApiAnswer` shaped like the single call's own answer, or
            None when the batch answer does not certainly cover that call.
    """

    data_type: str
    max_size: int
    build: Callable[[Sequence[ApiCall]], ApiCall]
    split: Callable[[ApiAnswer, Sequence[ApiCall]], list[ApiAnswer | None]]

    def group(self, call: ApiCall) -> Hashable:
        """Calls batched together: same provider, data type, method, headers and parameters
        (e.g. Spotify's ``market``); only the ID in the path differs."""
        return (call.provider, call.data_type, call.method, call.headers, call.params)


#: ``(rule, calls) -> one entry per call`` (see :meth:`Batcher.submit`); raises the provider's
#: failure for the whole batch.
SendBatch = Callable[[BatchRule, list[ApiCall]], Awaitable[list[ApiAnswer | None]]]


@dataclass
class _Batch:
    rule: BatchRule
    calls: list[ApiCall] = field(default_factory=list)
    waiters: list[Deferred[ApiAnswer | None]] = field(default_factory=list)
    timer: Any = None


class Batcher:
    """Collects lookups per group and sends each group as one batch.

    Args:
        window: seconds a batch stays open after its first lookup (0: every lookup is sent at
            once, alone in its batch).
        send: sends one batch (the transport: one throttled, retried call) and splits its answer.
        reactor: ``IReactorTime`` of the window timers (default: the running reactor; tests pass
            ``twisted.internet.task.Clock``).
        in_flight: how many items are being enriched now (the pipeline's), or None. When every
            one of them waits in an open batch, no lookup can join any more: the open batches
            are sent on the next reactor turn instead of at the end of their window (a lone
            item does not wait for the window).
    """

    def __init__(
        self,
        window: float,
        send: SendBatch,
        reactor: Any = None,
        in_flight: Callable[[], int] | None = None,
    ) -> None:
        if window < 0:
            raise ValueError(f"window must be >= 0 seconds, got {window}")
        self.window = window
        self._send = send
        self._reactor = reactor
        self._in_flight = in_flight
        self._open: dict[Hashable, _Batch] = {}
        self._settle_call: Any = None

    @property
    def pending(self) -> int:
        """Lookups waiting in batches not sent yet."""
        return sum(len(b.calls) for b in self._open.values())

    async def submit(self, rule: BatchRule, call: ApiCall) -> ApiAnswer | None:
        """Add *call* to the open batch of its group and wait for that batch's answer.

        The batch is sent when it holds ``rule.max_size`` lookups, or when ``window`` seconds
        have passed since its first lookup.

        Returns:
            the batch's answer for *call*, or None: not covered, look it up alone.

        Raises:
            Exception: whatever sending the batch raised (``ProviderUnavailable``...), for every
                lookup of the batch.
        """
        key = rule.group(call)
        batch = self._open.get(key)
        if batch is None:
            batch = self._open[key] = _Batch(rule)
            if self.window > 0:
                batch.timer = self._clock().callLater(self.window, self._flush, key)
        waiter: Deferred[ApiAnswer | None] = Deferred()
        batch.calls.append(call)
        batch.waiters.append(waiter)
        if len(batch.calls) >= rule.max_size or self.window == 0:
            self._flush(key)
        else:
            self._settle_soon()
        return await maybe_deferred_to_future(waiter)

    def _settle_soon(self) -> None:
        """:meth:`settle` on the next reactor turn, not now: items that enter the pipeline in
        the same turn (a page's tracks, a spider's start items) and reach here without a reactor
        turn (a cache answering synchronously) join the batch instead of the first one being
        sent alone."""
        if self._settle_call is None or not self._settle_call.active():
            self._settle_call = self._clock().callLater(0, self.settle)

    def settle(self) -> int:
        """Send every open batch now if every item in flight waits in one (call it when an item
        leaves); return how many batches were sent."""
        if self._open and self._in_flight is not None and self.pending >= self._in_flight():
            return self.flush_all()
        return 0

    def flush_all(self) -> int:
        """Send every open batch now (e.g. when the crawl closes); return how many."""
        keys = list(self._open)
        for key in keys:
            self._flush(key)
        return len(keys)

    def _clock(self) -> Any:
        if self._reactor is None:
            from twisted.internet import reactor

            self._reactor = reactor
        return self._reactor

    def _flush(self, key: Hashable) -> None:
        batch = self._open.pop(key, None)
        if batch is None:
            return
        if batch.timer is not None and batch.timer.active():
            batch.timer.cancel()
        if not self._open and self._settle_call is not None and self._settle_call.active():
            self._settle_call.cancel()  # nothing left to settle: no timer left behind
        deferred_from_coro(self._deliver(batch))

    async def _deliver(self, batch: _Batch) -> None:
        try:
            answers = await self._send(batch.rule, batch.calls)
        except BaseException as exc:  # the batch failed: each of its lookups fails with it
            failure = Failure(exc if isinstance(exc, Exception) else CancelledError())
            for waiter in batch.waiters:
                if not waiter.called:  # a waiter whose item was cancelled is already called
                    waiter.errback(failure)
            if not isinstance(exc, Exception):
                raise  # a cancelled task stays cancelled; its lookups were told
            return
        for i, waiter in enumerate(batch.waiters):
            if not waiter.called:
                waiter.callback(answers[i] if i < len(answers) else None)
