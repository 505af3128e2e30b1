"""Local fallback while the shared (Redis) limiter is down: a two-state machine, clock injected.

With shared limits every process of a fleet takes its tokens from one bucket in Redis. When Redis
refuses, times out, or restarts, a process must neither stop nor send at the whole fleet's rate:
it falls back to a local bucket at its *share*, the rate divided by the live processes it last
saw (each process keeps a heartbeat key with a TTL in Redis; the caller reads their count with
each successful exchange and reports it with :meth:`SharedFallback.saw_processes`). The count
is the largest seen within ``memory`` seconds (the heartbeat TTL) before the last one: a
restarted Redis has lost every heartbeat, and the first process to beat there counts itself
alone while the others are still sending; a process that left counts until its TTL is over,
as it would in Redis.

States and events:

- ``SHARED`` --:meth:`~SharedFallback.redis_failed`--> ``FALLBACK``: the outage starts; the call
  returns True exactly once per outage, so the caller warns once and counts the outage (however
  many acquires fail together). The next probe is due ``probe_interval`` s later.
- ``FALLBACK``: :meth:`~SharedFallback.use_shared` is False (take tokens from the local bucket at
  :meth:`~SharedFallback.local_limits`) except once per ``probe_interval`` s, when it grants one
  probe: that acquire goes to Redis. A granted probe pushes the next one ``probe_interval`` s
  away at once, so a probe that hangs until its timeout cannot let every acquire through (the
  lease of the breaker's half-open permits). A failed probe (``redis_failed``) also moves the
  next probe to ``probe_interval`` s after the failure.
- ``FALLBACK`` --:meth:`~SharedFallback.redis_ok`--> ``SHARED``: Redis answered (a probe, or any
  call that was already in flight, unless sent before the outage began); the call returns True
  once, so the caller can log the end of the outage. The process goes back to the shared
  bucket at once.

The share is ``rate / n`` and ``max(1, ⌊burst / n⌋)`` with ``n = max(1, processes last seen)``:
the fleet stays within the shared rate; the burst cannot go below one token per process, so a
fleet of ``n`` on burst 1 may send ``n`` requests back to back at the switch. The caller should
start the local bucket at the switch with one token (``TokenBucket.block_until(now)``), not full,
since the fleet has just been sending from the shared bucket.

Not thread-safe: meant for one event loop (the Twisted reactor).
"""

from __future__ import annotations

import enum
import math
import time

from scrapy_apigw.core.clock import Clock

__all__ = ["LimiterMode", "SharedFallback"]


class LimiterMode(enum.Enum):
    """Which bucket a process takes its tokens from."""

    SHARED = "shared"  # the fleet's bucket in Redis
    FALLBACK = "fallback"  # a local bucket at this process's share


class SharedFallback:
    """When to use the shared limiter, when to probe Redis again, and the local share meanwhile.

    Args:
        probe_interval: seconds between Redis probes while in fallback; finite and > 0.
        processes: live processes assumed before the first heartbeat count is seen, >= 1 (a
            process that never reached Redis cannot know its fleet).
        clock: monotonic clock, seconds.
        memory: seconds a count seen is kept (while younger than that at the last count
            seen), >= 0: the heartbeat TTL; 0: the last count alone.

    Raises:
        ValueError: invalid *probe_interval* or *processes*.
    """

    def __init__(
        self,
        probe_interval: float = 5.0,
        processes: int = 1,
        clock: Clock = time.monotonic,
        memory: float = 0.0,
    ) -> None:
        if not (probe_interval > 0 and math.isfinite(probe_interval)):
            raise ValueError(f"probe_interval must be finite and > 0 s, got {probe_interval}")
        if processes < 1:
            raise ValueError(f"processes must be >= 1, got {processes}")
        if not (memory >= 0 and math.isfinite(memory)):
            raise ValueError(f"memory must be finite and >= 0 s, got {memory}")
        self._probe_interval = float(probe_interval)
        self._processes = int(processes)
        self._memory = float(memory)
        self._seen: list[tuple[float, int]] = []  # (clock time, count), oldest first
        self._clock = clock
        self._mode = LimiterMode.SHARED
        self._next_probe = math.inf
        self._outage_start = math.nan
        self._outages = 0
        self._failures = 0
        self._probes = 0
        self._fallback_seconds = 0.0

    @property
    def mode(self) -> LimiterMode:
        """The current mode."""
        return self._mode

    @property
    def processes(self) -> int:
        """Live processes (>= 1): the largest count seen in the ``memory`` seconds up to the
        last one; the divisor of the local share."""
        return self._processes

    @property
    def outages(self) -> int:
        """Outages so far (SHARED → FALLBACK transitions): a stat."""
        return self._outages

    @property
    def failures(self) -> int:
        """Failed Redis operations reported, in either mode."""
        return self._failures

    @property
    def probes(self) -> int:
        """Probes granted by :meth:`use_shared` while in fallback."""
        return self._probes

    @property
    def next_probe(self) -> float:
        """Clock time from which the next probe is granted; ``inf`` while SHARED."""
        return self._next_probe

    @property
    def fallback_seconds(self) -> float:
        """Seconds spent in fallback in ended outages (the current one not included)."""
        return self._fallback_seconds

    def saw_processes(self, count: int) -> None:
        """Record the live process count read from the heartbeats (this process included).

        A count below 1 (this process's own heartbeat not written yet) counts as 1.
        :attr:`processes` is then the largest count seen in the ``memory`` seconds up to now.
        """
        now = self._clock()
        self._seen = [(t, c) for t, c in self._seen if now - t < self._memory]
        self._seen.append((now, max(1, int(count))))
        self._processes = max(c for _, c in self._seen)

    def use_shared(self) -> bool:
        """Should this acquire go to the shared limiter?

        Returns:
            True while SHARED. In FALLBACK, True for one probe once ``next_probe`` is reached
            (the next one is then due ``probe_interval`` s later), else False: use the local
            bucket at :meth:`local_limits`.
        """
        if self._mode is LimiterMode.SHARED:
            return True
        now = self._clock()
        if now < self._next_probe:
            return False
        self._next_probe = now + self._probe_interval
        self._probes += 1
        return True

    def redis_failed(self) -> bool:
        """Report a failed Redis operation (refused, timed out, unexpected error).

        Returns:
            True when this starts an outage (SHARED → FALLBACK): warn once and count it.
        """
        now = self._clock()
        self._failures += 1
        if self._mode is LimiterMode.FALLBACK:
            self._next_probe = now + self._probe_interval
            return False
        self._mode = LimiterMode.FALLBACK
        self._outages += 1
        self._outage_start = now
        self._next_probe = now + self._probe_interval
        return True

    def redis_ok(self, started: float | None = None) -> bool:
        """Report a Redis operation that succeeded.

        Args:
            started: clock time the operation was sent, if known. One sent before the outage
                began does not end it: its answer may predate the failure (e.g. read in the
                same reactor turn as the lost connection of a restart), and ending the outage
                on it warns again at the next failure, twice for one restart.

        Returns:
            True when this ends an outage (FALLBACK → SHARED).
        """
        if self._mode is LimiterMode.SHARED:
            return False
        if started is not None and started < self._outage_start:
            return False
        self._mode = LimiterMode.SHARED
        self._fallback_seconds += self._clock() - self._outage_start
        self._next_probe = math.inf
        return True

    def local_limits(self, rate: float, burst: int) -> tuple[float, int]:
        """This process's share of the fleet's *rate* (req/s) and *burst* (tokens).

        Returns:
            ``(rate / n, max(1, ⌊burst / n⌋))`` with ``n`` = :attr:`processes`.
        """
        n = self._processes
        return rate / n, max(1, burst // n)

    def __repr__(self) -> str:
        return f"SharedFallback(mode={self._mode.value}, processes={self._processes})"
