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
from typing import Any, NamedTuple

from rapidfuzz import fuzz

from scrapy_apigw.core.confidence import (
    DEFAULT_MIN_CONFIDENCE,
    Candidate,
    Wanted,
    _part_tags,
    confidence,
    confidences,
    parse_title,
)
from scrapy_apigw.core.matching import (
    DEFAULT_THRESHOLD,
    artist_score,
    normalize,
    primary_artist,
    split_version,
    title_score,
)
from scrapy_apigw.core.outcome import Outcome, classify_status
from scrapy_apigw.core.scraped import search_title
from scrapy_apigw.providers.auth import HeaderAuth
from scrapy_apigw.providers.base import (
    ApiCall,
    Fetch,
    ProviderResult,
    Shape,
    TrackContext,
    check_shape,
    listed,
    match_of,
)
from scrapy_apigw.providers.registry import DAY, ProviderConfig
from scrapy_apigw.providers.spec import Credential, ProviderSpec

__all__ = [
    "MAX_RELEASE_LOOKUPS",
    "PROVIDER",
    "SAVED_RELEASE",
    "SHAPES",
    "DiscogsClient",
    "SearchChoice",
    "is_single_of",
    "known_year",
    "release_date",
    "release_fields",
    "search_fields",
]

#: Releases fetched per track at most (the best-ranked first; the next one only when the first
#: does not list the track). Three: an artist's releases named after a track are often the
#: single and one or two releases of its other versions (radio edit, remixes), in any year
#: order.
MAX_RELEASE_LOOKUPS = 3
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


def known_year(track: TrackContext) -> int | None:
    """The year the track first came out by the earlier providers of the waterfall, or None.

    The earliest year among the ``release_date`` values they found (``track.found_values``:
    Spotify's album date, MusicBrainz' ``first-release-date``, any ISO 8601 precision); the
    earliest, because a later one is often a reissue's (a remaster album on Spotify). ``"0000"``
    (Spotify's unknown date) and unparsable values are left out.
    """
    years = []
    for value in track.found_values.get("release_date", {}).values():
        # The field's one format whatever source set it (see release_date): ISO 8601 dates.
        match = _RELEASED.match(value.strip()) if isinstance(value, str) else None
        if match and int(match.group(1)) > 0:
            years.append(int(match.group(1)))
    return min(years) if years else None


def _master(result: dict[str, Any]) -> Any:
    """A search result's master (represses share it), or its own id when it has none."""
    return result.get("master_id") or result["id"]


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


def _seconds(value: Any) -> int | None:
    """A tracklist ``duration`` in ms: ``"7:05"`` / ``"1:02:03"`` (the API) or an int of
    seconds (some client libraries); None when empty or unparsable."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value * 1000 if value > 0 else None
    if not isinstance(value, str) or not re.fullmatch(r"\d+(?::\d{1,2}){1,2}", value.strip()):
        return None
    total = 0
    for part in value.strip().split(":"):
        total = total * 60 + int(part)
    return total * 1000 if total > 0 else None


def _is_compilation(data: dict[str, Any]) -> bool:
    """True when a release's formats describe it as a ``Compilation``."""
    return any(
        isinstance(f, dict) and "Compilation" in listed(f.get("descriptions"))
        for f in listed(data.get("formats"))
    )


def track_confidence(
    data: dict[str, Any],
    wanted: Wanted,
    minimum: float = DEFAULT_MIN_CONFIDENCE,
    release_credit: Sequence[str] = (),
) -> float | None:
    """The confidence that the release *data* has the *wanted* track, or None below *minimum*.

    Tracklist entries (PROVIDERS.md section 3; go-discogs ``releases_71989``): ``type_``
    ``"track"``, ``"heading"`` (a section title such as the release's name, not a track) or
    ``"index"`` (a group whose parts are its ``sub_tracks``); an entry may credit its own
    ``artists``, and a sub-track without any inherits its index entry's; an entry crediting
    none is taken as the wanted artists' (the search ranking already matched the release's
    artist, :meth:`DiscogsClient._rank`); with no wanted artists, any credit is accepted.
    Each track is a :class:`~scrapy_apigw.core.confidence.Candidate`: the version is in its
    title (``"Strobe (Club Edit)"``), its ``duration`` (``"7:05"``) is compared, and a
    ``Compilation`` release is a compilation appearance. A split or compilation release lists
    other artists' tracks, maybe of the same title: they score low on the artist part. A release
    without a tracklist is judged by its title. *release_credit* (the search result's
    ``"Artist"`` part) is added to an uncredited entry's artists, so a release credited to
    ``"A & Guest"`` counts its guest (the confidence's extra-artist factor).
    """
    if not any(wanted.artists):
        wanted = Wanted(wanted.title, ["(any)"], wanted.duration_ms, wanted.isrc)
        release_artists: list[str] = ["(any)"]
        any_credit = True
    else:
        release_artists = list(wanted.artists) + list(release_credit)
        any_credit = False
    compilation = _is_compilation(data)
    candidates: list[Candidate] = []
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
                candidates.append(
                    Candidate(
                        title=item["title"],
                        artists=(None if any_credit else _credited(item) or own) or release_artists,
                        duration_ms=_seconds(item.get("duration")),
                        compilation=compilation,
                    )
                )
    if not candidates:
        title = data.get("title")
        candidates.append(Candidate(str(title or ""), release_artists, compilation=compilation))
    best = max(confidences(wanted, candidates))
    return best if best >= minimum else None


def _lists_track(data: dict[str, Any], title: str, artists: Sequence[str] = ()) -> bool:
    """True when the release *data* lists the track *title* by *artists* with the default
    confidence (see :func:`track_confidence`)."""
    return track_confidence(data, Wanted(title, list(artists))) is not None


def _search_confidence(result: dict[str, Any], wanted: Wanted) -> float:
    """:func:`single_confidence` of a search result (its ``"Artist - Release Title"``)."""
    artist_part, _, release_title = result["title"].partition(" - ")
    return single_confidence(release_title, _clean_name(artist_part), wanted)


def single_confidence(release_title: str, artist: str, wanted: Wanted) -> float:
    """Confidence of a single named after the track, from its search result alone.

    The single carries the track's versions (``"Losing It"`` has ``"Losing It - Extended
    Mix"``), so a release title naming no version is compared with the track's base title;
    one naming a version must be the track's version.
    """
    if not parse_title(release_title)[1]:
        wanted = Wanted(parse_title(wanted.title)[0], wanted.artists)
    return confidence(wanted, Candidate(release_title, [artist]))


class SearchChoice(NamedTuple):
    """A release taken from its search result alone (:meth:`DiscogsClient._from_search`)."""

    #: The search result (a release).
    result: dict[str, Any]
    #: The match confidence (:func:`single_confidence`).
    confidence: float
    #: True: taken before any release is read; False: once the candidates ranked before it
    #: have been read and found without the track.
    at_once: bool


def _from_search_result(chosen: SearchChoice) -> ProviderResult:
    """The result of a release taken from its search result (:func:`search_fields`)."""
    return ProviderResult(
        "ok",
        search_fields(chosen.result),
        calls_saved={SAVED_RELEASE: 1},
        match=match_of(chosen.confidence, "search"),
    )


class DiscogsClient:
    """Discogs part of the waterfall.

    Args:
        per_page: results per search page, 1..100 (Discogs default 50).

    Choosing the release: a search result's ``title`` is ``"Artist - Release Title"`` of the
    RELEASE, not the track, so the artist part decides (``artist_score >= 80``; compilations by
    "Various" drop out; so do cover releases, ``"Made Famous by X"``, ``"A Tribute to X"``,
    unless the scraped title names a cover). Among those, releases named after the track (a
    single: title score >= 90) come first, then those of the year the track came out by the
    earlier providers (:func:`known_year`), then the earliest ``year`` (the original release,
    whose label and catalog number a DJ means), then Discogs' order. The release's tracklist
    must then list the track in the scraped version (:func:`track_confidence` at least
    ``APIGW_MIN_MATCH_CONFIDENCE``: a remix EP is not taken for the original; headings are not
    tracks, index entries' sub-tracks are, and a track crediting its own artists must credit
    the track's); otherwise the next candidate is fetched, up to :data:`MAX_RELEASE_LOOKUPS`
    releases. A release matching with a doubt (confidence below 1) is kept while the next
    candidates are looked at; the most confident is taken.

    When the release is not fetched: a candidate that is the track's single
    (:func:`is_single_of`: named after the track, by the track's artist, as the ranking already
    checked), and the only one so named (represses share its ``master_id``), is taken from
    its search result alone (:func:`search_fields`), unless an item needs a field only the
    release has. The tracklist check is then left to Discogs' own ``track=`` filter, which
    returns only releases whose tracklist has a track of those words. What that gives up: a
    remix-only release titled exactly like the track (no "Remixes" in its name) and alone so
    named is taken for the original.

    Several masters named after the track (the single, and releases of its other versions
    titled alike: a radio edit, an acoustic or VIP version, a guest version "A & G - Title";
    ``track=`` matches them all, since their tracklists have the title's words) are told
    apart by the year, which every search result carries: the one of them that came out in
    the year the earlier providers date the track (:func:`known_year`: Spotify's album date,
    MusicBrainz' first release of the recording), credited to exactly the track's artists
    under exactly its title (:func:`single_confidence` 1.0: a guest credit the scraped track
    does not name is a doubt, left to the tracklist), is taken from its search result when
    it is the only master so dated. A release of another version titled alike is often of
    another year (remixes and re-edits follow the original, remasters come years later).
    When one shares the year, or a release so named has no year (it may be of that year
    too), or the dates disagree (a reissue's date on Spotify), the candidates are fetched
    and checked as above, those of the track's year first. What it gives up: a track without
    a release of its own, whose other version alone came out that year under its plain
    title, is taken for that version (as with the one-single rule). Albums, EPs, "(Remixes)"
    releases, splits and compilations are always fetched and checked.

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
        """Search the artist's releases listing the track, then read the best release.

        The match's confidence is the track's in the release (:func:`track_confidence`), or for
        a single taken from its search result :func:`single_confidence`; either must reach
        ``track.min_confidence``.
        """
        search = self._search_call(track)
        if search is None:
            return ProviderResult("skipped", reason="no artist and title")
        answer = await fetch(search)
        if answer.kind in ("rejected", "forbidden"):
            return ProviderResult("failed", reason=f"search refused (HTTP {answer.status})")
        results = answer.data.get("results") if isinstance(answer.data, dict) else None
        candidates = self._rank(results if answer.kind == "ok" else None, track)
        wanted = Wanted(track.title, list(track.artists) or [track.artist], track.duration_ms)
        chosen = self._from_search(candidates, track, wanted)
        if chosen is not None and chosen.at_once:
            return _from_search_result(chosen)
        fallback: tuple[float, dict[str, Any]] | None = None
        for result in candidates[:MAX_RELEASE_LOOKUPS]:
            if chosen is not None and result is chosen.result:
                return _from_search_result(chosen)
            release = await fetch(self._call(f"/releases/{result['id']}", "release", ()))
            data = release.data if release.kind == "ok" else None
            if not (isinstance(data, dict) and data.get("id")):
                continue
            credit = _clean_name(result["title"].partition(" - ")[0])
            found = track_confidence(data, wanted, track.min_confidence, [credit])
            if found is not None and found >= 1.0:
                return ProviderResult("ok", release_fields(data), match=match_of(found, "search"))
            if found is not None and (fallback is None or found > fallback[0]):
                fallback = (found, data)  # a doubt (another credit...): look at the next one
        if fallback is not None:
            return ProviderResult(
                "ok", release_fields(fallback[1]), match=match_of(fallback[0], "search")
            )
        if not candidates:
            return ProviderResult("not_found", reason="no release by this artist")
        return ProviderResult("not_found", reason="track not on the matching releases")

    @staticmethod
    def _from_search(
        candidates: Sequence[dict[str, Any]], track: TrackContext, wanted: Wanted
    ) -> SearchChoice | None:
        """The candidate to take from its search result alone, or None (every candidate is
        then fetched and checked): see the class docstring."""
        if "release_date" not in track.found:
            return None  # the release has the full date, the search result the year only
        singles = [
            r for r in candidates if is_single_of(r["title"].partition(" - ")[2], track.title)
        ]
        if not singles:
            return None
        # Represses share their master; a release of another version titled like the track
        # has its own.
        if len({_master(r) for r in singles}) == 1:
            sure = _search_confidence(singles[0], wanted)
            # Candidates ranked before it (an earlier EP naming the track...) are read first.
            return SearchChoice(singles[0], sure, False) if sure >= track.min_confidence else None
        year = known_year(track)
        if year is None or any(_year(r.get("year")) == 9999 for r in singles):
            return None  # a release of unknown year may be of that year too
        dated = [
            r
            for r in singles
            if _year(r.get("year")) == year and _search_confidence(r, wanted) >= 1.0
        ]
        if len({_master(r) for r in dated}) == 1:
            # A release ranked before it is of that year too but no exact single (a guest
            # version): the exact single is the better guess without reading either.
            return SearchChoice(dated[0], 1.0, True)
        return None

    def _search_call(self, track: TrackContext) -> ApiCall | None:
        """The release search for *track*'s primary artist and title (featuring, a label
        bracket and "(Original Mix)" stripped: :func:`~scrapy_apigw.core.scraped.search_title`);
        None without both, or for an unidentified track ("ID - ID")."""
        artist = primary_artist(track.artist, track.artists)
        title = search_title(track.title)
        if not (artist and title) or track.unidentified:
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
        cover = frozenset({"cover"})
        covers_wanted = "cover" in parse_title(track.title)[1]
        year = known_year(track)
        ranked: list[tuple[float, int, int, int, int, dict[str, Any]]] = []
        for index, result in enumerate(results if isinstance(results, list) else []):
            if not isinstance(result, dict) or result.get("type", "release") != "release":
                continue
            release_id, full_title = result.get("id"), result.get("title")
            if not isinstance(release_id, int) or not isinstance(full_title, str):
                continue
            artist_part, _, release_title = full_title.partition(" - ")
            if _part_tags(release_title) == cover and not covers_wanted:
                continue  # "Made Famous by X", "A Tribute to X": a cover release
            score = artist_score(artists, [_clean_name(artist_part)])
            if score < DEFAULT_THRESHOLD:
                continue
            named = fuzz.token_set_ratio(wanted, normalize(release_title)) >= NAMED_AFTER_TRACK
            released = _year(result.get("year"))
            dated = year is not None and released == year
            ranked.append((-round(score), -int(named), -int(dated), released, index, result))
        return [entry[-1] for entry in sorted(ranked, key=lambda entry: entry[:5])]


# -- the provider declaration (scrapy_apigw.providers.spec) --------------------------------------

#: Discogs: PROVIDERS.md section 0 (1 req/s, burst 1, breaker 5 / 60 s / 2; releases cached 60
#: days), plus 60 requests per moving 60 s window (authenticated); X-Discogs-Ratelimit may
#: lower it.
PROVIDER = ProviderSpec(
    name="discogs",
    config=ProviderConfig(
        name="discogs",
        base_url="https://api.discogs.com",
        domains=("api.discogs.com",),
        rate=1,
        burst=1,
        window_limit=60,
        window=60.0,
        failure_threshold=5,
        open_timeout=60,
        success_threshold=2,
        cache_ttl={"release": 60 * DAY, "search": 30 * DAY},
    ),
    client=lambda ctx: DiscogsClient(),
    # The sandbox's value: scrapy_apigw.sandbox.config.DEFAULT_DISCOGS_TOKEN.
    credentials=(Credential("token", "DISCOGS_TOKEN", sandbox="sandbox-discogs-token"),),
    auth=lambda creds, ctx: HeaderAuth("Authorization", "Discogs token={secret}", creds["token"]),
    sandbox_path="/discogs",
    quota_header="x-discogs-ratelimit",
    # Never read: images, links and the community's counts (the client reads titles, ids,
    # masters, years, labels, catalog numbers, countries, formats and tracklists).
    unread_keys=frozenset(
        {
            "community",
            "cover_image",
            "images",
            "master_url",
            "resource_url",
            "thumb",
            "uri",
            "user_data",
            "videos",
        }
    ),
)
