"""How long the calls still to be made will take: pure arithmetic, no clock, no reactor.

A provider's calls go out at its effective rate (its token bucket; a window quota averages
``limit / window``), so the time its queue takes is the pause left, plus the calls beyond the
tokens already in the bucket divided by the rate. Providers are asked in parallel (items are at
different steps of the waterfall), so the crawl's enrichment ends when the slowest queue is
through: the crawl's ETA is the largest provider ETA (a lower bound when a slow provider comes
late in the waterfall and its items still have to pass the earlier ones first).

What "queued" means (:func:`queued_calls`): the calls waiting at the provider's pacer now, the
retries sleeping before they go back to it, plus the calls the items still in the pipeline will
make there: each item that has not reached the provider yet makes, on average, what the items
that reached it made (real requests per item, cache hits and batching included); an item at
the provider now makes that average less the one call it is waiting for or has in flight. Items
the spider has not scraped yet are unknown and not counted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = [
    "calls_per_item",
    "crawl_eta",
    "format_duration",
    "format_rate",
    "provider_eta",
    "queued_calls",
]


def calls_per_item(requests: int, finished: int, at: int = 0) -> float:
    """Average real requests an item makes at a provider: *requests* sent there so far over the
    items that made them, the *finished* ones that are through with it and the *at* ones there
    now (their first calls are among the requests: counting only the finished items would
    blow the average up early in a crawl, when hundreds of items are at a provider and a few
    are through); 1.0 until an item got there.

    Raises:
        ValueError: a negative count.
    """
    if min(requests, finished, at) < 0:
        raise ValueError(
            f"counts must be >= 0, got requests={requests}, finished={finished}, at={at}"
        )
    items = finished + at
    return requests / items if items else 1.0


def queued_calls(waiting: int, ahead: int, at: int, per_item: float) -> float:
    """Calls still to be made at one provider (see the module docstring).

    Args:
        waiting: calls waiting at its pacer now plus retries sleeping before they go back to it.
        ahead: items in the pipeline that have not reached it yet.
        at: items at it now (one call each waiting or in flight, counted in *waiting* or done).
        per_item: average calls per item there (:func:`calls_per_item`), >= 0.

    Returns:
        The expected number of calls, >= 0 (a float: an average times a count).

    Raises:
        ValueError: a negative argument.
    """
    if min(waiting, ahead, at) < 0 or not per_item >= 0:
        raise ValueError(
            f"arguments must be >= 0, got waiting={waiting}, ahead={ahead}, at={at}, "
            f"per_item={per_item}"
        )
    return waiting + ahead * per_item + at * max(0.0, per_item - 1.0)


def provider_eta(queued: float, rate: float, tokens: float = 0.0, paused_for: float = 0.0) -> float:
    """Seconds until *queued* calls have been sent at *rate*.

    Args:
        queued: calls to send (:func:`queued_calls`), >= 0.
        rate: effective rate, req/s, > 0.
        tokens: tokens in the bucket now (those calls go at once), >= 0.
        paused_for: seconds left of a provider pause (Retry-After...), >= 0.

    Returns:
        0.0 for an empty queue, else ``paused_for + max(0, queued - tokens) / rate``.

    Raises:
        ValueError: a rate that is not a finite number > 0, or a negative argument.
    """
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError(f"rate must be a finite number > 0 req/s, got {rate}")
    if not (queued >= 0 and tokens >= 0 and paused_for >= 0):
        raise ValueError(
            f"arguments must be >= 0, got queued={queued}, tokens={tokens}, paused_for={paused_for}"
        )
    if queued == 0:
        return 0.0
    return paused_for + max(0.0, queued - tokens) / rate


def crawl_eta(etas: Iterable[float]) -> float:
    """The enrichment's ETA from the providers' ETAs, seconds: the slowest one (0.0 for none)."""
    return max(etas, default=0.0)


def format_duration(seconds: float) -> str:
    """A duration for the log: ``"0.4 s"``, ``"42 s"``, ``"6 min 52 s"``, ``"2 h 05 min"``.

    Below 10 s one decimal, else whole seconds (rounded), minutes from 60 s, hours from
    3600 s (minutes rounded).

    Raises:
        ValueError: a negative or non-finite duration.
    """
    if not (seconds >= 0 and math.isfinite(seconds)):
        raise ValueError(f"a duration must be a finite number >= 0 s, got {seconds}")
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min"


def format_rate(rate: float) -> str:
    """A rate for the log, req/s without the unit: ``"1.0"``, ``"0.5"``, ``"12"``, ``"0.05"``."""
    if rate >= 10:
        return f"{rate:.0f}"
    if rate >= 0.1:
        return f"{rate:.1f}"
    return f"{rate:.2g}"
