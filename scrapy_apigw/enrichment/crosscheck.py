"""Cross-checks between providers: disagreeing providers are not silently merged (pure).

Each provider's result carries ``evidence`` of the record it matched (``isrcs``,
``duration_ms``) and ``match`` (``{"confidence", "by"}``). Two providers that matched the same
track disagree when:

- their ISRC lists are both known and share no ISRC (``field: "isrc"``);
- their durations are both known and differ by more than :data:`DURATION_TOLERANCE_MS`
  (5 s: providers round and trim silence by a second or two; an edit differs by tens of
  seconds) (``field: "duration_ms"``).

A disagreement is reported as ``{"field", "providers", "values"}`` in ``enrichment_conflicts``.
When one side matched by an identifier (``"id"``/``"isrc"``) and the other by a text search,
the identifier lookup is preferred: the text search's result is withheld (its fields are not
merged; it counts as "not found", with a reason naming the disagreement).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scrapy_apigw.providers.base import ProviderResult

__all__ = ["DURATION_TOLERANCE_MS", "IDENTIFIER_MATCHES", "cross_check"]

#: Durations further apart than this (ms) are another recording (issue 9: "> 5 s").
DURATION_TOLERANCE_MS = 5000
#: ``match["by"]`` values that are an identifier lookup.
IDENTIFIER_MATCHES = frozenset({"id", "isrc"})


def _value(evidence: Mapping[str, Any], name: str) -> Any:
    if name == "isrc":
        isrcs = evidence.get("isrcs") or []
        return isrcs[0] if len(isrcs) == 1 else list(isrcs)
    return evidence.get(name)


def _disagree(name: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    if name == "isrc":
        left, right = set(a.get("isrcs") or ()), set(b.get("isrcs") or ())
        return bool(left and right) and not left & right
    x, y = a.get("duration_ms"), b.get("duration_ms")
    return isinstance(x, int) and isinstance(y, int) and abs(x - y) > DURATION_TOLERANCE_MS


def _by_identifier(result: ProviderResult) -> bool:
    """True for a lookup by an identifier the input gave (not one an earlier provider found:
    ``"via"``, that lookup only repeats the earlier match)."""
    match = result.match or {}
    return match.get("by") in IDENTIFIER_MATCHES and not match.get("via")


def cross_check(
    results: Mapping[str, ProviderResult],
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """``(conflicts, withheld)`` of *results* (provider -> result, in waterfall order).

    ``conflicts``: ``[{"field": "isrc", "providers": ["spotify", "musicbrainz"], "values":
    ["GBAAA9900303", "GBAAA9900999"]}]`` in waterfall order of the pairs. ``withheld``:
    provider -> reason for each text-search result that disagrees with an identifier lookup
    (``"disagrees with spotify (isrc)"``).
    """
    matched = [(n, r) for n, r in results.items() if r.status == "ok" and r.evidence]
    conflicts: list[dict[str, Any]] = []
    withheld: dict[str, str] = {}
    for i, (first, a) in enumerate(matched):
        for second, b in matched[i + 1 :]:
            for name in ("isrc", "duration_ms"):
                if not _disagree(name, a.evidence, b.evidence):
                    continue
                conflicts.append(
                    {
                        "field": name,
                        "providers": [first, second],
                        "values": [_value(a.evidence, name), _value(b.evidence, name)],
                    }
                )
                if _by_identifier(a) and not _by_identifier(b):
                    withheld.setdefault(second, f"disagrees with {first} ({name})")
                elif _by_identifier(b) and not _by_identifier(a):
                    withheld.setdefault(first, f"disagrees with {second} ({name})")
    return conflicts, withheld
