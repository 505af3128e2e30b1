"""Discogs client: label, catalog number, release date and country (PROVIDERS.md section 3).

Calls (paths relative to ``https://api.discogs.com``; the transport adds
``Authorization: Discogs token=...``, which /database/search requires):

- ``GET /database/search?type=release&artist=<artist>&track=<title>&per_page=N`` (data_type
  ``"search"``). The fielded ``artist`` and ``track`` parameters are used rather than ``q``:
  ``q`` searches every field (labels, notes, credits), while ``track`` makes Discogs return only
  releases whose tracklist has that track, and ``artist`` only that artist's releases;
- ``GET /releases/{id}`` (data_type ``"release"``) for the chosen release, at most
  :data:`MAX_RELEASE_LOOKUPS` times (Discogs allows 60 requests a minute), and only when the
  search result is not enough (see :class:`DiscogsClient`): most tracks cost one call.

A search result carries the release's ``id``, ``label[]``, ``catno``, ``year`` (a string) and
``country`` (PROVIDERS.md section 3, fixture ``go-discogs_database_search.json``), i.e. every
output field but the month and day of ``release_date``; it has no tracklist.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from rapidfuzz import fuzz

from scrapy_apigw.core.matching import (
    COMPONENT_FLOOR,
    DEFAULT_THRESHOLD,
    artist_score,
    normalize,
    primary_artist,
    split_version,
    strip_featuring,
    title_score,
)
from scrapy_apigw.core.outcome import Outcome, classify_status
from scrapy_apigw.providers.base import (
    ApiCall,
    Fetch,
    ProviderResult,
    Shape,
    TrackContext,
    check_shape,
    listed,
)

__all__ = [
    "MAX_RELEASE_LOOKUPS",
    "SAVED_RELEASE",
    "SHAPES",
    "DiscogsClient",
    "is_single_of",
    "release_date",
    "release_fields",
    "search_fields",
]

#: Releases fetched per track at most (the best-ranked first; the next one only when the first
#: does not list the track).
MAX_RELEASE_LOOKUPS = 2
#: Longest artist/track value sent to the search (characters).
MAX_QUERY_VALUE = 200
#: A release whose title scores this much against the track title is "named after the track".
NAMED_AFTER_TRACK = 90.0
#: ``calls_saved`` reason (stat ``apigw/discogs/calls_saved/release_from_search``): a release
#: lookup not made because the search result had every field needed and verified the match.
SAVED_RELEASE = "release_from_search"

#: What each call needs from a 2xx body, by data type: a search lists ``results``, a release has
#: its int ``id``; anything less is MALFORMED.
SHAPES: dict[str, Shape] = {
    "search": ("results", list),
    "release": ("id", int),
}

_DISAMBIGUATION = re.compile(r"\s*\(\d+\)$")  # "Global Underground (3)" -> "Global Underground"
_RELEASED = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def _clean_name(name: str) -> str:
    """A Discogs artist/label name without its ``(N)`` disambiguation suffix or ``*`` ANV mark."""
    return _DISAMBIGUATION.sub("", name.strip().rstrip("*").strip())


def _year(value: Any) -> int:
    """Search result ``year`` (a string such as ``"2018"``) as an int; unknown sorts last."""
    try:
        year = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: Infinity
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


def _label_fields(name: Any, catno: Any) -> dict[str, str]:
    """``label`` and ``catalog_number`` of a label name and catalog number (either source)."""
    fields: dict[str, str] = {}
    # "Not On Label (X Self-released)" is Discogs' placeholder, not a label.
    label = _clean_name(name) if isinstance(name, str) else ""
    if label and not label.casefold().startswith("not on label"):
        fields["label"] = label
    if isinstance(catno, str) and catno.strip() and catno.strip().casefold() != "none":
        fields["catalog_number"] = catno.strip()
    return fields


def search_fields(result: dict[str, Any]) -> dict[str, Any]:
    """Output fields of one ``/database/search`` result (a release), without a release call.

    ``discogs_id`` (``id``), ``label`` (``label[0]``: a list of names in today's results, one
    string in older ones; cleaned as in :func:`release_fields`), ``catalog_number`` (``catno``,
    the first label's), ``release_date`` (only the year: the search has no ``released``; ``year``
    is a string such as ``"2018"``, absent when unknown) and ``release_country`` (``country``).
    Raises ``KeyError``/``ValueError`` when *result* has no int ``id`` (the caller ranks only
    results that have one).
    """
    fields: dict[str, Any] = {"discogs_id": int(result["id"])}
    names = result.get("label")
    name = names if isinstance(names, str) else next(iter(listed(names)), None)
    fields.update(_label_fields(name, result.get("catno")))
    year = _year(result.get("year"))
    date = release_date(None, year if year != 9999 else None)
    if date:
        fields["release_date"] = date
    country = result.get("country")
    if isinstance(country, str) and country.strip():
        fields["release_country"] = country.strip()
    return fields


def is_single_of(release_title: str, title: str) -> bool:
    """True when a release titled *release_title* is the single of the track *title*.

    Its base title (version parts aside, see :func:`~scrapy_apigw.core.matching.split_version`)
    scores >= :data:`NAMED_AFTER_TRACK` against the track's, and it names no version or the
    track's own (title score >= 90): ``"Losing It"`` is the single of ``"Losing It"`` and of
    ``"Losing It - Extended Mix"`` or ``"Losing It (ARTBAT Remix)"`` (singles carry their mixes);
    ``"Losing It (ARTBAT Remix)"`` only of that remix; ``"Losing It (Remixes)"``, ``"Losing It
    EP"`` or an album are not singles of ``"Losing It"`` (they may list only other versions).
    """
    base, version = split_version(release_title)
    if version:
        return title_score(title, release_title) >= NAMED_AFTER_TRACK
    return bool(base) and fuzz.ratio(split_version(title)[0], base) >= NAMED_AFTER_TRACK


def release_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Output fields of a ``GET /releases/{id}`` body.

    ``discogs_id`` (int release id), ``label`` (``labels[0].name`` without Discogs' ``(N)``
    suffix; not set for ``"Not On Label ..."``), ``catalog_number`` (``labels[0].catno``; not set
    when ``"none"``, Discogs' value for self-released records), ``release_date`` (see
    :func:`release_date`), ``release_country`` (``country`` as Discogs writes it: a name such as
    ``"UK"``, ``"Germany"``, not an ISO code).
    """
    fields: dict[str, Any] = {"discogs_id": int(data["id"])}
    labels = [lab for lab in listed(data.get("labels")) if isinstance(lab, dict)]
    if labels:
        fields.update(_label_fields(labels[0].get("name"), labels[0].get("catno")))
    date = release_date(data.get("released"), data.get("year"))
    if date:
        fields["release_date"] = date
    country = data.get("country")
    if isinstance(country, str) and country.strip():
        fields["release_country"] = country.strip()
    return fields


def _credited(entry: dict[str, Any]) -> list[str] | None:
    """Artist names credited on one tracklist entry, or None when it credits none."""
    names = [
        _clean_name(a["name"])
        for a in listed(entry.get("artists"))
        if isinstance(a, dict) and isinstance(a.get("name"), str) and a["name"].strip()
    ]
    return names or None


def _overlap(artists: Sequence[str], credit: Sequence[str]) -> float:
    """Artist score of the better direction: either credit found in the other."""
    return max(artist_score(artists, credit), artist_score(credit, artists))


def _lists_track(data: dict[str, Any], title: str, artists: Sequence[str] = ()) -> bool:
    """True when the release's tracklist has the track, or has no tracklist.

    Tracklist entries (PROVIDERS.md section 3; go-discogs ``releases_71989``): ``type_``
    ``"track"``, ``"heading"`` (a section title such as the release's name, not a track) or
    ``"index"`` (a group whose parts are its ``sub_tracks``); an entry may credit its own
    ``artists``, and a sub-track without any inherits its index entry's. A track matches when
    its title scores >= 70 against *title* and, if it credits artists, the credits overlap: the
    entry's artists are found among *artists* or the other way round (artist score >= 80 in
    either direction: the item may credit a guest the entry leaves out, or the reverse). A
    split or compilation release lists other artists' tracks, maybe of the same title.
    """
    candidates: list[tuple[str, list[str] | None]] = []
    for entry in listed(data.get("tracklist")):
        if not isinstance(entry, dict) or entry.get("type_", "track") not in ("track", "index"):
            continue
        own = _credited(entry)
        for item in [entry, *listed(entry.get("sub_tracks"))]:
            if (
                isinstance(item, dict)
                and isinstance(item.get("title"), str)
                and item.get("type_", "track") in ("track", "index")
            ):
                candidates.append((item["title"], _credited(item) or own))
    if not candidates:
        return True
    return any(
        title_score(title, name) >= COMPONENT_FLOOR
        and (credit is None or not artists or _overlap(artists, credit) >= DEFAULT_THRESHOLD)
        for name, credit in candidates
    )


class DiscogsClient:
    """Discogs part of the waterfall.

    Args:
        per_page: results per search page, 1..100 (Discogs default 50).

    Choosing the release: a search result's ``title`` is ``"Artist - Release Title"`` of the
    RELEASE, not the track, so the artist part decides (``artist_score >= 80``; compilations by
    "Various" drop out). Among those, releases named after the track (a single: title score
    >= 90) come first, then the earliest ``year`` (the original release, whose label and catalog
    number a DJ means), then Discogs' order. The release's tracklist must then list the track
    (title score >= 70, so a remix EP is not taken for the original; headings are not tracks,
    index entries' sub-tracks are, and a track crediting its own artists must credit the
    track's, artist score >= 80); otherwise the next
    candidate is fetched, up to :data:`MAX_RELEASE_LOOKUPS` releases.

    When the release is not fetched: a candidate that is the track's single
    (:func:`is_single_of`: named after the track, by the track's artist, as the ranking already
    checked) is taken from its search result alone (:func:`search_fields`), unless an item
    needs a field only the release has. The tracklist check is then left to Discogs' own
    ``track=`` filter, which returns only releases whose tracklist has a track of those words;
    the client's stricter check is not repeated for a release named after the track by its
    artist. What that gives up: a remix-only release titled exactly like the track (no
    "Remixes" in its name) is taken for the original. Albums, EPs, "(Remixes)" releases,
    splits and compilations are always fetched and checked as above.

    Fields the release has and the search lacks: the month and day of ``release_date`` (the
    search has the year only). The release is fetched for it only when no earlier provider
    of the waterfall found a ``release_date`` (``track.found``; Spotify's album date and
    MusicBrainz' first release date come first), and a fetched release is always checked
    (its tracklist must list the track, else the next candidate). Each release lookup skipped
    counts in ``calls_saved`` as :data:`SAVED_RELEASE`.

    Fields produced: see :func:`release_fields` (release fetched) and :func:`search_fields`.
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

    def check_shape(self, call: ApiCall, data: Any) -> str | None:
        """What a 2xx body lacks for *call* (see :data:`SHAPES`), or None."""
        return check_shape(SHAPES, call, data)

    def early_calls(self, track: TrackContext) -> list[ApiCall]:
        """The search, built from the input's artist and title alone: the waterfall may send
        it before earlier providers answer (:class:`~scrapy_apigw.enrichment.waterfall.
        EarlyCalls`). Empty when there is nothing to search."""
        search = self._search_call(track)
        return [search] if search is not None else []

    async def enrich(self, track: TrackContext, fetch: Fetch) -> ProviderResult:
        """Search the artist's releases listing the track, then read the best release."""
        search = self._search_call(track)
        if search is None:
            return ProviderResult("skipped", reason="no artist and title")
        answer = await fetch(search)
        if answer.kind in ("rejected", "forbidden"):
            return ProviderResult("failed", reason=f"search refused (HTTP {answer.status})")
        results = answer.data.get("results") if isinstance(answer.data, dict) else None
        candidates = self._rank(results if answer.kind == "ok" else None, track)
        needs_release = "release_date" not in track.found
        for result in candidates[:MAX_RELEASE_LOOKUPS]:
            _, _, release_title = result["title"].partition(" - ")
            if not needs_release and is_single_of(release_title, track.title):
                return ProviderResult("ok", search_fields(result), calls_saved={SAVED_RELEASE: 1})
            release = await fetch(self._call(f"/releases/{result['id']}", "release", ()))
            data = release.data if release.kind == "ok" else None
            wanted = list(track.artists) or [track.artist]
            if (
                isinstance(data, dict)
                and data.get("id")
                and _lists_track(data, track.title, wanted)
            ):
                return ProviderResult("ok", release_fields(data))
        if not candidates:
            return ProviderResult("not_found", reason="no release by this artist")
        return ProviderResult("not_found", reason="track not on the matching releases")

    def _search_call(self, track: TrackContext) -> ApiCall | None:
        """The release search for *track*'s primary artist and title (featuring stripped);
        None without both."""
        artist = primary_artist(track.artist, track.artists)
        title = strip_featuring(track.title)
        if not (artist and title):
            return None
        params = (
            ("type", "release"),
            ("artist", artist[:MAX_QUERY_VALUE]),
            ("track", title[:MAX_QUERY_VALUE]),
            ("per_page", str(self.per_page)),
        )
        return self._call("/database/search", "search", params)

    def _call(self, path: str, data_type: str, params: tuple[tuple[str, str], ...]) -> ApiCall:
        return ApiCall(provider=self.name, data_type=data_type, path=path, params=params)

    @staticmethod
    def _rank(results: Any, track: TrackContext) -> list[dict[str, Any]]:
        """Acceptable search results (each with an int ``id`` and a str ``title``), best first
        (see the class docstring)."""
        artists = list(track.artists) or [track.artist]
        wanted = normalize(track.title)
        ranked: list[tuple[float, int, int, int, dict[str, Any]]] = []
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
            ranked.append((-round(score), -int(named), _year(result.get("year")), index, result))
        return [entry[-1] for entry in sorted(ranked, key=lambda entry: entry[:4])]
