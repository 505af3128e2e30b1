"""MusicBrainz WS/2 client: recording by ISRC or by search (PROVIDERS.md section 2).

Calls (paths relative to ``https://musicbrainz.org/ws/2``; the transport adds the User-Agent):

- ``GET /isrc/{ISRC}?inc=artist-credits&fmt=json`` (data_type ``"isrc"``) when a valid ISRC is
  known (input or Spotify). One ISRC can map to several recordings (Atmos mixes, re-releases);
- else, or when the ISRC is unknown to MusicBrainz (404) or maps to nothing,
  ``GET /recording?query=recording:"<title>" AND artist:"<artist>"&limit=N&fmt=json``
  (data_type ``"search"``), the query built with :func:`scrapy_apigw.core.lucene.build_query`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from scrapy_apigw import __version__
from scrapy_apigw.batching import BatchRule
from scrapy_apigw.core.confidence import Candidate, best_candidate, note_tags
from scrapy_apigw.core.lucene import build_query
from scrapy_apigw.core.matching import normalize_isrc, primary_artist
from scrapy_apigw.core.outcome import Outcome, classify_status
from scrapy_apigw.core.scraped import search_title
from scrapy_apigw.core.useragent import user_agent_problem
from scrapy_apigw.providers.auth import UserAgentAuth
from scrapy_apigw.providers.base import (
    ApiAnswer,
    ApiCall,
    Fetch,
    ProviderResult,
    Shape,
    TrackContext,
    check_shape,
    listed,
    match_of,
    wanted_of,
)
from scrapy_apigw.providers.registry import DAY, ProviderConfig
from scrapy_apigw.providers.spec import Credential, ProviderSpec

__all__ = [
    "BATCH_RULES",
    "DEFAULT_SEARCH_LIMIT",
    "PROVIDER",
    "RATE_LIMIT_MESSAGE",
    "SANDBOX_USER_AGENT",
    "SHAPES",
    "MusicBrainzClient",
    "user_agent_refusal",
]

#: Part of the 503 body MusicBrainz sends when a client goes over 1 request/s (AzuraCast#3705,
#: mixxx#14215): ``{"error": "Your requests are exceeding the allowable rate limit. ..."}``.
RATE_LIMIT_MESSAGE = "exceeding the allowable rate limit"

#: What each call needs from a 2xx body, by data type: the ISRC lookup and the recording search
#: both list ``recordings`` (an unknown ISRC is a 404, not an empty 200); anything less is
#: MALFORMED.
SHAPES: dict[str, Shape] = {
    "isrc": ("recordings", list),
    "search": ("recordings", list),
    "isrc_batch": ("recordings", list),
}


def _credits(recording: dict[str, Any]) -> list[str]:
    """Credited artist names of a recording (``artist-credit[].name``, else the artist's name)."""
    names = []
    for credit in listed(recording.get("artist-credit")):
        if not isinstance(credit, dict):
            continue
        artist = credit.get("artist")
        name = credit.get("name") or (artist.get("name") if isinstance(artist, dict) else None)
        if isinstance(name, str) and name:
            names.append(name)
    return names


#: Release-group secondary types (PROVIDERS.md section 2) that make a recording found only on
#: such release groups another version, as a version note for
#: :func:`~scrapy_apigw.core.confidence.note_tags`; ``Compilation`` marks a compilation
#: appearance instead (the same recording).
SECONDARY_TYPE_NOTES = {"live": "live", "dj-mix": "dj mix", "remix": "remix", "demo": "demo"}


def _secondary_types(recording: dict[str, Any]) -> list[set[str]]:
    """The folded ``secondary-types`` of each release's release group (``[]`` without
    releases)."""
    types = []
    for release in listed(recording.get("releases")):
        group = release.get("release-group") if isinstance(release, dict) else None
        names = listed(group.get("secondary-types")) if isinstance(group, dict) else []
        types.append({n.casefold() for n in names if isinstance(n, str)})
    return types


def candidate(recording: dict[str, Any]) -> Candidate:
    """The :class:`~scrapy_apigw.core.confidence.Candidate` of a recording.

    MusicBrainz keeps the title clean (PROVIDERS.md section 2): the version is read from
    ``disambiguation`` (``"live, 2003-07-12: Budokan"``, ``"radio edit"``, ``"Dolby Atmos"``)
    and from the release groups' ``secondary-types``: a type every release group of the
    recording has (``Live``, ``DJ-mix``, ``Remix``, ``Demo``) is a version note; ``Compilation``
    on every one makes it a compilation appearance. ``length`` (ms) and ``isrcs`` are
    compared when known. A recording with no version mark at all is taken for a wanted
    version when its length is that version's (``marks_versions=False``).
    """
    notes = []
    disambiguation = recording.get("disambiguation")
    if isinstance(disambiguation, str) and disambiguation.strip():
        notes.append(disambiguation)
    groups = _secondary_types(recording)
    common = set.intersection(*groups) if groups else set()
    notes.extend(note for name, note in SECONDARY_TYPE_NOTES.items() if name in common)
    length = recording.get("length")
    return Candidate(
        title=str(recording.get("title") or ""),
        artists=_credits(recording),
        duration_ms=length if isinstance(length, int) and not isinstance(length, bool) else None,
        isrcs=[i for i in listed(recording.get("isrcs")) if isinstance(i, str)],
        notes=notes,
        compilation="compilation" in common,
        marks_versions=False,
    )


def _score(recording: dict[str, Any]) -> int:
    """The search ``score`` (int 0..100 in JSON; tolerate a numeric string), 0 when absent."""
    try:
        return int(recording.get("score", 0))
    except (TypeError, ValueError, OverflowError):  # OverflowError: Infinity
        return 0


def _recordings(answer: ApiAnswer) -> list[dict[str, Any]]:
    """Recordings of an ok answer that have an id, in the server's order."""
    if answer.kind != "ok" or not isinstance(answer.data, dict):
        return []
    return [r for r in listed(answer.data.get("recordings")) if isinstance(r, dict) and r.get("id")]


#: ``limit`` of the recording search (MusicBrainz's own default; see :class:`MusicBrainzClient`).
DEFAULT_SEARCH_LIMIT = 25


class MusicBrainzClient:
    """MusicBrainz part of the waterfall.

    Args:
        search_limit: ``limit`` of the recording search, 1..100 (default 25, the server's:
            one artist's recordings of a title often all score 100 (live takes, edits,
            remixes, a featuring credit, an ASCII-credited sound-alike), ranked by text, not by
            truth, so the original can be sixth; a shorter page would lose it for a decoy).
        min_score: lowest MusicBrainz search ``score`` (0..100) a candidate needs; candidates that
            pass are then ranked by :func:`~scrapy_apigw.core.matching.best_match` (threshold 80).

    Fields produced: ``musicbrainz_id`` (recording MBID), ``release_date`` (``first-release-date``
    as given, ``"1999-06-21"``/``"1999"``), ``isrc`` (first valid entry of ``isrcs``, only when the
    track had no ISRC yet). Which source's ``release_date`` wins is the waterfall's rule (a field is
    set only if not already set, so Spotify's comes first); this client just reports MusicBrainz's.
    It sets ``track.musicbrainz_id`` (and ``track.isrc`` when it found one and there was none).
    """

    name = "musicbrainz"

    def __init__(self, search_limit: int = DEFAULT_SEARCH_LIMIT, min_score: int = 80) -> None:
        if not 1 <= search_limit <= 100:
            raise ValueError(f"search_limit must be 1..100, got {search_limit}")
        if not 0 <= min_score <= 100:
            raise ValueError(f"min_score must be 0..100, got {min_score}")
        self.search_limit = search_limit
        self.min_score = min_score

    def classify(self, status: int, data: Any) -> Outcome:
        """Classify a MusicBrainz answer (rate-limiting page, PROVIDERS.md section 2).

        ========  ==============================================================
        status    outcome
        ========  ==============================================================
        2xx       SUCCESS
        400       CLIENT_ERROR (``{"error": "Invalid mbid."}``), also 406 and other 4xx
        401       AUTH_FAILED
        403       FORBIDDEN (missing User-Agent)
        404       NOT_FOUND (``{"error": "Not Found"}``: unknown ISRC or MBID)
        429       RATE_LIMITED (not sent by MusicBrainz; kept for proxies)
        503       RATE_LIMITED when the body says "exceeding the allowable rate limit",
                  else SERVER_ERROR (maintenance, overload)
        5xx       SERVER_ERROR
        ========  ==============================================================
        """
        if status == 503:
            message = data.get("error") if isinstance(data, dict) else data
            if isinstance(message, str) and RATE_LIMIT_MESSAGE in message:
                return Outcome.RATE_LIMITED
            return Outcome.SERVER_ERROR
        return classify_status(status)

    def check_shape(self, call: ApiCall, data: Any) -> str | None:
        """What a 2xx body lacks for *call* (see :data:`SHAPES`), or None."""
        return check_shape(SHAPES, call, data)

    async def enrich(self, track: TrackContext, fetch: Fetch) -> ProviderResult:
        """Find the recording by ISRC, else by search, and report its MBID and dates.

        By ISRC the confidence is the ISRC's (see :meth:`TrackContext.confidence_of`); by
        search, the chosen recording's, which must reach ``track.min_confidence``.
        """
        known_isrc = normalize_isrc(track.isrc)
        artist = primary_artist(track.artist, track.artists)
        title = search_title(track.title)
        recording: dict[str, Any] | None = None
        last: ApiAnswer | None = None
        match: dict[str, Any] | None = None

        if known_isrc:
            inc = (("inc", "artist-credits"), ("fmt", "json"))
            last = await fetch(self._call(f"/isrc/{known_isrc}", "isrc", inc))
            recording = self._pick_isrc(_recordings(last), track)
            if recording is not None:
                match = track.identifier_match("isrc", "isrc")
        if recording is None and artist and title and not track.unidentified:
            query = build_query([("recording", title), ("artist", artist)])
            search = (("query", query), ("limit", str(self.search_limit)), ("fmt", "json"))
            last = await fetch(self._call("/recording", "search", search))
            found = self.pick_search(_recordings(last), track)
            if found is not None:
                recording, match = found[0], match_of(found[1], "search")

        if last is None:
            return ProviderResult("skipped", reason="no ISRC, or artist and title")
        if recording is None or match is None:
            if last.kind in ("rejected", "forbidden"):
                return ProviderResult("failed", reason=f"request refused (HTTP {last.status})")
            return ProviderResult("not_found", reason="no matching recording")

        fields: dict[str, Any] = {"musicbrainz_id": str(recording["id"])}
        date = recording.get("first-release-date")
        if isinstance(date, str) and date:
            fields["release_date"] = date
        isrcs = [
            code for code in (normalize_isrc(i) for i in listed(recording.get("isrcs"))) if code
        ]
        if match["by"] == "isrc" and known_isrc and known_isrc not in isrcs:
            isrcs.insert(0, known_isrc)  # the lookup's recordings carry no isrcs list
        if known_isrc is None and isrcs:
            fields["isrc"] = isrcs[0]
            track.isrc = isrcs[0]
            track.found_identifier("isrc", self.name, match["confidence"])
        track.musicbrainz_id = fields["musicbrainz_id"]
        track.found_identifier("musicbrainz_id", self.name, match["confidence"])
        evidence: dict[str, Any] = {}
        if isrcs:
            evidence["isrcs"] = isrcs
        length = candidate(recording).duration_ms
        if length:
            evidence["duration_ms"] = length
        return ProviderResult("ok", fields, match=match, evidence=evidence)

    def _call(self, path: str, data_type: str, params: tuple[tuple[str, str], ...]) -> ApiCall:
        return ApiCall(provider=self.name, data_type=data_type, path=path, params=params)

    @staticmethod
    def _pick_isrc(recordings: list[dict[str, Any]], track: TrackContext) -> dict[str, Any] | None:
        """The recording an ISRC names. One ISRC can map to several (an Atmos mix, a radio
        edit, unmerged duplicates): the most confident for *track* (title, version notes,
        length against the duration an earlier provider found) if it reaches
        ``track.min_confidence``, else None (the ISRC lists only other versions of the track:
        the text search decides); without a title, the first without a version note."""
        if not recordings:
            return None
        if not track.title:
            plain = [r for r in recordings if not note_tags(str(r.get("disambiguation") or ""))]
            return (plain or recordings)[0]
        wanted = wanted_of(track, with_isrc=False)

        def describe(recording: dict[str, Any]) -> Candidate:
            # A lookup without artist credits: the ISRC vouches for the artist.
            found = candidate(recording)
            if found.artists:
                return found
            return dataclasses.replace(found, artists=list(wanted.artists))

        best = best_candidate(recordings, wanted, describe, track.min_confidence)
        return best[0] if best else None

    def pick_search(
        self, recordings: list[dict[str, Any]], track: TrackContext
    ) -> tuple[dict[str, Any], float] | None:
        """``(recording, confidence)`` of the best search hit, or None: among the recordings
        with MusicBrainz ``score >= min_score``, the most confident (:func:`candidate`; several
        recordings of one artist often share the title and score 100, PROVIDERS.md section 2)
        if it reaches ``track.min_confidence``."""
        scored = [r for r in recordings if _score(r) >= self.min_score]
        return best_candidate(scored, wanted_of(track), candidate, track.min_confidence)

    def _pick_search(
        self, recordings: list[dict[str, Any]], track: TrackContext
    ) -> dict[str, Any] | None:
        """The recording :meth:`pick_search` chooses, or None; kept for callers of the former
        picker (bench/bench_match.py)."""
        found = self.pick_search(recordings, track)
        return found[0] if found else None


# -- batching (scrapy_apigw.batching) -----------------------------------------------------------

#: ISRCs per batch search. The search returns at most 100 recordings (``limit`` 1..100), and one
#: ISRC often names 2 or more (Atmos mixes, re-releases: PROVIDERS.md section 2), so 25 ISRCs
#: leave room for 4 recordings each before the answer is cut (then it is not trusted, below).
MAX_ISRCS = 25
#: ``limit`` of the batch search: the largest the search accepts.
BATCH_LIMIT = 100


def _isrc_of(call: ApiCall) -> str:
    return call.path.rsplit("/", 1)[1]


def _build_isrc_batch(calls: Sequence[ApiCall]) -> ApiCall:
    """One recording search ``isrc:(A OR B ...)`` for the ISRC lookups *calls* (each ISRC once;
    ISRCs are ``[A-Z0-9]``, nothing to escape)."""
    isrcs = list(dict.fromkeys(_isrc_of(c) for c in calls))
    query = f"isrc:({' OR '.join(isrcs)})"
    params = (("query", query), ("limit", str(BATCH_LIMIT)), ("fmt", "json"))
    return ApiCall(calls[0].provider, "isrc_batch", "/recording", params)


def _split_isrc_batch(answer: ApiAnswer, calls: Sequence[ApiCall]) -> list[ApiAnswer | None]:
    """Each ISRC's answer, shaped like its ``/isrc/{ISRC}`` lookup: ``{"isrc", "recordings"}``
    with the recordings whose ``isrcs`` list it (search results carry ``isrcs`` when the
    recording has any, PROVIDERS.md section 2), ``not_found`` when none does.

    When the search found more recordings (``count``) than it returned, an ISRC's other
    recordings may be on a later page: no ISRC is certainly covered, each is looked up alone
    (None), never marked not found on a partial page.
    """
    data = answer.data if isinstance(answer.data, dict) else {}
    recordings = [r for r in listed(data.get("recordings")) if isinstance(r, dict) and r.get("id")]
    count = data.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count > len(recordings):
        return [None] * len(calls)
    by_isrc: dict[str, list[dict[str, Any]]] = {}
    for recording in recordings:
        entry = {k: v for k, v in recording.items() if k != "score"}  # a lookup has no score
        for code in dict.fromkeys(normalize_isrc(i) for i in listed(recording.get("isrcs"))):
            if code:
                by_isrc.setdefault(code, []).append(entry)
    parts: list[ApiAnswer | None] = []
    for call in calls:
        isrc = _isrc_of(call)
        found = by_isrc.get(isrc)
        if found:
            parts.append(ApiAnswer("ok", 200, {"isrc": isrc, "recordings": found}))
        else:  # the single lookup's answer: 404 {"error": "Not Found"}
            parts.append(ApiAnswer("not_found", 404, None))
    return parts


#: ISRC lookups (``/isrc/{ISRC}``) batched as one recording search per 25 ISRCs.
BATCH_RULES: tuple[BatchRule, ...] = (
    BatchRule("isrc", MAX_ISRCS, _build_isrc_batch, _split_isrc_batch),
)


# -- the provider declaration (scrapy_apigw.providers.spec) --------------------------------------

#: The User-Agent sent to the sandbox's MusicBrainz (it names an application and a contact).
SANDBOX_USER_AGENT = f"scrapy-apigw-sandbox/{__version__} ( sandbox@example.invalid )"


def user_agent_refusal(credentials: Mapping[str, Any]) -> str | None:
    """Why MusicBrainz would refuse the configured User-Agent; None when fine or missing.

    It must name the application and a contact, ``App/1.0 ( contact@example.org )``; a
    library's default (``python-requests``, Scrapy's) or one without an e-mail or URL
    (``scrapy-apigw/<version>``) is anonymous, throttled or blocked (PROVIDERS.md section 2;
    :func:`~scrapy_apigw.core.useragent.user_agent_problem`). Missing is reported elsewhere
    (missing credentials).
    """
    agent = credentials.get("user_agent")
    problem = user_agent_problem(None if agent is None else str(agent))
    if problem is None or problem == "missing":
        return None
    return (
        f"APIGW_MUSICBRAINZ_USER_AGENT = {str(agent)!r}: {problem} User-Agent; MusicBrainz "
        "throttles or blocks anonymous clients: name your application and a contact, e.g. "
        "'MyCrawler/1.0 ( me@example.org )' (or set such an APIGW_USER_AGENT)"
    )


#: MusicBrainz: PROVIDERS.md section 0 (1 req/s, burst 1, breaker 3 / 60 s / 2; ISRC lookups
#: cached 90 days). It signals "too fast" with a 503 whose body says so
#: (musicbrainz.org/doc/MusicBrainz_API/Rate_Limiting); its classifier reads that body. Listing
#: 503 in ``rate_limit_statuses`` would make every 503 (maintenance, an nginx error page) a rate
#: limit that never opens the breaker.
PROVIDER = ProviderSpec(
    name="musicbrainz",
    config=ProviderConfig(
        name="musicbrainz",
        base_url="https://musicbrainz.org/ws/2",
        domains=("musicbrainz.org",),
        rate=1,
        burst=1,
        failure_threshold=3,
        open_timeout=60,
        success_threshold=2,
        cache_ttl={"isrc": 90 * DAY, "search": 30 * DAY, "recording": 90 * DAY},
    ),
    client=lambda ctx: MusicBrainzClient(),
    # An identity, not a secret.
    credentials=(
        Credential(
            "user_agent", "MUSICBRAINZ_USER_AGENT", secret=False, sandbox=SANDBOX_USER_AGENT
        ),
    ),
    auth=lambda creds, ctx: UserAgentAuth(str(creds["user_agent"])),
    credential_problem=user_agent_refusal,
    batch_rules=BATCH_RULES,
    sandbox_path="/musicbrainz/ws/2",
)
