"""Match quality: score enriched items against ground truth, per provider (issue 9, section 1).

Pure functions over plain data: the items (mappings as a feed writes them, e.g. JSON Lines of
the ``tracklists`` spider) and the truth rows of :func:`scrapy_apigw.sandbox.truth.ground_truth`
(or ``GET /_sandbox/truth``), joined on ``(tracklist number, position)``. No sandbox, network or
clock is involved, so the same scoring serves the benchmark, unit tests and any recorded run.

Per provider (:data:`PROVIDER_FIELDS` names the item field scored for each; the ISRC is scored
on its own, as Spotify and MusicBrainz both fill it), over the items that have a truth row:

- ``findable``: the truth has a value (the track exists there and the row names it);
- ``filled``: the item has a value (not ``None``, not ``""``);
- ``correct``: filled and equal to the truth (as strings, stripped, case-insensitive);
- ``wrong``: filled and not correct, including a value where nothing was findable;
- ``missed``: findable and not filled (a wrong value is counted as ``wrong``, not missed,
  so ``findable == correct + missed + wrong on findable rows``);
- ``wrong_match_rate`` = wrong / filled (0 when nothing is filled);
- ``recall`` = correct / findable (0 when nothing is findable).

Targets of issue 9: wrong-match rate < 0.5 %, recall >= 95 % of the findable tracks
(:data:`TARGET_WRONG_MATCH_RATE`, :data:`TARGET_RECALL`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PROVIDER_FIELDS",
    "TARGET_RECALL",
    "TARGET_WRONG_MATCH_RATE",
    "ProviderScore",
    "breakdown",
    "format_table",
    "item_key",
    "score_items",
    "truth_index",
]

#: provider (row of the table) -> item field scored
PROVIDER_FIELDS: dict[str, str] = {
    "spotify": "spotify_id",
    "isrc": "isrc",
    "musicbrainz": "musicbrainz_id",
    "discogs": "discogs_id",
    "lastfm": "lastfm_listeners",
}
TARGET_WRONG_MATCH_RATE = 0.005
TARGET_RECALL = 0.95
_TRACKLIST_NUMBER = re.compile(r"/tracklists/(\d+)(?:[/?#]|$)")

Key = tuple[int, int]


@dataclass
class ProviderScore:
    """The counts of one provider (see the module docstring for their definitions)."""

    provider: str
    field: str
    filled: int = 0
    correct: int = 0
    wrong: int = 0
    missed: int = 0
    findable: int = 0

    @property
    def wrong_match_rate(self) -> float:
        """wrong / filled, 0.0 when nothing was filled."""
        return self.wrong / self.filled if self.filled else 0.0

    @property
    def recall(self) -> float:
        """correct / findable, 0.0 when nothing was findable."""
        return self.correct / self.findable if self.findable else 0.0

    def meets_targets(self) -> bool:
        """True when wrong-match rate < 0.5 % and recall >= 95 %."""
        return self.wrong_match_rate < TARGET_WRONG_MATCH_RATE and self.recall >= TARGET_RECALL

    def as_dict(self) -> dict[str, Any]:
        """The counts and both rates (rounded to 4 places), for JSON."""
        return {
            "provider": self.provider,
            "field": self.field,
            "filled": self.filled,
            "correct": self.correct,
            "wrong": self.wrong,
            "missed": self.missed,
            "findable": self.findable,
            "wrong_match_rate": round(self.wrong_match_rate, 4),
            "recall": round(self.recall, 4),
        }


def item_key(item: Mapping[str, Any]) -> Key | None:
    """``(tracklist number, position)`` of an item of the ``tracklists`` spider, from its
    ``tracklist_url`` (``.../site/tracklists/<n>``) and ``position``; ``None`` if absent."""
    match = _TRACKLIST_NUMBER.search(str(item.get("tracklist_url") or ""))
    position = item.get("position")
    if match is None or not isinstance(position, int):
        return None
    return int(match.group(1)), position


def truth_index(rows: Iterable[Mapping[str, Any]]) -> dict[Key, Mapping[str, Any]]:
    """Truth rows keyed by ``(tracklist, position)``."""
    return {(int(r["tracklist"]), int(r["position"])): r for r in rows}


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != []


def _same(value: Any, expected: Any) -> bool:
    return str(value).strip().casefold() == str(expected).strip().casefold()


def score_items(
    items: Iterable[Mapping[str, Any]],
    truth: Mapping[Key, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
    *,
    key: Callable[[Mapping[str, Any]], Key | None] = item_key,
    fields: Mapping[str, str] = PROVIDER_FIELDS,
) -> tuple[dict[str, ProviderScore], int]:
    """Score *items* against *truth*.

    Args:
        items: enriched items (mappings).
        truth: truth rows keyed by ``(tracklist, position)`` (:func:`truth_index`), or the list
            of rows itself.
        key: the truth key of an item (default :func:`item_key`).
        fields: provider -> item field to score (default :data:`PROVIDER_FIELDS`).

    Returns:
        ``(scores, unmatched)``: a :class:`ProviderScore` per provider, and how many items had
        no truth row (not scored).
    """
    index = truth if isinstance(truth, Mapping) else truth_index(truth)
    scores = {p: ProviderScore(p, f) for p, f in fields.items()}
    unmatched = 0
    for item in items:
        k = key(item)
        row = index.get(k) if k is not None else None
        if row is None:
            unmatched += 1
            continue
        for score in scores.values():
            value, expected = item.get(score.field), row.get(score.field)
            filled, findable = _present(value), _present(expected)
            score.filled += filled
            score.findable += findable
            if filled and findable and _same(value, expected):
                score.correct += 1
            elif filled:
                score.wrong += 1
            elif findable:
                score.missed += 1
    return scores, unmatched


#: item field -> the id key of a decoy in ``GET /_sandbox/catalog``'s ``decoys``
_DECOY_ID_KEYS = {
    "spotify_id": "spotify_id",
    "isrc": "isrc",
    "musicbrainz_id": "musicbrainz_recording_id",
    "discogs_id": "discogs_release_id",
}


def breakdown(
    items: Iterable[Mapping[str, Any]],
    truth: Mapping[Key, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
    decoys: Iterable[Mapping[str, Any]] = (),
    *,
    key: Callable[[Mapping[str, Any]], Key | None] = item_key,
    fields: Mapping[str, str] = PROVIDER_FIELDS,
) -> dict[str, dict[str, dict[str, int]]]:
    """Why values were wrong or missed, per provider.

    Args:
        items, truth, key, fields: as for :func:`score_items`.
        decoys: the decoy records (``GET /_sandbox/catalog``'s ``decoys``, or
            :meth:`~scrapy_apigw.sandbox.catalog.Catalog.decoy_summary`).

    Returns:
        ``{provider: {"wrong": {cause: n}, "missed": {style: n}}}``. A wrong value's cause is
        the family of the decoy it names (``"compilation"``...), ``"not findable"`` when the
        row had nothing to find, else ``"other"`` (another catalog track, or a value no record
        has). A miss is counted under the row's messy style (``"original_mix"``...), or
        ``"clean"`` for a row written as catalogued.
    """
    index = truth if isinstance(truth, Mapping) else truth_index(truth)
    families: dict[str, dict[str, str]] = {f: {} for f in _DECOY_ID_KEYS}
    for d in decoys:
        for field, id_key in _DECOY_ID_KEYS.items():
            value = d.get(id_key)
            if value is not None:  # a shared ISRC equals the truth: never counted wrong
                families[field][str(value).casefold()] = str(d.get("family"))
    out: dict[str, dict[str, dict[str, int]]] = {p: {"wrong": {}, "missed": {}} for p in fields}
    for item in items:
        k = key(item)
        row = index.get(k) if k is not None else None
        if row is None:
            continue
        for provider, field in fields.items():
            value, expected = item.get(field), row.get(field)
            if _present(value) and not (_present(expected) and _same(value, expected)):
                if not _present(expected):
                    cause = "not findable"
                else:
                    cause = families.get(field, {}).get(str(value).strip().casefold(), "other")
                wrong = out[provider]["wrong"]
                wrong[cause] = wrong.get(cause, 0) + 1
            elif not _present(value) and _present(expected):
                style = str(row.get("style") or "clean")
                missed = out[provider]["missed"]
                missed[style] = missed.get(style, 0) + 1
    return out


def format_table(scores: Mapping[str, ProviderScore]) -> str:
    """A markdown table: per provider the counts, wrong-match rate and recall (in %)."""
    lines = [
        "| provider | field | filled | correct | wrong | missed | findable | wrong-match "
        "| recall |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in scores.values():
        lines.append(
            f"| {s.provider} | `{s.field}` | {s.filled} | {s.correct} | {s.wrong} | {s.missed} "
            f"| {s.findable} | {100 * s.wrong_match_rate:.1f} % | {100 * s.recall:.1f} % |"
        )
    return "\n".join(lines)
