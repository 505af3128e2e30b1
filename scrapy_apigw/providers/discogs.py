"""Discogs client: label, catalog number, release date and country (PROVIDERS.md section 3).

Calls (paths relative to ``https://api.discogs.com``; the transport adds
``Authorization: Discogs token=...``, which /database/search requires):

- ``GET /database/search?type=release&artist=<artist>&track=<title>&per_page=N`` (data_type
  ``"search"``). The fielded ``artist`` and ``track`` parameters are used rather than ``q``:
  ``q`` searches every field (labels, notes, credits), while ``track`` makes Discogs return only
  releases whose tracklist has that track, and ``artist`` only that artist's releases;
- ``GET /releases/{id}`` (data_type ``"release"``) for the chosen release, at most
  :data:`MAX_RELEASE_LOOKUPS` times (Discogs allows 60 requests a minute).
"""

from __future__ import annotations

import re
from typing import Any

from rapidfuzz import fuzz

from scrapy_apigw.core.matching import (
    COMPONENT_FLOOR,
    DEFAULT_THRESHOLD,
    artist_score,
    normalize,
    primary_artist,
    strip_featuring,
    title_score,
)
from scrapy_apigw.core.outcome import Outcome, classify_status
from scrapy_apigw.providers.base import ApiCall, Fetch, ProviderResult, TrackContext

__all__ = ["MAX_RELEASE_LOOKUPS", "DiscogsClient", "release_date", "release_fields"]

#: Releases fetched per track at most (the best-ranked first; the next one only when the first
#: does not list the track).
MAX_RELEASE_LOOKUPS = 2
#: Longest artist/track value sent to the search (characters).
MAX_QUERY_VALUE = 200
#: A release whose title scores this much against the track title is "named after the track".
NAMED_AFTER_TRACK = 90.0

_DISAMBIGUATION = re.compile(r"\s*\(\d+\)$")  # "Global Underground (3)" -> "Global Underground"
_RELEASED = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def _clean_name(name: str) -> str:
    """A Discogs artist/label name without its ``(N)`` disambiguation suffix or ``*`` ANV mark."""
    return _DISAMBIGUATION.sub("", name.strip().rstrip("*").strip())


def _year(value: Any) -> int:
    """Search result ``year`` (a string such as ``"2018"``) as an int; unknown sorts last."""
    try:
        year = int(value)
    except (TypeError, ValueError):
        return 9999
    return year if year > 0 else 9999


def release_date(released: Any, year: Any = None) -> str | None:
    """Discogs ``released`` in ISO 8601 reduced precision, else ``year``; None when unknown.

    Discogs writes unknown parts as ``00``: ``"2017-07-00"`` -> ``"2017-07"``,
    ``"1999-00-00"`` -> ``"1999"``; ``"2002-09-30"`` and ``"2005"`` stay. This is the style of
    Spotify's ``release_date`` (``"2013"``, ``"2013-06"``, ``"2013-06-18"``), so the field has one
    format whatever source set it. ``year`` (an int, 0 when unknown) is used when ``released`` is
    missing or unparsable.
    """
    match = _RELEASED.match(released.strip()) if isinstance(released, str) else None
    if match and match.group(1) != "0000":
        parts = [match.group(1)]
        for part in match.groups()[1:]:
            if not part or part == "00":
                break
            parts.append(part)
        return "-".join(parts)
    if isinstance(year, int) and not isinstance(year, bool) and year > 0:
        return str(year)
    return None


def release_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Output fields of a ``GET /releases/{id}`` body.

    ``discogs_id`` (int release id), ``label`` (``labels[0].name`` without Discogs' ``(N)``
    suffix; not set for ``"Not On Label ..."``), ``catalog_number`` (``labels[0].catno``; not set
    when ``"none"``, Discogs' value for self-released records), ``release_date`` (see
    :func:`release_date`), ``release_country`` (``country`` as Discogs writes it: a name such as
    ``"UK"``, ``"Germany"``, not an ISO code).
    """
    fields: dict[str, Any] = {"discogs_id": int(data["id"])}
    labels = [lab for lab in data.get("labels") or [] if isinstance(lab, dict)]
    if labels:
        name = labels[0].get("name")
        # "Not On Label (X Self-released)" is Discogs' placeholder, not a label.
        label = _clean_name(name) if isinstance(name, str) else ""
        if label and not label.casefold().startswith("not on label"):
            fields["label"] = label
        catno = labels[0].get("catno")
        if isinstance(catno, str) and catno.strip() and catno.strip().casefold() != "none":
            fields["catalog_number"] = catno.strip()
    date = release_date(data.get("released"), data.get("year"))
    if date:
        fields["release_date"] = date
    country = data.get("country")
    if isinstance(country, str) and country.strip():
        fields["release_country"] = country.strip()
    return fields


def _lists_track(data: dict[str, Any], title: str) -> bool:
    """True when the release's tracklist has *title* (title score >= 70), or has no tracklist."""
    titles: list[str] = []
    for entry in data.get("tracklist") or []:
        if not isinstance(entry, dict):
            continue
        for item in [entry, *(entry.get("sub_tracks") or [])]:
            if (
                isinstance(item, dict)
                and isinstance(item.get("title"), str)
                and item.get("type_", "track") in ("track", "index")
            ):
                titles.append(item["title"])
    if not titles:
        return True
    return any(title_score(title, t) >= COMPONENT_FLOOR for t in titles)


class DiscogsClient:
    """Discogs part of the waterfall.

    Args:
        per_page: results per search page, 1..100 (Discogs default 50).

    Choosing the release: a search result's ``title`` is ``"Artist - Release Title"`` of the
    RELEASE, not the track, so the artist part decides (``artist_score >= 80``; compilations by
    "Various" drop out). Among those, releases named after the track (a single: title score
    >= 90) come first, then the earliest ``year`` (the original release, whose label and catalog
    number a DJ means), then Discogs' order. The release's tracklist must then list the track
    (title score >= 70, so a remix EP is not taken for the original); otherwise the next
    candidate is fetched, up to :data:`MAX_RELEASE_LOOKUPS` releases.

    Fields produced: see :func:`release_fields`.
    """

    name = "discogs"

    def __init__(self, per_page: int = 5) -> None:
        if not 1 <= per_page <= 100:
            raise ValueError(f"per_page must be 1..100, got {per_page}")
        self.per_page = per_page

    def classify(self, status: int, data: Any) -> Outcome:
        """Classify a Discogs answer (bodies are ``{"message": ...}``).

        ========  ==============================================================
        status    outcome
        ========  ==============================================================
        2xx       SUCCESS
        401       AUTH_FAILED ("You must authenticate to access this resource.")
        403       FORBIDDEN
        404       NOT_FOUND ("Release not found.")
        429       RATE_LIMITED ("You are making requests too quickly.")
        500       SERVER_ERROR, including "Query time exceeded. Please try a simpler query."
        other     400 and other 4xx CLIENT_ERROR, 5xx SERVER_ERROR
        ========  ==============================================================
        """
        return classify_status(status)

    async def enrich(self, track: TrackContext, fetch: Fetch) -> ProviderResult:
        """Search the artist's releases listing the track, then read the best release."""
        artist = primary_artist(track.artist, track.artists)
        title = strip_featuring(track.title)
        if not (artist and title):
            return ProviderResult("skipped", reason="no artist and title")
        params = (
            ("type", "release"),
            ("artist", artist[:MAX_QUERY_VALUE]),
            ("track", title[:MAX_QUERY_VALUE]),
            ("per_page", str(self.per_page)),
        )
        answer = await fetch(self._call("/database/search", "search", params))
        if answer.kind in ("rejected", "forbidden"):
            return ProviderResult("failed", reason=f"search refused (HTTP {answer.status})")
        results = answer.data.get("results") if isinstance(answer.data, dict) else None
        candidates = self._rank(results if answer.kind == "ok" else None, track)
        for release_id in candidates[:MAX_RELEASE_LOOKUPS]:
            release = await fetch(self._call(f"/releases/{release_id}", "release", ()))
            data = release.data if release.kind == "ok" else None
            if isinstance(data, dict) and data.get("id") and _lists_track(data, track.title):
                return ProviderResult("ok", release_fields(data))
        if not candidates:
            return ProviderResult("not_found", reason="no release by this artist")
        return ProviderResult("not_found", reason="track not on the matching releases")

    def _call(self, path: str, data_type: str, params: tuple[tuple[str, str], ...]) -> ApiCall:
        return ApiCall(provider=self.name, data_type=data_type, path=path, params=params)

    @staticmethod
    def _rank(results: Any, track: TrackContext) -> list[int]:
        """Release ids of acceptable search results, best first (see the class docstring)."""
        artists = list(track.artists) or [track.artist]
        wanted = normalize(track.title)
        ranked: list[tuple[float, int, int, int, int]] = []
        for index, result in enumerate(results if isinstance(results, list) else []):
            if not isinstance(result, dict) or result.get("type", "release") != "release":
                continue
            release_id, full_title = result.get("id"), result.get("title")
            if not isinstance(release_id, int) or not isinstance(full_title, str):
                continue
            artist_part, _, release_title = full_title.partition(" - ")
            score = artist_score(artists, [_clean_name(artist_part)])
            if score < DEFAULT_THRESHOLD:
                continue
            named = fuzz.token_set_ratio(wanted, normalize(release_title)) >= NAMED_AFTER_TRACK
            ranked.append(
                (-round(score), -int(named), _year(result.get("year")), index, release_id)
            )
        return [entry[-1] for entry in sorted(ranked)]
