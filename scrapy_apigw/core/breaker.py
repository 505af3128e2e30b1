"""The circuit breaker state machine (CLOSED → OPEN → HALF_OPEN → CLOSED), clock injected."""

from __future__ import annotations

import enum
import math
import time
from collections import deque
from collections.abc import Callable

from scrapy_apigw.core.clock import Clock

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(enum.Enum):
    """Where a circuit breaker stands."""

    CLOSED = "closed"  # calls flow; failures are counted
    OPEN = "open"  # calls are refused until the open timeout has passed
    HALF_OPEN = "half_open"  # a few probe calls decide between CLOSED and OPEN


class CircuitBreaker:
    """A circuit breaker counting consecutive failures, with bounded, leased half-open probes.

    Rules:

    - CLOSED → OPEN after ``failure_threshold`` consecutive failures; a success resets the count
      (the pybreaker model). A failure *rate* over a sliding window with a minimum number of calls
      (resilience4j ``failureRateThreshold`` + ``minimumNumberOfCalls``, Polly v8 ``FailureRatio``
      + ``MinimumThroughput``) is the planned next step: a consecutive counter never trips on a
      steady 40 % failure rate and trips on 3 failures out of 3 at low traffic.
    - OPEN → HALF_OPEN once ``open_timeout`` seconds have passed, evaluated lazily whenever the
      breaker is read or told something (no timer): still OPEN 1 ms before, HALF_OPEN at exactly
      ``open_timeout``.
    - HALF_OPEN: at most ``success_threshold`` probe permits are out at once (resilience4j
      ``permittedNumberOfCallsInHalfOpenState``). A result releases a permit; a permit whose
      result never arrives expires after ``open_timeout`` seconds (a lease), so a lost probe
      cannot wedge the breaker (Polly v8 supersedes a hung probe the same way).
      ``success_threshold`` successes close the circuit; any failure reopens it with a fresh
      ``open_timeout``.
    - A result arriving while OPEN (a late call admitted before opening) is counted in the stats
      but does not extend the open period (Polly v8).
    - An ignored outcome (:meth:`record_ignored`, e.g. a 404 or a 429) is neither success nor
      failure (resilience4j ``ignoreExceptions``); it only releases a half-open permit.

    ``on_transition(old, new)`` is called exactly once per state change, after the change; an
    exception it raises propagates to the caller that caused the change.

    Not thread-safe: meant for one event loop (the Twisted reactor).

    Args:
        failure_threshold: consecutive failures that open the circuit, >= 1.
        open_timeout: seconds the circuit stays OPEN before probing, and the lease of a probe
            permit; finite and > 0.
        success_threshold: half-open successes that close the circuit, and the number of
            concurrent probe permits; >= 1.
        clock: monotonic clock, seconds.
        on_transition: listener called with ``(old_state, new_state)``.

    Raises:
        ValueError: an invalid threshold or timeout.
    """

    def __init__(
        self,
        failure_threshold: int,
        open_timeout: float,
        success_threshold: int,
        clock: Clock = time.monotonic,
        on_transition: Callable[[BreakerState, BreakerState], None] | None = None,
    ) -> None:
        if failure_threshold < 1 or success_threshold < 1:
            raise ValueError(
                f"thresholds must be >= 1, got failure_threshold={failure_threshold}, "
                f"success_threshold={success_threshold}"
            )
        if not (open_timeout > 0 and math.isfinite(open_timeout)):
            raise ValueError(f"open_timeout must be finite and > 0 s, got {open_timeout}")
        self._failure_threshold = failure_threshold
        self._open_timeout = float(open_timeout)
        self._success_threshold = success_threshold
        self._clock = clock
        self._on_transition = on_transition
        self._state = BreakerState.CLOSED
        self._open_until = -math.inf
        self._forced = False
        self._failures = 0  # consecutive
        self._probe_successes = 0
        self._leases: deque[float] = deque()  # expiry times of half-open permits, oldest first
        self._opened = 0
        self._rejected = 0
        self._successes_total = 0
        self._failures_total = 0
        self._ignored_total = 0
        self._last_failure: float | None = None

    @property
    def state(self) -> BreakerState:
        """The state now (an elapsed open timeout turns OPEN into HALF_OPEN on read)."""
        self._tick(self._clock())
        return self._state

    @property
    def forced(self) -> bool:
        """True while held OPEN by :meth:`force_open` (until :meth:`reset`)."""
        return self._forced

    @property
    def opened_count(self) -> int:
        """Times the circuit went to OPEN (from CLOSED or HALF_OPEN)."""
        return self._opened

    @property
    def rejected_count(self) -> int:
        """Times :meth:`allow_request` returned False (resilience4j ``not_permitted``)."""
        return self._rejected

    @property
    def failure_count(self) -> int:
        """Current run of consecutive failures (reset by a success or :meth:`reset`)."""
        return self._failures

    @property
    def successes_total(self) -> int:
        """All successes recorded, in any state."""
        return self._successes_total

    @property
    def failures_total(self) -> int:
        """All failures recorded, in any state (late ones while OPEN included)."""
        return self._failures_total

    @property
    def last_failure(self) -> float | None:
        """Clock instant of the last failure recorded, seconds, or None."""
        return self._last_failure

    @property
    def thresholds(self) -> tuple[int, float, int]:
        """``(failure_threshold, open_timeout s, success_threshold)``."""
        return self._failure_threshold, self._open_timeout, self._success_threshold

    @property
    def ignored_total(self) -> int:
        """All ignored outcomes recorded."""
        return self._ignored_total

    def allow_request(self) -> bool:
        """Ask for permission to make one call.

        Returns:
            True in CLOSED; False in OPEN; in HALF_OPEN, True while fewer than
            ``success_threshold`` unexpired probe permits are out (the caller then holds one and
            must report its result with a ``record_*`` method).
        """
        now = self._clock()
        self._tick(now)
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.HALF_OPEN:
            while self._leases and self._leases[0] <= now:
                self._leases.popleft()  # a probe whose result never came
            if len(self._leases) < self._success_threshold:
                self._leases.append(now + self._open_timeout)
                return True
        self._rejected += 1
        return False

    def record_success(self) -> None:
        """Report a call that showed the provider healthy (e.g. 2xx or a clean "not found")."""
        self._tick(self._clock())
        self._successes_total += 1
        self._failures = 0
        if self._state is BreakerState.HALF_OPEN:
            self._release()
            self._probe_successes += 1
            if self._probe_successes >= self._success_threshold:
                self._transition(BreakerState.CLOSED)

    def record_failure(self) -> None:
        """Report a call that showed the provider failing (5xx, timeout, connection error)."""
        now = self._clock()
        self._tick(now)
        self._failures_total += 1
        self._failures += 1
        self._last_failure = now
        if self._state is BreakerState.HALF_OPEN or (
            self._state is BreakerState.CLOSED and self._failures >= self._failure_threshold
        ):
            self._open(now)
        # While OPEN: a late result, counted above but not extending the open period (Polly v8).

    def record_ignored(self) -> None:
        """Report a call whose outcome says nothing about health (e.g. 404, 429).

        Changes no success or failure count; releases a half-open probe permit.
        """
        self._tick(self._clock())
        self._ignored_total += 1
        if self._state is BreakerState.HALF_OPEN:
            self._release()

    def retry_in(self) -> float:
        """Seconds until a probe may go: > 0 only when OPEN, ``math.inf`` when forced open."""
        now = self._clock()
        self._tick(now)
        if self._state is not BreakerState.OPEN:
            return 0.0
        return math.inf if self._forced else max(0.0, self._open_until - now)

    def force_open(self) -> None:
        """Hold the circuit OPEN until :meth:`reset`, ignoring the open timeout (admin use).

        Like resilience4j ``FORCED_OPEN`` and Polly ``ManualControl.Isolate``. Opening from CLOSED
        or HALF_OPEN counts in :attr:`opened_count` and emits a transition.
        """
        now = self._clock()
        self._tick(now)
        self._forced = True
        if self._state is not BreakerState.OPEN:
            self._open(now)

    def reset(self) -> None:
        """Return to CLOSED with no failure counted and no force (admin use; stats are kept)."""
        self._forced = False
        self._failures = 0
        self._probe_successes = 0
        self._leases.clear()
        self._transition(BreakerState.CLOSED)

    def _tick(self, now: float) -> None:
        if self._state is BreakerState.OPEN and not self._forced and now >= self._open_until:
            self._probe_successes = 0
            self._leases.clear()
            self._transition(BreakerState.HALF_OPEN)

    def _open(self, now: float) -> None:
        self._open_until = now + self._open_timeout
        self._opened += 1
        self._leases.clear()
        self._transition(BreakerState.OPEN)

    def _release(self) -> None:
        # Results do not say which permit they answer; the oldest lease is the likeliest.
        if self._leases:
            self._leases.popleft()

    def _transition(self, new: BreakerState) -> None:
        old = self._state
        if old is new:
            return
        self._state = new
        if new is BreakerState.CLOSED:
            self._failures = 0
        if self._on_transition is not None:
            self._on_transition(old, new)

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(state={self._state.value}, failures={self._failures}, "
            f"opened={self._opened}, rejected={self._rejected})"
        )
