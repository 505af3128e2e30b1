"""Retry decisions: which outcomes retry, exponential backoff with jitter, Retry-After parsing."""

from __future__ import annotations

import math
import random
import re
from datetime import timezone
from email.utils import parsedate_to_datetime

from scrapy_apigw.core.outcome import Outcome

__all__ = ["RetryPolicy", "http_date", "parse_retry_after"]

_DELAY_SECONDS = re.compile(r"[0-9]+")  # RFC 9110 §10.2.3: delay-seconds = 1*DIGIT

# Doubling past this many times changes nothing once capped and would overflow a float.
_MAX_DOUBLINGS = 1000


class RetryPolicy:
    """When to retry and how long to wait: capped exponential backoff with ±jitter.

    ``backoff(n) = min(base * 2**(n-1), cap) * uniform(1 - jitter, 1 + jitter)``: the cap is
    applied first and the jitter after, as in gRPC A6 (``random(0.8, 1.2)``), so retries stay
    spread out at the cap too; hence the delay may exceed the cap by up to ``jitter`` (72 s for a
    60 s cap and ±20 %). A Retry-After hint replaces the backoff.

    Args:
        max_retries: retries after the first attempt, >= 0.
        backoff_base: first backoff, seconds, >= 0.
        backoff_cap: largest backoff before jitter, seconds, >= 0.
        jitter: relative jitter in [0, 1); ``0.2`` means ±20 %.
        rng: random source (seed it in tests); a private ``random.Random()`` by default.

    Raises:
        ValueError: a value out of range.
    """

    def __init__(
        self,
        max_retries: int = 5,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        jitter: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if not (0 <= backoff_base < math.inf and 0 <= backoff_cap < math.inf):
            raise ValueError(f"backoff must be finite and >= 0 s, got {backoff_base}/{backoff_cap}")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {jitter}")
        self.max_retries = max_retries
        self.backoff_base = float(backoff_base)
        self.backoff_cap = float(backoff_cap)
        self.jitter = float(jitter)
        self._rng = rng if rng is not None else random.Random()

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number *attempt* (1 = the first retry), jittered.

        Raises:
            ValueError: ``attempt < 1``.
        """
        _check_attempt(attempt)
        doublings = min(attempt - 1, _MAX_DOUBLINGS)
        capped = min(self.backoff_base * 2.0**doublings, self.backoff_cap)
        return capped * self._rng.uniform(1 - self.jitter, 1 + self.jitter)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number *attempt*.

        The provider's Retry-After hint (seconds) wins when given, exactly: never shorter than
        the hint and without jitter (the IETF ratelimit-headers draft: Retry-After takes
        precedence). Otherwise :meth:`backoff`.

        Raises:
            ValueError: ``attempt < 1``.
        """
        _check_attempt(attempt)
        if retry_after is not None:
            return max(0.0, float(retry_after))
        return self.backoff(attempt)

    def should_retry(self, outcome: Outcome, attempt: int) -> bool:
        """True if retry number *attempt* (1-based) should be made after *outcome*.

        Retries :attr:`Outcome.retryable` outcomes (rate limits, 5xx, network errors, malformed
        answers) while ``attempt <= max_retries``.

        Raises:
            ValueError: ``attempt < 1``.
        """
        _check_attempt(attempt)
        return outcome.retryable and attempt <= self.max_retries

    def __repr__(self) -> str:
        return (
            f"RetryPolicy(max_retries={self.max_retries}, backoff_base={self.backoff_base}, "
            f"backoff_cap={self.backoff_cap}, jitter={self.jitter})"
        )


def parse_retry_after(
    value: str | bytes | None, now: float, date: str | bytes | None = None
) -> float | None:
    """Parse a ``Retry-After`` header value into seconds to wait (RFC 9110 §10.2.3).

    Accepts delay-seconds (``1*DIGIT``, surrounding whitespace allowed) or an HTTP-date in any
    of the three forms recipients must accept (RFC 9110 §5.6.7: IMF-fixdate, obsolete RFC 850,
    asctime), parsed by :func:`email.utils.parsedate_to_datetime`. A date without a zone is UTC.

    Args:
        value: the header value, or None when absent.
        now: current wall-clock time, epoch seconds.
        date: the response's ``Date`` header; when given and valid, a date hint is measured
            against it rather than *now*, so a skewed local clock does not matter.

    Returns:
        Seconds (>= 0.0; 0.0 for a date in the past), or None for an absent, empty or malformed
        value (garbage, negative or fractional numbers).
    """
    text = _text(value)
    if not text:
        return None
    if _DELAY_SECONDS.fullmatch(text):
        seconds = float(text)
        return seconds if math.isfinite(seconds) else None
    when = http_date(text)
    if when is None:
        return None
    server_now = http_date(_text(date))
    reference = server_now if server_now is not None else now
    return max(0.0, when - reference)


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    # Header bytes are ISO-8859-1 at worst (RFC 9110 §5.5); a date is plain ASCII.
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    return text.strip()


def http_date(text: str) -> float | None:
    """Epoch seconds of an HTTP-date (RFC 9110 §5.6.7: IMF-fixdate, RFC 850, asctime), or None
    if *text* is not one. A date without a zone is UTC."""
    if not text:
        return None
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        # asctime and "-0000" carry no zone; HTTP dates are always UTC (RFC 9110 §5.6.7).
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


def _check_attempt(attempt: int) -> None:
    if attempt < 1:
        raise ValueError(f"attempt is 1-based (1 = first retry), got {attempt}")
