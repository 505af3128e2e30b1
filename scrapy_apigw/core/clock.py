"""The clock every resilience component reads, and a fake one for tests.

Components take a ``clock`` argument instead of calling :func:`time.monotonic` themselves, so tests
control time exactly (the practice of resilience4j ``MockClock``, Polly ``FakeTimeProvider`` and
redis-cell ``TestStore.clock``) and never sleep.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Clock", "FakeClock"]

Clock = Callable[[], float]
"""A monotonic clock: a callable returning seconds (float) from an arbitrary origin."""


class FakeClock:
    """A hand-driven monotonic clock for tests; usable wherever a :data:`Clock` is expected.

    Time only moves when the test says so, and never backwards (like :func:`time.monotonic`).

    Args:
        start: initial reading, seconds.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def __call__(self) -> float:
        """Return the current reading, seconds."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by *seconds*.

        Raises:
            ValueError: *seconds* is negative (a monotonic clock never goes back).
        """
        if seconds < 0:
            raise ValueError(f"cannot advance a monotonic clock by {seconds} s")
        self._now += seconds

    def set(self, t: float) -> None:
        """Move time to the absolute reading *t*, seconds.

        Raises:
            ValueError: *t* is earlier than the current reading.
        """
        if t < self._now:
            raise ValueError(f"cannot set a monotonic clock back from {self._now} to {t}")
        self._now = float(t)

    def __repr__(self) -> str:
        return f"FakeClock({self._now!r})"
