"""A FIFO gate in front of one provider's token bucket and window quota.

Why not "reserve a token, then sleep until its time"? Because a sleeping waiter wakes when the
reactor gets to it: after a stall (a long callback, a GC pause) several waiters whose times have
passed wake together and send back to back, a burst the bucket never allowed. Here waiters queue
in order and a single timer releases them, taking each token at the moment of release, so a
stall can release at most the bucket's ``burst`` at once (measured at the provider, this is what
keeps MusicBrainz's 1 req/s average from answering 503).

The timer is armed for the instant the next token (or window place) is there; when it fires
late, the release passes that instant to the bucket as ``due``, so a bucket with a
``late_credit`` keeps (part of) the refill it could not hold while full, and a burst-1 provider
is not paced at ``1 / (interval + lateness)`` (docs/design.md, "Late timers"). How late the
releases were is counted (:attr:`Pacer.lateness`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, succeed

from scrapy_apigw.core.ratelimit import SlidingWindowLog, TokenBucket
from scrapy_apigw.deferreds import maybe_deferred_to_future


@dataclass
class Lateness:
    """How late a pacer's timer released its waiters (bucket clock, seconds).

    Attributes:
        releases: timer firings that released a waiter at or after the instant armed for.
        total: their lateness summed, seconds.
        worst: the largest, seconds.
    """

    releases: int = 0
    total: float = 0.0
    worst: float = 0.0

    def add(self, late: float) -> None:
        """Count one release *late* seconds after its instant (>= 0)."""
        self.releases += 1
        self.total += late
        self.worst = max(self.worst, late)


class Pacer:
    """Releases waiters one by one, in arrival order, as the bucket and window allow.

    Args:
        bucket: the provider's token bucket (its pauses hold the gate shut).
        window: the provider's sliding-window quota, if any.
        reactor: the ``IReactorTime`` that arms the release timer (default: the running
            reactor; tests pass ``twisted.internet.task.Clock`` and give the bucket its
            ``seconds``).
    """

    def __init__(
        self,
        bucket: TokenBucket,
        window: SlidingWindowLog | None = None,
        reactor: Any = None,
    ) -> None:
        self.bucket = bucket
        self.window = window
        self._reactor = reactor
        self._queue: deque[Deferred[None]] = deque()
        self._timer: Any = None
        self._due: float | None = None  # the bucket-clock instant the timer is armed for
        #: how late the timer released waiters (the stats ``apigw/<p>/pacer/late_*``)
        self.lateness = Lateness()

    async def wait(self) -> None:
        """Return when the caller may send one request (immediately if nobody is queued and a
        token is there). Cancelling the awaiting task gives its place up."""
        await maybe_deferred_to_future(self.turn())

    def turn(self) -> Deferred[None]:
        """A Deferred that fires when the caller may send one request: already fired if
        nobody is queued and a token is there. Cancelling it gives the place up."""
        if not self._queue and self._take():
            return succeed(None)
        turn: Deferred[None] = Deferred()
        self._queue.append(turn)
        self._schedule()
        return turn

    @property
    def queued(self) -> int:
        """Waiters queued for their turn now (cancelled ones not counted): the progress line's
        "calls waiting at the pacer". O(queue length)."""
        return sum(not turn.called for turn in self._queue)

    @property
    def waiting(self) -> bool:
        """True while a waiter is queued for its turn (cancelled ones not counted)."""
        return any(not turn.called for turn in self._queue)

    def drop_cancelled(self) -> None:
        """Forget waiters whose turn was cancelled or failed; disarm the timer if none is left
        (after a pause of hours, it would otherwise stay armed that long)."""
        self._queue = deque(turn for turn in self._queue if not turn.called)
        if not self._queue and self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None

    def wake(self) -> None:
        """Re-check the queue now (a pause was ended early, e.g. by an admin reset): release
        whoever may go and re-arm the timer for the rest."""
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None
        self._due = None  # not a timer: nothing was late
        if self._queue:
            self._release()

    def _delay(self) -> float:
        delay = self.bucket.time_until()
        if self.window is not None:
            delay = max(delay, self.window.time_until())
        return delay

    def _take(self, due: float | None = None) -> bool:
        if self._delay() > 0:
            return False
        taken = self.bucket.try_acquire(due=due)
        if taken and self.window is not None:
            self.window.reserve()
        return taken

    def _release(self) -> None:
        self._timer = None
        due, self._due = self._due, None  # only the first take of a firing is late
        while self._queue:
            if self._queue[0].called:  # its waiter was cancelled
                self._queue.popleft()
                continue
            if not self._take(due):
                break
            if due is not None:
                self.lateness.add(max(0.0, self.bucket.now() - due))
                due = None
            self._queue.popleft().callback(None)
        self._schedule()

    def _schedule(self) -> None:
        if self._timer is not None or not self._queue:
            return
        if self._reactor is None:
            from twisted.internet import reactor

            self._reactor = reactor
        # A pause set after this timer was armed makes it fire early; _release then re-arms.
        delay = self._delay()
        self._due = self.bucket.now() + delay
        self._timer = self._reactor.callLater(delay, self._release)
