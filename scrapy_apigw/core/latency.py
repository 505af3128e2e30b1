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

    def buckets(self) -> dict[int, int]:
        """A copy of the counts: bucket (microseconds, rounded down to two significant digits)
        -> durations in it. JSON-ready once the keys are strings; :meth:`merge` reads it back."""
        return dict(self._counts)

    def merge(self, buckets: dict[int, int] | dict[str, int], max_us: int = 0) -> None:
        """Add the durations another histogram counted (its :meth:`buckets`, keys as ints or
        as the strings JSON makes of them) and its ``max_us``: the percentiles of several
        processes' round trips together, e.g. a fleet's.

        Raises:
            ValueError: a key that is not a whole number of microseconds, or a negative count.
        """
        for key, count in buckets.items():
            bucket, count = int(key), int(count)
            if bucket < 0 or count < 0:
                raise ValueError(f"bad histogram bucket {key!r}: {count!r}")
            # Re-bucketed: a bucket key is its own bucket, so this is a no-op for ours.
            bucket = _bucket(bucket)
            self._counts[bucket] = self._counts.get(bucket, 0) + count
            self.count += count
        self.max_us = max(self.max_us, int(max_us))

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
