"""What a provider announces about its quota in response headers, from any of four conventions.

:func:`parse_ratelimit_headers` reads one response's headers (lower-case names) and returns an
:class:`AnnouncedQuota` (limit, remaining, reset as seconds from now, window, policy name and the
header family it came from), or None when no family is present and well-formed. Families, in
the order they are tried (the first one present wins):

1. IETF ``draft-ietf-httpapi-ratelimit-headers-10``: ``RateLimit-Policy: "burst";q=100;w=60,
   "daily";q=1000;w=86400`` and ``RateLimit: "default";r=50;t=30``, both Lists of Structured
   Fields (RFC 9651, parsed by ``http_sf``). The RateLimit item names the policy whose ``q`` and
   ``w`` apply; with several items the one with the fewest remaining units is taken (the one
   closest to exhaustion, draft §B.1.2). Without a RateLimit field the policy with the lowest
   ``q / w`` is taken. ``t`` is delta-seconds. Policies counted in other units than requests
   (``qu``) are skipped. Token names (the draft's own example §B.3.1 writes ``quota;q=100``) are
   accepted like Strings.
2. The older drafts (−00 to −06): ``RateLimit-Limit``, ``-Remaining``, ``-Reset`` (delta-seconds);
   the window from a quota policy ``10;w=1`` in ``RateLimit-Limit`` (−00 to −02) or in the
   Integer items of ``RateLimit-Policy`` (−03 to −06) whose quota equals the limit.
3. ``X-RateLimit-Limit``, ``-Remaining``, ``-Used``, ``-Reset`` (GitHub: reset in UTC epoch
   seconds, ``x-ratelimit-resource`` names the policy; others send delta-seconds). The window is
   not announced: the caller may pass the provider's documented one. A missing limit is
   ``used + remaining`` (Reddit omits it).
4. Discogs: ``X-Discogs-Ratelimit``, ``-Used``, ``-Remaining``, per moving 60 s window, no reset
   (PROVIDERS.md §3), read by :func:`scrapy_apigw.core.ratelimit.parse_quota_headers`.

**Reset: epoch or delta.** Reading an epoch as a delay is a real bug ("Retry after 1792152901
seconds", crunchtools/mcp-github v1.3.1). With ``reset_format="auto"`` a value above 1e9 is an
epoch (express-rate-limit's ratelimit-header-parser heuristic; 1e9 s is 31 years as a delay), a
value with letters is an HTTP-date, anything else is delta-seconds. An epoch or date is measured
against the response's ``Date`` header when it has a valid one (so a skewed local clock does not
matter; the TODO of that parser), else against *now*. ``reset_format="delta"`` or ``"epoch"``
overrides the guess for a provider known to use one.

**Retry-After takes precedence** (draft-10 §7: "the Retry-After field MUST take precedence and
the reset parameter MAY be ignored"). This module does not read it: the caller parses it with
:func:`scrapy_apigw.core.retry.parse_retry_after` and, when present, pauses for it instead of for
:meth:`AnnouncedQuota.pause_seconds`; the announced limit and window still set the ceiling.

**Malformed fields are ignored** (draft-10 §7: "Malformed RateLimit header fields MUST be
ignored"): a field that does not parse counts as absent; an item with a parameter of the wrong
type is dropped. Nothing here raises on any header value.

Headers appearing several times must be passed joined with ``", "`` (RFC 9110 §5.3) for the
Structured Field lists to see every line; the gateway's mapping keeps the last line only.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeGuard

import http_sf

from scrapy_apigw.core.adaptive import quota_ceiling
from scrapy_apigw.core.ratelimit import parse_quota_headers
from scrapy_apigw.core.retry import http_date

__all__ = [
    "DISCOGS_WINDOW",
    "EPOCH_THRESHOLD",
    "AnnouncedQuota",
    "QuotaSource",
    "ResetFormat",
    "parse_ratelimit_headers",
]

ResetFormat = Literal["auto", "delta", "epoch"]
"""How a reset value is read: guessed (``auto``), delta-seconds, or epoch seconds."""

#: A reset number above this is an epoch in ``auto`` mode (September 2001).
EPOCH_THRESHOLD = 1_000_000_000

#: Discogs' moving window, seconds (PROVIDERS.md §3).
DISCOGS_WINDOW = 60.0

_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_LETTER = re.compile(r"[A-Za-z]")


class QuotaSource(str, enum.Enum):
    """The header family an announcement came from; values are the lower-case header names."""

    IETF = "ratelimit"  # draft-10 RateLimit / RateLimit-Policy structured fields
    IETF_LEGACY = "ratelimit-limit"  # drafts -00 to -06: RateLimit-Limit/-Remaining/-Reset
    X_RATELIMIT = "x-ratelimit"  # X-RateLimit-Limit/-Remaining/-Used/-Reset (GitHub and many)
    DISCOGS = "x-discogs-ratelimit"  # X-Discogs-Ratelimit/-Used/-Remaining


@dataclass(frozen=True)
class AnnouncedQuota:
    """A provider's quota as announced by one response; ``None`` where not announced.

    Attributes:
        source: the header family read.
        limit: requests allowed per window (the quota), >= 0.
        remaining: requests left in the current window, >= 0.
        used: requests used in the current window, >= 0 (Discogs, GitHub).
        reset: seconds from now until quota is made available again, >= 0.
        window: window length, seconds, > 0.
        policy: the policy's name (IETF policy, GitHub ``x-ratelimit-resource``).
    """

    source: QuotaSource
    limit: int | None = None
    remaining: int | None = None
    used: int | None = None
    reset: float | None = None
    window: float | None = None
    policy: str | None = None

    def pause_seconds(self) -> float | None:
        """Seconds to pause the provider when the quota is used up (``remaining == 0``).

        Returns:
            ``reset`` when ``remaining`` is 0 and a reset is known, else None. A Retry-After on
            the same response takes precedence over this (draft-10 §7).
        """
        if self.remaining == 0 and self.reset is not None:
            return self.reset
        return None

    def ceiling(self) -> tuple[float, int] | None:
        """``(rate req/s, burst tokens)`` that keep within the announced quota, or None.

        Needs a limit >= 1 and a window; see :func:`scrapy_apigw.core.adaptive.quota_ceiling`.
        """
        if self.limit is None or self.limit < 1 or self.window is None:
            return None
        return quota_ceiling(self.limit, self.window)


def parse_ratelimit_headers(
    headers: Mapping[str, str | bytes],
    now: float,
    *,
    reset_format: ResetFormat = "auto",
    window: float | None = None,
) -> AnnouncedQuota | None:
    """Read the quota a response announces (see the module docstring for the rules).

    Args:
        headers: response headers with lower-case names; values as ``str`` or raw ``bytes``.
        now: current wall-clock time, epoch seconds (``time.time()``), to measure an epoch
            reset when the response has no valid ``Date`` header.
        reset_format: how reset values are read: ``"auto"`` (epoch above 1e9, HTTP-date with
            letters, else delta-seconds), ``"delta"`` or ``"epoch"`` (a provider's known format).
        window: the provider's documented window, seconds, used for the ``X-RateLimit-*`` and
            older-draft families when the headers do not announce one.

    Returns:
        The announcement of the first family present (IETF draft-10, older drafts,
        ``X-RateLimit-*``, Discogs), or None. Never raises on header contents.
    """
    reader = _Reader(headers, now, reset_format)
    default_window = window if _positive(window) else None
    for parse in (_ietf, _ietf_legacy, _x_ratelimit, _discogs):
        quota = parse(reader, default_window)
        if quota is not None:
            return quota
    return None


class _Reader:
    """Header access shared by the family parsers: text values, numbers, resets."""

    def __init__(
        self, headers: Mapping[str, str | bytes], now: float, reset_format: ResetFormat
    ) -> None:
        self.headers = headers
        self.format = reset_format
        server_now = http_date(self.text("date"))
        self.reference = server_now if server_now is not None else now

    def text(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            return ""
        # Header bytes are ISO-8859-1 at worst (RFC 9110 §5.5).
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        return text.strip()

    def count(self, name: str) -> int | None:
        """A non-negative whole count; a decimal is floored (Reddit sends ``599.0``)."""
        number = _number(self.text(name))
        return None if number is None else math.floor(number)

    def reset(self, name: str) -> float | None:
        text = self.text(name)
        if self.format == "auto" and _LETTER.search(text):
            when = http_date(text)
            return None if when is None else _seconds(when - self.reference)
        return self.reset_number(_number(text))

    def reset_number(self, number: float | None) -> float | None:
        if number is None:
            return None
        epoch = self.format == "epoch" or (self.format == "auto" and number > EPOCH_THRESHOLD)
        return _seconds(number - self.reference if epoch else number)


def _ietf(reader: _Reader, default_window: float | None) -> AnnouncedQuota | None:
    policies, other_units = _named_policies(_sf_list(reader.text("ratelimit-policy")))
    limits = _service_limits(_sf_list(reader.text("ratelimit")), other_units)
    if limits:
        # The limit closest to exhaustion; an unknown remaining counts as plenty. min() keeps
        # the first of equals.
        name, remaining, reset = min(limits, key=lambda x: math.inf if x[1] is None else x[1])
        quota, window = policies.get(name, (None, None))
        return AnnouncedQuota(
            source=QuotaSource.IETF,
            limit=quota,
            remaining=remaining,
            reset=None if reset is None else reader.reset_number(float(reset)),
            window=window,
            policy=name,
        )
    if policies:
        with_window = [(n, q, w) for n, (q, w) in policies.items() if w is not None]
        if with_window:
            name, quota, window = min(with_window, key=lambda x: x[1] / x[2])
        else:
            name, (quota, window) = next(iter(policies.items()))
        return AnnouncedQuota(source=QuotaSource.IETF, limit=quota, window=window, policy=name)
    return None


def _named_policies(items: list[Any]) -> tuple[dict[str, tuple[int, float | None]], set[str]]:
    """Draft-10 quota policies counted in requests, by name: ``(q, w or None)``; and the names
    of the policies counted in other units (``qu``). Invalid items are dropped."""
    policies: dict[str, tuple[int, float | None]] = {}
    other_units: set[str] = set()
    for item in items:
        name, params = _named_item(item)
        if name is None or name in policies or name in other_units:
            continue
        quota, unit, window = params.get("q"), params.get("qu", "requests"), params.get("w")
        if not _is_count(quota) or not isinstance(unit, str):
            continue
        if window is not None and not (_is_count(window) and window > 0):
            continue
        if unit != "requests":
            other_units.add(name)  # content-bytes, concurrent-requests: not a request rate
            continue
        policies[name] = (quota, None if window is None else float(window))
    return policies, other_units


def _service_limits(
    items: list[Any], other_units: set[str]
) -> list[tuple[str, int | None, int | None]]:
    """Draft-10 service limits ``(name, r, t)`` of request policies; invalid items dropped."""
    limits = []
    for item in items:
        name, params = _named_item(item)
        if name is None or name in other_units:
            continue
        remaining, reset = params.get("r"), params.get("t")
        if remaining is not None and not _is_count(remaining):
            continue
        if reset is not None and not _is_count(reset):
            continue
        limits.append((name, remaining, reset))
    return limits


def _ietf_legacy(reader: _Reader, default_window: float | None) -> AnnouncedQuota | None:
    limit_text = reader.text("ratelimit-limit")
    limit = reader.count("ratelimit-limit")
    windows: dict[int, float] = {}
    if limit is None and limit_text:
        # Drafts -00 to -02: "RateLimit-Limit: 10, 10;w=1, 50;w=60": the first member is the
        # limit, the others quota policies.
        members = _sf_list(limit_text)
        first = members[0][0] if members and isinstance(members[0], tuple) else None
        if _is_count(first):
            limit = first
            windows = _integer_policies(members[1:])
    remaining = reader.count("ratelimit-remaining")
    reset = reader.reset("ratelimit-reset")
    if limit is None and remaining is None and reset is None:
        return None
    windows = windows or _integer_policies(_sf_list(reader.text("ratelimit-policy")))
    window = windows.get(limit) if limit is not None else None
    return AnnouncedQuota(
        source=QuotaSource.IETF_LEGACY,
        limit=limit,
        remaining=remaining,
        reset=reset,
        window=window if window is not None else default_window,
    )


def _integer_policies(items: list[Any]) -> dict[int, float]:
    """Older-draft quota policies ``10;w=1``: window by quota (the first of each quota)."""
    windows: dict[int, float] = {}
    for item in items:
        if not isinstance(item, tuple) or len(item) != 2 or not isinstance(item[1], dict):
            continue
        quota, window = item[0], item[1].get("w")
        if _is_count(quota) and _is_count(window) and window > 0:
            windows.setdefault(quota, float(window))
    return windows


def _x_ratelimit(reader: _Reader, default_window: float | None) -> AnnouncedQuota | None:
    limit = reader.count("x-ratelimit-limit")
    remaining = reader.count("x-ratelimit-remaining")
    used = reader.count("x-ratelimit-used")
    reset = reader.reset("x-ratelimit-reset")
    if limit is None and remaining is None and used is None and reset is None:
        return None
    if limit is None and used is not None and remaining is not None:
        limit = used + remaining
    if remaining is None and limit is not None and used is not None:
        remaining = max(0, limit - used)
    return AnnouncedQuota(
        source=QuotaSource.X_RATELIMIT,
        limit=limit,
        remaining=remaining,
        used=used,
        reset=reset,
        window=default_window,
        policy=reader.text("x-ratelimit-resource") or None,
    )


def _discogs(reader: _Reader, default_window: float | None) -> AnnouncedQuota | None:
    quota = parse_quota_headers(reader.headers, QuotaSource.DISCOGS.value)
    if quota.limit is None and quota.used is None and quota.remaining is None:
        return None
    remaining = quota.remaining
    if remaining is None and quota.limit is not None and quota.used is not None:
        remaining = max(0, quota.limit - quota.used)
    return AnnouncedQuota(
        source=QuotaSource.DISCOGS,
        limit=quota.limit,
        remaining=remaining,
        used=quota.used,
        window=DISCOGS_WINDOW,
    )


def _sf_list(text: str) -> list[Any]:
    """An RFC 9651 List, or ``[]`` when absent or malformed (malformed fields are ignored)."""
    if not text:
        return []
    try:
        parsed = http_sf.parse(text.encode("latin-1", "replace"), tltype="list")
    except Exception:  # any failure means "malformed": the field is ignored (draft-10 §7)
        return []
    return parsed if isinstance(parsed, list) else []


def _named_item(item: Any) -> tuple[str | None, dict[str, Any]]:
    """``(name, parameters)`` of a list member whose value is a String or Token, else None."""
    if not isinstance(item, tuple) or len(item) != 2 or not isinstance(item[1], dict):
        return None, {}
    value, params = item
    if isinstance(value, str):
        return value, params
    if isinstance(value, http_sf.Token):
        return str(value), params
    return None, {}


def _is_count(value: object) -> TypeGuard[int]:
    """True for a non-negative SF Integer (booleans are ints in Python and are excluded)."""
    return type(value) is int and value >= 0


def _number(text: str) -> float | None:
    """A non-negative decimal number (``1*DIGIT [ "." 1*DIGIT ]``), or None."""
    if not _NUMBER.fullmatch(text):
        return None
    number = float(text)
    return number if math.isfinite(number) else None


def _seconds(value: float) -> float | None:
    """A reset in seconds from now: >= 0 (a past reset is now), or None when not finite."""
    return max(0.0, value) if math.isfinite(value) else None


def _positive(value: float | None) -> bool:
    return value is not None and value > 0 and math.isfinite(value)
