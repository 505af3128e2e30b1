"""Server-side rate-limit models: how each provider decides a client is too fast.

Pure logic with the clock passed in (``now``, seconds of a monotonic clock), so tests can
assert exact numbers at exact instants. Every rate and window is given already scaled by the
sandbox's ``speed``.

- :class:`SlidingWindow`: at most *limit* admitted requests in any *window* seconds (a log of
  arrival times). Spotify's "rolling 30-second window" and Discogs' "moving 60-second window"
  (PROVIDERS.md sections 1 and 3).
- :class:`Gcra`: the generic cell rate algorithm, a token bucket without a timer: *rate*
  requests per second on average with a burst tolerance of *burst* back-to-back requests.
  MusicBrainz's "1 request/s on average per IP" and Last.fm's "5 requests per second averaged
  over 5 minutes" (sections 2 and 4).

Rejected requests are not counted (a client that backs off recovers as soon as the window or
the bucket allows it), except by a :class:`Gcra` built with ``count_refused=True``: MusicBrainz
counts every request, so a client that keeps sending too fast is refused everything until its
rate falls (section 2: "all requests from the IP get 503 until the rate drops back").
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

__all__ = ["Decision", "Gcra", "SlidingWindow", "retry_after_header"]


@dataclass(frozen=True)
class Decision:
    """The verdict on one request.

    Attributes:
        allowed: True when the request may be served.
        retry_after: seconds until a request would be allowed (0 when allowed).
        limit: requests allowed per window (sliding window) or the burst (GCRA).
        used: requests counted in the window after this decision (sliding window only).
    """

    allowed: bool
    retry_after: float = 0.0
    limit: int = 0
    used: int = 0

    @property
    def remaining(self) -> int:
        """Requests still allowed in the current window (never negative)."""
        return max(0, self.limit - self.used)


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` delta-seconds for a wait of *seconds*: rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))


class SlidingWindow:
    """A rolling window: at most ``limit`` admitted requests in any ``window`` seconds.

    The limit is given per call, so one window can serve requests with different quotas
    (Discogs: 60 per minute authenticated, 25 unauthenticated, one count per IP).

    Args:
        window: window length in seconds (> 0).
    """

    def __init__(self, window: float) -> None:
        if window <= 0:
            raise ValueError("window must be > 0 seconds")
        self.window = window
        self._arrivals: deque[float] = deque()

    def _prune(self, now: float) -> None:
        while self._arrivals and self._arrivals[0] <= now - self.window:
            self._arrivals.popleft()

    def used(self, now: float) -> int:
        """Admitted requests in the window ending at *now*."""
        self._prune(now)
        return len(self._arrivals)

    def peek(self, now: float, limit: int) -> Decision:
        """The state of the window at *now* without counting a request."""
        used = self.used(now)
        return Decision(allowed=used < limit, limit=limit, used=used)

    def acquire(self, now: float, limit: int) -> Decision:
        """Count a request arriving at *now* if fewer than *limit* are in the window."""
        self._prune(now)
        if len(self._arrivals) < limit:
            self._arrivals.append(now)
            return Decision(allowed=True, limit=limit, used=len(self._arrivals))
        # The request becomes possible when enough arrivals have left the window.
        excess = len(self._arrivals) - limit
        wait = self._arrivals[excess] + self.window - now
        return Decision(allowed=False, retry_after=wait, limit=limit, used=len(self._arrivals))

    def reset(self) -> None:
        """Forget every arrival."""
        self._arrivals.clear()


class Gcra:
    """Generic cell rate algorithm: ``rate`` requests/s, ``burst`` requests back to back.

    The state is one number, the theoretical arrival time (TAT) of the next request. A request
    at ``now`` is allowed when ``max(TAT, now) + 1/rate - now <= burst/rate``.

    With ``count_refused``, a refused request advances the TAT too, as an admitted one does,
    up to ``max_backlog`` intervals beyond the burst: a client sending faster than ``rate`` is
    refused every request, and once it stops it waits at most ``max_backlog / rate`` seconds
    (plus its own excess over the burst) before the next one passes.

    Args:
        rate: sustained requests per second (> 0).
        burst: requests that may arrive at once after a quiet period (>= 1).
        count_refused: refused requests count against the rate.
        max_backlog: most refused requests remembered, in intervals (>= 0).
    """

    def __init__(
        self, rate: float, burst: int, *, count_refused: bool = False, max_backlog: int = 10
    ) -> None:
        if rate <= 0 or burst < 1 or max_backlog < 0:
            raise ValueError("rate must be > 0, burst >= 1 and max_backlog >= 0")
        self.rate = rate
        self.burst = burst
        self.count_refused = count_refused
        self.max_backlog = max_backlog
        self._interval = 1.0 / rate
        self._tat: float | None = None

    def acquire(self, now: float) -> Decision:
        """Admit a request arriving at *now*, or say how long to wait."""
        tat = now if self._tat is None else max(self._tat, now)
        new_tat = tat + self._interval
        excess = new_tat - now - self.burst * self._interval
        if excess > 1e-9:
            if self.count_refused:
                ceiling = now + (self.burst + self.max_backlog) * self._interval
                self._tat = min(new_tat, ceiling)
            return Decision(allowed=False, retry_after=excess, limit=self.burst)
        self._tat = new_tat
        return Decision(allowed=True, limit=self.burst)

    def reset(self) -> None:
        """Forget the past: the next request starts a full burst."""
        self._tat = None
