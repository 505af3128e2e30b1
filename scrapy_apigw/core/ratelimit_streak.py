"""When a provider that keeps rate limiting is treated as unavailable (pure logic, clock injected).

A provider pauses after each rate-limited answer (its Retry-After, or a backoff). One that answers
429 again after every pause lets one request through per pause and holds every item in line:
with ``Retry-After: 20`` and 5 retries, an item waits minutes for nothing. The circuit breaker
ignores rate limits on purpose (a refusal says nothing of the provider's health), so this rule
does the job for them: after a streak of refused pauses, or pauses totalling too long, or one
hint over ``max_retry_after`` (Spotify ``QUOTA_EXCEEDED`` sends hours), the provider is
*unavailable* for the length of the last pause: calls fail at once, as with an open circuit.
"""

from __future__ import annotations

import math
import time

from scrapy_apigw.core.clock import Clock

__all__ = ["RateLimitStreak"]


class RateLimitStreak:
    """Counts the rate-limit pauses of one provider in a row and decides when it is unavailable.

    Rules, for :meth:`record_pause` at clock time ``now`` with a pause of ``p`` seconds:

    - ``p > max_retry_after``: unavailable until ``now + p`` at once (the whole hint).
    - A rate-limited answer counts in the streak only if no pause of an earlier one is still
      running (``now >=`` the end of the last pause): answers to requests sent before that pause
      began say nothing new. A counted answer adds 1 to the streak and ``p`` to its total.
    - The provider becomes unavailable until ``now + p`` when a counted answer brings the streak
      to ``max_streak`` or its total to ``max_wait`` seconds (each rule off when 0).
    - A pause that is not a rate limit (a 503 with a Retry-After within bounds) counts nothing.
    - :meth:`record_success` (an answer with data, or a "not found") ends the streak. It does not
      end an unavailable period: the provider asked for that time.
    - When the period has passed the provider is available again, but the streak is kept: one
      more rate-limited answer makes it unavailable again at once.

    Not thread-safe: meant for one event loop (the Twisted reactor).

    Args:
        max_streak: counted rate-limited answers in a row that make the provider unavailable,
            >= 0 (0: rule off).
        max_wait: seconds of rate-limit pauses in a row that make it unavailable, >= 0
            (0: rule off).
        max_retry_after: longest pause, seconds, a call may wait for, > 0.
        clock: monotonic clock, seconds.

    Raises:
        ValueError: a negative limit, or ``max_retry_after`` not > 0.
    """

    def __init__(
        self,
        max_streak: int,
        max_wait: float,
        max_retry_after: float,
        clock: Clock = time.monotonic,
    ) -> None:
        if max_streak < 0 or not 0 <= max_wait < math.inf:
            raise ValueError(
                f"max_streak and max_wait must be >= 0, got {max_streak} and {max_wait}"
            )
        if not max_retry_after > 0:
            raise ValueError(f"max_retry_after must be > 0 s, got {max_retry_after}")
        self._max_streak = max_streak
        self._max_wait = float(max_wait)
        self._max_retry_after = float(max_retry_after)
        self._clock = clock
        self._streak = 0
        self._total = 0.0
        self._paused_until = -math.inf
        self._unavailable_until = -math.inf

    @property
    def streak(self) -> int:
        """Counted rate-limited answers since the last success."""
        return self._streak

    @property
    def total_wait(self) -> float:
        """Seconds of the counted pauses since the last success."""
        return self._total

    def unavailable_for(self) -> float:
        """Seconds the provider stays unavailable; 0.0 when it may be called."""
        return max(0.0, self._unavailable_until - self._clock())

    def record_pause(self, seconds: float, *, rate_limited: bool) -> str | None:
        """Record that an answer paused the provider for *seconds*.

        Args:
            seconds: the pause, >= 0 (the Retry-After, or the backoff of a rate limit without).
            rate_limited: the answer was a rate limit (429, MusicBrainz 503, Last.fm error 29),
                not a server error that happened to carry a Retry-After.

        Returns:
            Why the provider became unavailable, e.g. ``"3 rate-limited answers in a row"``,
            when this answer made it so; None when it did not, or when it already was (the
            period is then only extended).
        """
        now = self._clock()
        seconds = max(0.0, float(seconds))
        reason = None
        if seconds > self._max_retry_after:
            reason = (
                f"asked to wait {seconds:.0f} s, over max_retry_after {self._max_retry_after:g} s"
            )
        elif rate_limited and now >= self._paused_until:
            self._streak += 1
            self._total += seconds
            if self._max_streak and self._streak >= self._max_streak:
                reason = f"{self._streak} rate-limited answers in a row"
            elif self._max_wait and self._total >= self._max_wait:
                reason = f"{self._total:.0f} s of rate-limit pauses in a row"
        self._paused_until = max(self._paused_until, now + seconds)
        if reason is None:
            return None
        entered = now >= self._unavailable_until
        self._unavailable_until = max(self._unavailable_until, now + seconds)
        return reason if entered else None

    def reset(self) -> None:
        """Forget the streak, its pauses and any unavailable period (admin reset)."""
        self._streak = 0
        self._total = 0.0
        self._paused_until = -math.inf
        self._unavailable_until = -math.inf

    def record_success(self) -> None:
        """Report a healthy answer (data or "not found"): the streak ends."""
        self._streak = 0
        self._total = 0.0

    def __repr__(self) -> str:
        return (
            f"RateLimitStreak(streak={self._streak}, total_wait={self._total:g}, "
            f"unavailable_for={self.unavailable_for():g})"
        )
