"""A latency histogram of bounded size: percentiles of round-trip times over a whole crawl.

Durations are counted in buckets of two significant digits of microseconds (1 µs steps below
100 µs, 10 µs steps up to 1 ms, 100 µs steps up to 10 ms, ...): a percentile is exact to within
10 % and the histogram holds at most a few hundred buckets however many durations it counts.
Pure: the caller measures the durations.
"""

from __future__ import annotations

import math

__all__ = ["LatencyHistogram"]


def _bucket(microseconds: int) -> int:
    """*microseconds* rounded down to two significant digits (``1234 -> 1200``)."""
    if microseconds < 100:
        return microseconds
    step = 10 ** (len(str(microseconds)) - 2)
    return microseconds // step * step


class LatencyHistogram:
    """Counts durations; answers percentiles in whole microseconds.

    Attributes:
        count: durations added.
        max_us: the longest duration added, microseconds (0 when empty).
    """

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        self.count = 0
        self.max_us = 0

    def add(self, seconds: float) -> None:
        """Count one duration of *seconds* (negative counts as 0)."""
        microseconds = max(0, round(seconds * 1_000_000))
        key = _bucket(microseconds)
        self._counts[key] = self._counts.get(key, 0) + 1
        self.count += 1
        self.max_us = max(self.max_us, microseconds)

    def percentile(self, q: float) -> int:
        """The *q*-th percentile (0 < q <= 100), microseconds: the bucket of the
        ``ceil(q / 100 * count)``-th shortest duration (nearest rank), 0 when empty.

        Raises:
            ValueError: *q* outside (0, 100].
        """
        if not 0 < q <= 100:
            raise ValueError(f"a percentile must be in (0, 100], got {q}")
        rank = math.ceil(q / 100 * self.count)
        seen = 0
        for key in sorted(self._counts):
            seen += self._counts[key]
            if seen >= rank:
                return key
        return 0
