"""Client-side rate limiting: a token bucket, a sliding-window log and rate-limit header parsing.

Pure logic: nothing here sleeps. A limiter answers "how long must this send wait" and the caller
(the gateway) schedules the send; the clock is injected so tests drive time exactly.
"""

from __future__ import annotations

import bisect
import math
import re
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from scrapy_apigw.core.clock import Clock

__all__ = ["Quota", "SlidingWindowLog", "TokenBucket", "parse_quota_headers"]

# Float readings of a clock at computed instants can be a few ulps off; a level this close to a
# whole token counts as that token, so a caller waking at its computed time finds its token.
_EPSILON = 1e-9

_DIGITS = re.compile(r"[0-9]+")


class TokenBucket:
    """A token bucket with reservations (debt), equivalent to GCRA (redis-cell).

    The bucket holds at most ``burst`` tokens, starts full and refills continuously at ``rate``
    tokens per second. :meth:`reserve` always takes its tokens, going into debt if needed, and
    returns how long the caller must wait: concurrent reservers are thereby queued FIFO in time at
    exactly ``1 / rate`` s spacing (the behaviour aiolimiter tests at exact fake-clock instants).

    The level is kept as ``base + (t - anchor) * rate`` and only re-anchored when the bucket is
    full, paused or re-rated, so taking tokens subtracts whole numbers and the n-th reservation in a
    queue waits ``n / rate`` computed once, with no accumulated float drift.

    A take that comes late (:meth:`try_acquire` with ``due``: the caller's timer fired after the
    instant it was armed for, the event loop being busy) may keep up to ``late_credit`` tokens of
    the refill a full bucket could not hold meanwhile: the take counts as made at
    ``max(due, when the bucket became full, now - late_credit / rate)``, so a sender paced one
    token at a time (burst 1) does not lose each timer's lateness for good. Every take then
    happens at most ``late_credit / rate`` s after an instant at which an on-time taker of the same
    bucket would have found its tokens, and never before one: in any *W* seconds at most
    ``burst + late_credit + rate * W`` tokens are taken, which for ``late_credit < 1`` is the
    bucket's own ``burst + rate * W`` whenever ``rate * W`` is whole (see docs/design.md,
    "Late timers"). A stall of any length is credited ``late_credit`` at most, never the tokens
    it missed.

    Not thread-safe: meant for one event loop (the Twisted reactor).

    Args:
        rate: sustained rate, tokens (requests) per second; finite and > 0.
        burst: capacity, tokens; >= 1.
        clock: monotonic clock, seconds.
        late_credit: most tokens a late take keeps of the refill it missed, in ``[0, 1)``;
            0 (the default): none.

    Raises:
        ValueError: invalid ``rate``, ``burst`` or ``late_credit``.
    """

    def __init__(
        self, rate: float, burst: int, clock: Clock = time.monotonic, late_credit: float = 0.0
    ) -> None:
        _check_rate(rate)
        if burst < 1:
            raise ValueError(f"burst must be >= 1 token, got {burst}")
        if not 0.0 <= late_credit < 1.0:
            raise ValueError(f"late_credit must be in [0, 1) tokens, got {late_credit}")
        self._rate = float(rate)
        self._burst = int(burst)
        self._clock = clock
        self._late_credit = float(late_credit)
        self._anchor = clock()
        self._base = float(self._burst)
        # While the level stands at burst: since when (clock s). Refill after it is lost.
        self._full_since = self._anchor
        self._blocked_until = -math.inf
        self._pauses = 0
        self._taken = 0
        self._ahead_until = -math.inf

    @property
    def taken(self) -> int:
        """Tokens taken so far (by :meth:`reserve` and :meth:`try_acquire`)."""
        return self._taken

    @property
    def ahead_until(self) -> float:
        """Clock time until which the sends so far are ahead of the paced schedule (a burst):
        a take at *t* that left *k* >= 1 whole tokens is ``(k + 1) / rate`` s ahead of a sender
        paced from *t* on; the latest such end, ``-inf`` when no take was ahead."""
        return self._ahead_until

    @property
    def rate(self) -> float:
        """Refill rate, tokens per second."""
        return self._rate

    @property
    def late_credit(self) -> float:
        """Most tokens a late take keeps of the refill it missed (see the class docstring)."""
        return self._late_credit

    def now(self) -> float:
        """The bucket's clock now, seconds (the time base of ``due`` and pauses)."""
        return self._clock()

    @property
    def burst(self) -> int:
        """Capacity, tokens."""
        return self._burst

    @property
    def tokens(self) -> float:
        """Level now, tokens; negative means debt (queued reservations not yet covered)."""
        return self._settle(self._clock())

    @property
    def blocked_until(self) -> float:
        """Clock time before which no token is given (a provider pause); <= now: not blocked."""
        return self._blocked_until

    @property
    def pauses(self) -> int:
        """How many :meth:`block_until` calls took effect.

        A reservation made while this was ``p`` is void if it differs on waking, even when the
        pause has already ended (``block_until`` with a time in the past).
        """
        return self._pauses

    def reserve(self, n: int = 1) -> float:
        """Take *n* tokens now, going into debt if needed.

        Returns:
            Seconds the caller must wait before sending (``0.0`` when the tokens are there now).

        Raises:
            ValueError: ``n < 1`` or ``n > burst`` (a debt-free bucket could never cover it; the
                same request is always refused by redis-cell).
        """
        _check_n(n)
        if n > self._burst:
            raise ValueError(f"cannot reserve {n} tokens from a bucket of {self._burst}")
        now = self._clock()
        level = self._settle(now)
        # Time until the level reaches n, measured from the anchor so the k-th queued reservation
        # waits exactly k / rate (no float sums accumulate).
        wait = (self._anchor - now) + (n - self._base) / self._rate
        self._base -= n
        self._took(now, level - n)
        if level >= n:
            return 0.0
        return max(0.0, wait)

    def try_acquire(self, n: int = 1, due: float | None = None) -> bool:
        """Take *n* tokens only if they are available now (never goes into debt).

        Args:
            n: tokens to take.
            due: clock time (s) the caller was due to take them, e.g. the instant its timer was
                armed for; a take later than that, from a full bucket, keeps the refill it
                missed since ``max(due, the instant the bucket became full)``, at most
                :attr:`late_credit` tokens. None (the default), or a ``due`` not in the past:
                no credit.

        Returns:
            True if taken; False otherwise, including always when ``n > burst``.

        Raises:
            ValueError: ``n < 1``.
        """
        _check_n(n)
        now = self._clock()
        level = self._settle(now)
        if level < n:
            return False
        credit = 0.0
        if due is not None and self._late_credit > 0 and level >= self._burst:
            # Full: _settle anchored the level at burst now; the refill since the later of the
            # due instant and the fill is what the late take lost.
            missed = (now - max(due, self._full_since)) * self._rate
            credit = min(self._late_credit, max(0.0, missed))
        self._base -= n - credit
        self._took(now, level - n)
        return True

    def time_until(self, n: int = 1) -> float:
        """Seconds until *n* tokens are available (a pause included), without taking them.

        ``0.0`` means :meth:`try_acquire` with the same *n* succeeds now.

        Raises:
            ValueError: ``n < 1`` or ``n > burst``.
        """
        _check_n(n)
        if n > self._burst:
            raise ValueError(f"{n} tokens never fit a bucket of {self._burst}")
        now = self._clock()
        if self._settle(now) >= n:
            return 0.0
        return max(0.0, (self._anchor - now) + (n - self._base) / self._rate)

    def block_until(self, t: float) -> None:
        """Pause the bucket until clock time *t*, seconds (a provider's Retry-After).

        No token is available before *t*; at *t* exactly one is, and refill continues from there at
        ``rate`` (no burst right after a pause). Earlier reservations are void: callers re-check
        :attr:`blocked_until` / :attr:`pauses` after waking and reserve again. A *t* not later than
        the current block is ignored (the later pause wins); a *t* in the past pauses until now,
        which drops the level to one token.
        """
        if t <= self._blocked_until:
            return
        start = max(t, self._clock())
        self._blocked_until = start
        self._anchor = start
        self._base = 1.0
        self._full_since = start
        self._pauses += 1

    def end_pause(self) -> None:
        """End a pause now (admin reset): one token is there at once and refill goes on from
        it, as at a pause's natural end. No-op when not paused."""
        now = self._clock()
        if self._blocked_until > now:
            self._blocked_until = now
            self._anchor = now
            self._base = 1.0
            self._full_since = now

    def set_rate(self, rate: float) -> None:
        """Change the refill rate to *rate* tokens per second, keeping the current level.

        During a pause the level at the pause end stays one token.

        Raises:
            ValueError: *rate* is not finite and > 0.
        """
        _check_rate(rate)
        now = self._clock()
        if now >= self._anchor:
            self._base = self._settle(now)
            self._anchor = now
        self._rate = float(rate)

    def set_burst(self, burst: int) -> None:
        """Change the capacity to *burst* tokens (an adaptive or announced burst).

        The level is kept, capped at the new capacity on the next read (a smaller bucket loses
        the tokens above it; a larger one fills up at ``rate`` from the current level). Debt and
        a pause are kept.

        Raises:
            ValueError: ``burst < 1``.
        """
        if burst < 1:
            raise ValueError(f"burst must be >= 1 token, got {burst}")
        now = self._clock()
        if now >= self._anchor:
            self._settle(now)  # a full bucket stopped filling at the old capacity
            if self._base >= burst:
                self._full_since = now  # full at the new capacity: from now on, at the latest
        self._burst = int(burst)

    def _took(self, now: float, left: float) -> None:
        self._taken += 1
        if left >= 1.0 - _EPSILON:
            self._ahead_until = max(self._ahead_until, now + (round(left, 9) + 1) / self._rate)

    def _level(self, now: float) -> float:
        level = self._base + (now - self._anchor) * self._rate
        whole = round(level)
        return float(whole) if abs(level - whole) < _EPSILON else level

    def _settle(self, now: float) -> float:
        """Return the level at *now*; a full bucket is re-anchored (it stops refilling)."""
        level = self._level(now)
        if level >= self._burst:
            if self._base < self._burst:  # it filled up since the anchor: when
                self._full_since = self._anchor + (self._burst - self._base) / self._rate
            self._anchor = now
            self._base = float(self._burst)
            return self._base
        return level

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self._rate}, burst={self._burst}, tokens={self.tokens:.3f})"


class SlidingWindowLog:
    """At most ``limit`` sends in any ``window`` seconds: an exact moving window.

    Models Discogs' "60 requests per moving 60-second window". Keeps the instants of the last
    ``limit`` sends (scheduled ones included), so memory is bounded by ``limit``; this is the
    moving-window log of ``limits`` (alisaifee/limits), with reservations instead of refusals.
    A window is half-open: sends at ``t`` and ``t + window`` are in different windows.

    The provider counts a request when it *arrives*, which is some time after the send was
    reserved (the event loop, the connection, the network) and before its answer. A reserved
    send therefore counts from its reservation and, once :meth:`settle` reports an answer, until
    that answer leaves the window: a send delayed on its way can never squeeze an extra request
    into the provider's window, however long the delay (docs/design.md, "Discogs: a window
    quota"). Answers settle the oldest unsettled send: sends are interchangeable in a count, and
    an earlier instant replaced by a later one only keeps a send longer.

    Not thread-safe: meant for one event loop.

    Args:
        limit: sends allowed per window, >= 1.
        window: window length, seconds, > 0.
        clock: monotonic clock, seconds.

    Raises:
        ValueError: invalid ``limit`` or ``window``.
    """

    def __init__(self, limit: int, window: float, clock: Clock = time.monotonic) -> None:
        _check_limit(limit)
        if not (window > 0 and math.isfinite(window)):
            raise ValueError(f"window must be finite and > 0 s, got {window}")
        self._window = float(window)
        self._clock = clock
        self._limit = limit
        # The instants the last `limit` sends count until (reservation, or answer once settled),
        # ascending.
        self._log: list[float] = []
        # Reservation instants not settled yet, oldest first (bounded: older ones left the log).
        self._unsettled: deque[float] = deque(maxlen=limit)
        self._last = -math.inf  # the latest reservation: FIFO order

    @property
    def limit(self) -> int:
        """Sends allowed per window."""
        return self._limit

    @property
    def window(self) -> float:
        """Window length, seconds."""
        return self._window

    def _earliest(self, now: float) -> float:
        at = max(now, self._last)  # FIFO: never before an earlier reservation
        if len(self._log) >= self._limit:
            # One of the `limit` sends counted must have left the window.
            at = max(at, self._log[-self._limit] + self._window)
        return at

    def reserve(self) -> float:
        """Record one send and return the seconds to wait before making it.

        The send is recorded at ``now + wait``, the earliest instant that keeps every window within
        the limit; concurrent reservers are served FIFO.
        """
        now = self._clock()
        at = self._earliest(now)
        bisect.insort(self._log, at)
        if len(self._log) > self._limit:
            del self._log[0]  # left the window before `at`: it constrains no later send
        self._unsettled.append(at)
        self._last = at
        return at - now

    def settle(self) -> None:
        """Report that one reserved send got its answer (or failed) now.

        The oldest unsettled send then counts until ``now + window`` instead of its reservation
        instant plus the window. A no-op when every send is settled or has left the log.
        """
        if not self._unsettled:
            return
        sent = self._unsettled.popleft()
        i = bisect.bisect_left(self._log, sent)
        if i < len(self._log) and self._log[i] == sent:
            del self._log[i]
            bisect.insort(self._log, max(sent, self._clock()))

    def time_until(self) -> float:
        """Seconds until one more send fits every window, without recording it."""
        now = self._clock()
        return self._earliest(now) - now

    def set_limit(self, limit: int) -> None:
        """Change the limit to *limit* sends per window (e.g. from ``X-Discogs-Ratelimit``).

        Raises:
            ValueError: ``limit < 1``.
        """
        _check_limit(limit)
        self._limit = limit
        del self._log[: max(0, len(self._log) - limit)]
        self._unsettled = deque(self._unsettled, maxlen=limit)

    def count(self) -> int:
        """Number of sends counted in the window ending now, ``(now - window, now]``: those
        reserved in it, and those answered in it.

        Exact while the limit has not changed within the last window.
        """
        now = self._clock()
        if self._last > now:
            # A send is scheduled later only when the window is full: the earliest future send x
            # waits for a send counted `limit` places back to leave, so `limit` sends count in
            # (now - window, now]. (Those sends may have left this bounded log.)
            return self._limit
        return len(self._log) - bisect.bisect_right(self._log, now - self._window)

    def __repr__(self) -> str:
        return f"SlidingWindowLog(limit={self.limit}, window={self._window})"


@dataclass(frozen=True)
class Quota:
    """A provider's quota as announced in response headers; ``None`` where absent or malformed.

    Attributes:
        limit: requests allowed per window.
        used: requests used in the current window.
        remaining: requests left in the current window.
    """

    limit: int | None
    used: int | None
    remaining: int | None


def parse_quota_headers(headers: Mapping[str, str | bytes], prefix: str) -> Quota:
    """Read ``{prefix}``, ``{prefix}-used`` and ``{prefix}-remaining`` from *headers*.

    For Discogs the prefix is ``x-discogs-ratelimit``. Values must be non-negative integers
    (``1*DIGIT``, surrounding whitespace allowed); anything else is ignored (``None``), as the IETF
    ratelimit-headers draft requires ("malformed fields MUST be ignored").

    Args:
        headers: response headers with lower-case names; values as ``str`` or raw ``bytes``.
        prefix: header name prefix, case-insensitive.
    """
    name = prefix.lower()
    return Quota(
        limit=_count(headers.get(name)),
        used=_count(headers.get(f"{name}-used")),
        remaining=_count(headers.get(f"{name}-remaining")),
    )


def _count(value: str | bytes | None) -> int | None:
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    return int(text) if _DIGITS.fullmatch(text) else None


def _check_rate(rate: float) -> None:
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError(f"rate must be finite and > 0 req/s, got {rate}")


def _check_n(n: int) -> None:
    if n < 1:
        raise ValueError(f"token count must be >= 1, got {n}")


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be >= 1 send per window, got {limit}")
