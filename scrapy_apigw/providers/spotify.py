"""Spotify Web API client: track lookup/search and audio features (PROVIDERS.md section 1).

Calls (paths relative to ``https://api.spotify.com/v1``; the transport adds the bearer token):

- ``GET /tracks/{id}`` (data_type ``"track"``) when the input has a valid Spotify id;
- else ``GET /search?q=isrc:<ISRC>&type=track&limit=N`` when an ISRC is known;
- else (or when those found nothing) ``GET /search?q=track:"<title>" artist:"<artist>"&type=track
  &limit=N`` (data_type ``"search"``); candidates are ranked by match confidence
  (:mod:`scrapy_apigw.core.confidence`), the best one taken only when it reaches
  ``APIGW_MIN_MATCH_CONFIDENCE``;
- then ``GET /audio-features/{id}`` (data_type ``"audio_features"``), unless Spotify already
  answered 403 to this client: audio features are refused to apps registered after 2024-11-27
  (Spotify blog "Introducing some changes to our Web API", 2024-11-27; spotipy#1173), and that
  never changes during a crawl. The call carries ``refusal="audio_features"``, so the
  transport also remembers the 403 for later crawls (``APIGW_REFUSAL_TTL``).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from scrapy_apigw.batching import BatchRule
from scrapy_apigw.core.camelot import camelot_from_spotify, key_name
from scrapy_apigw.core.confidence import Candidate, Wanted, best_candidate
from scrapy_apigw.core.matching import normalize_isrc, primary_artist
from scrapy_apigw.core.outcome import Outcome, classify_status
from scrapy_apigw.core.scraped import search_title
from scrapy_apigw.providers.auth import Auth, ClientCredentialsAuth
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
from scrapy_apigw.providers.spec import AuthContext, Credential, ProviderSpec

__all__ = [
    "BATCH_RULES",
    "MAX_SEARCH_LIMIT",
    "PROVIDER",
    "SHAPES",
    "SpotifyClient",
    "is_spotify_id",
]

logger = logging.getLogger(__name__)

#: Largest ``limit`` /v1/search accepts since the 2026-02-14 spec update (400 above it).
MAX_SEARCH_LIMIT = 10
#: Longest title/artist value put in a search query (characters, before escaping).
MAX_QUERY_VALUE = 200

#: What each call needs from a 2xx body, by data type (the Web API reference's TrackObject,
#: search ``tracks`` paging object and AudioFeaturesObject); anything less is MALFORMED.
SHAPES: dict[str, Shape] = {
    "track": ("id", str),
    "search": ("tracks.items", list),
    "audio_features": ("id", str),
    # The batch endpoints (PROVIDERS.md section 1): ``{"tracks": [TrackObject | null]}`` and
    # ``{"audio_features": [AudioFeaturesObject | null]}``, in the order of ``ids``.
    "tracks_batch": ("tracks", list),
    "audio_features_batch": ("audio_features", list),
}

_SPOTIFY_ID = re.compile(r"^[0-9A-Za-z]{22}$")
_FLOAT_FEATURES = (
    "energy",
    "danceability",
    "valence",
    "acousticness",
    "instrumentalness",
    "liveness",
    "speechiness",
    "loudness",
)


def is_spotify_id(value: object) -> bool:
    """True for a Spotify track id: 22 base62 characters (``"6NPVjNh8Jhru9xOmyQigds"``)."""
    return isinstance(value, str) and bool(_SPOTIFY_ID.match(value))


def _quote(value: str) -> str:
    """A double-quoted search value: whitespace collapsed, cut to 200 characters, ``"`` escaped."""
    value = " ".join(value.split())[:MAX_QUERY_VALUE].rstrip()
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _number(value: Any) -> float | None:
    """*value* as a finite float when it is a JSON number (bools excluded), else None.

    Python's JSON decoder accepts ``NaN``, ``Infinity`` and ints of any size; none of them is a
    measurement, and a NaN would make the feed invalid JSON.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _track_artists(item: dict[str, Any]) -> list[str]:
    """Artist names of a TrackObject."""
    return [
        a["name"]
        for a in listed(item.get("artists"))
        if isinstance(a, dict) and isinstance(a.get("name"), str) and a["name"]
    ]


def candidate(item: dict[str, Any]) -> Candidate:
    """The :class:`~scrapy_apigw.core.confidence.Candidate` of a TrackObject: ``name`` (the
    version is in it: ``"Strobe - Radio Edit"``), artists, ``duration_ms``,
    ``external_ids.isrc``, and ``album.album_type == "compilation"``."""
    external = item.get("external_ids")
    isrc = external.get("isrc") if isinstance(external, dict) else None
    album = item.get("album")
    duration = _number(item.get("duration_ms"))
    return Candidate(
        title=str(item.get("name") or ""),
        artists=_track_artists(item),
        duration_ms=int(duration) if duration and duration > 0 else None,
        isrcs=[isrc] if isinstance(isrc, str) else [],
        compilation=isinstance(album, dict) and album.get("album_type") == "compilation",
        released=album.get("release_date") if isinstance(album, dict) else None,
    )


class SpotifyClient:
    """Spotify part of the waterfall.

    Args:
        market: ISO 3166-1 alpha-2 country sent as ``market`` to /tracks and /search (track
            relinking and availability); None sends none.
        search_limit: ``limit`` of /search, 1..10 (Spotify's maximum since 2026-02).

    Attributes:
        audio_features_available: becomes False after the first 403 from /audio-features; later
            tracks then skip that call.

    Fields produced: ``spotify_id``, ``isrc``, ``spotify_popularity`` (int 0..100), ``release_date``
    (album ``release_date`` as given: ``"2013-06-18"``, ``"2013-06"`` or ``"2013"``), and from audio
    features ``bpm`` (``tempo`` rounded to 0.1 BPM, the precision DJ software shows; absent when
    tempo is 0), ``key`` (``"F minor"``), ``camelot_key`` (``"4A"``), ``energy``, ``danceability``,
    ``valence``, ``acousticness``, ``instrumentalness``, ``liveness``, ``speechiness`` (0..1),
    ``loudness`` (dB), ``time_signature`` (int). Key -1 gives neither key nor camelot_key.
    It sets ``track.spotify_id`` and ``track.duration_ms``, and ``track.isrc`` when the track had no
    valid ISRC.
    """

    name = "spotify"

    def __init__(self, market: str | None = None, search_limit: int = 5) -> None:
        if not 1 <= search_limit <= MAX_SEARCH_LIMIT:
            raise ValueError(f"search_limit must be 1..{MAX_SEARCH_LIMIT}, got {search_limit}")
        self.market = market
        self.search_limit = search_limit
        self.audio_features_available = True

    def classify(self, status: int, data: Any) -> Outcome:
        """Classify a Spotify answer by status alone; the body ``{"error":{"status","message"}}``
        adds nothing the status does not say.

        ========  ==============
        status    outcome
        ========  ==============
        2xx       SUCCESS
        400       CLIENT_ERROR (e.g. "invalid id", limit > 10)
        401       AUTH_FAILED (expired or invalid token)
        403       FORBIDDEN (audio features for new apps, removed dev-mode endpoints)
        404       NOT_FOUND
        429       RATE_LIMITED (Retry-After, incl. ``reason: QUOTA_EXCEEDED``)
        5xx       SERVER_ERROR
        ========  ==============
        """
        return classify_status(status)

    def check_shape(self, call: ApiCall, data: Any) -> str | None:
        """What a 2xx body lacks for *call* (see :data:`SHAPES`), or None."""
        return check_shape(SHAPES, call, data)

    async def enrich(self, track: TrackContext, fetch: Fetch) -> ProviderResult:
        """Find the track (id, then ISRC, then artist + title) and read its audio features.

        The match's confidence (``ProviderResult.match``): by id, the id's; by ISRC, the
        ISRC's (1.0 from the input, else the confidence of the provider that found it), the
        best candidate by :func:`~scrapy_apigw.core.confidence.confidence` among the tracks
        sharing it; by search, the best candidate's confidence, which must reach
        ``track.min_confidence``, else the track is not found.
        """
        item: dict[str, Any] | None = None
        last: ApiAnswer | None = None
        market = (("market", self.market),) if self.market else ()
        match: dict[str, Any] | None = None

        if is_spotify_id(track.spotify_id):
            last = await fetch(self._call(f"/tracks/{track.spotify_id}", "track", market))
            if last.kind == "ok" and isinstance(last.data, dict) and last.data.get("id"):
                item = last.data
                match = track.identifier_match("spotify_id", "id")
        isrc = normalize_isrc(track.isrc)
        if item is None and isrc:
            last = await fetch(self._search(f"isrc:{isrc}", market))
            found = self.pick(last, track, by_isrc=True)
            if found is not None:
                item, match = found[0], track.identifier_match("isrc", "isrc")
        artist = primary_artist(track.artist, track.artists)
        title = search_title(track.title)
        if item is None and artist and title and not track.unidentified:
            last = await fetch(
                self._search(f"track:{_quote(title)} artist:{_quote(artist)}", market)
            )
            found = self.pick(last, track, by_isrc=False)
            if found is not None:
                item, match = found[0], match_of(found[1], "search")

        if last is None:
            return ProviderResult("skipped", reason="no spotify id, ISRC, or artist and title")
        if item is None:
            if last.kind in ("rejected", "forbidden"):
                return ProviderResult("failed", reason=f"request refused (HTTP {last.status})")
            return ProviderResult("not_found", reason="no matching track")

        had_isrc = isrc is not None
        fields = self._track_fields(item, track)
        if match is not None and not had_isrc and track.isrc:
            # The ISRC later providers look up is only as sure as this match.
            track.found_identifier("isrc", self.name, match["confidence"])
        evidence: dict[str, Any] = {}
        if "isrc" in fields:
            evidence["isrcs"] = [fields["isrc"]]
        duration = _number(item.get("duration_ms"))
        if duration is not None and duration > 0:
            evidence["duration_ms"] = int(duration)
        fields.update(await self._audio_features(fields["spotify_id"], fetch))
        return ProviderResult("ok", fields, match=match, evidence=evidence)

    def _call(self, path: str, data_type: str, params: tuple[tuple[str, str], ...]) -> ApiCall:
        return ApiCall(provider=self.name, data_type=data_type, path=path, params=params)

    def _search(self, query: str, market: tuple[tuple[str, str], ...]) -> ApiCall:
        params = (("q", query), ("type", "track"), ("limit", str(self.search_limit)), *market)
        return self._call("/search", "search", params)

    @staticmethod
    def pick(
        answer: ApiAnswer, track: TrackContext, by_isrc: bool
    ) -> tuple[dict[str, Any], float] | None:
        """``(TrackObject, confidence)`` of the best search item for *track*, or None.

        A text search keeps the most confident item (:func:`candidate`: the version read from
        the name, ``"- Live"``, ``"(Radio Edit)"``; a compilation appearance behind the
        original) if it reaches ``track.min_confidence``. An ISRC search names the recording,
        but the tracks listing an ISRC may be other versions (a sped-up release reusing it, a
        catalog error): the most confident of them is taken only when it reaches
        ``track.min_confidence`` too, else None and the text search decides (the first item
        when artist or title are unknown: nothing to check).
        """
        if answer.kind != "ok" or not isinstance(answer.data, dict):
            return None
        tracks = answer.data.get("tracks")
        raw = tracks.get("items") if isinstance(tracks, dict) else None
        items = [i for i in listed(raw) if isinstance(i, dict) and i.get("id")]
        if not items:
            return None
        wanted: Wanted = wanted_of(track, with_isrc=not by_isrc)
        if not (track.title and any(wanted.artists)):
            return (items[0], 1.0) if by_isrc else None
        return best_candidate(items, wanted, candidate, minimum=track.min_confidence)

    def _pick(
        self, answer: ApiAnswer, track: TrackContext, require_match: bool
    ) -> dict[str, Any] | None:
        """The TrackObject :meth:`pick` chooses (a text search when *require_match*, else an
        ISRC search), or None; kept for callers of the former picker (bench/bench_match.py)."""
        found = self.pick(answer, track, by_isrc=not require_match)
        return found[0] if found else None

    def _track_fields(self, item: dict[str, Any], track: TrackContext) -> dict[str, Any]:
        """Fields of a TrackObject; also updates *track* with the ids later providers use."""
        fields: dict[str, Any] = {"spotify_id": str(item["id"])}
        external = item.get("external_ids")
        isrc = normalize_isrc(external.get("isrc")) if isinstance(external, dict) else None
        if isrc:
            fields["isrc"] = isrc
            if normalize_isrc(track.isrc) is None:
                track.isrc = isrc
        popularity = _number(item.get("popularity"))
        if popularity is not None:
            fields["spotify_popularity"] = int(popularity)
        album = item.get("album")
        date = album.get("release_date") if isinstance(album, dict) else None
        if isinstance(date, str) and date:
            fields["release_date"] = date
        track.spotify_id = fields["spotify_id"]
        duration = _number(item.get("duration_ms"))
        if duration is not None:
            track.duration_ms = int(duration)
        return fields

    async def _audio_features(self, spotify_id: str, fetch: Fetch) -> dict[str, Any]:
        """Audio-feature fields of one track, or ``{}`` (unavailable, 403, 404, no data)."""
        if not self.audio_features_available:
            return {}
        call = ApiCall(
            provider=self.name,
            data_type="audio_features",
            path=f"/audio-features/{spotify_id}",
            refusal="audio_features",  # a 403 here refuses the app, remembered across crawls
        )
        answer = await fetch(call)
        if answer.kind == "forbidden":
            if self.audio_features_available:  # several tracks may be in flight: log once
                logger.warning(
                    "spotify: /audio-features %s (not available to apps registered since "
                    "2024-11-27); no more audio-feature calls in this crawl",
                    "refused in an earlier crawl" if answer.from_cache else "answered 403",
                )
            self.audio_features_available = False
            return {}
        if answer.kind != "ok" or not isinstance(answer.data, dict):
            return {}
        return audio_feature_fields(answer.data)


def audio_feature_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Output fields of one AudioFeaturesObject (see :class:`SpotifyClient` for units)."""
    fields: dict[str, Any] = {}
    tempo = _number(data.get("tempo"))
    if tempo is not None and tempo > 0:
        fields["bpm"] = round(tempo, 1)
    key, mode = data.get("key"), data.get("mode")
    if isinstance(key, int) and isinstance(mode, int):
        name, camelot = key_name(key, mode), camelot_from_spotify(key, mode)
        if name and camelot:
            fields["key"] = name
            fields["camelot_key"] = camelot
    for feature in _FLOAT_FEATURES:
        value = _number(data.get(feature))
        if value is not None:
            fields[feature] = value
    signature = _number(data.get("time_signature"))
    if signature is not None and signature > 0:
        fields["time_signature"] = int(signature)
    return fields


# -- batching (scrapy_apigw.batching) -----------------------------------------------------------

#: Most ids of one ``/tracks?ids=`` and one ``/audio-features?ids=`` call (Web API reference;
#: PROVIDERS.md section 1).
MAX_TRACK_IDS = 50
MAX_AUDIO_FEATURE_IDS = 100


def _batch_builder(path: str, data_type: str) -> Any:
    def build(calls: Sequence[ApiCall]) -> ApiCall:
        ids = list(dict.fromkeys(c.path.rsplit("/", 1)[1] for c in calls))  # each id once
        first = calls[0]
        params = (("ids", ",".join(ids)), *first.params)
        return ApiCall(first.provider, data_type, path, params, first.method, first.headers)

    return build


def _batch_splitter(key: str) -> Any:
    def split(answer: ApiAnswer, calls: Sequence[ApiCall]) -> list[ApiAnswer | None]:
        """Entries come in the order of ``ids`` (each id once, see the builder); ``null`` means
        that id is unknown: ``not_found`` for it alone, as the single call's 404."""
        entries = listed(answer.data.get(key)) if isinstance(answer.data, dict) else []
        ids = list(dict.fromkeys(c.path.rsplit("/", 1)[1] for c in calls))
        if len(entries) != len(ids):  # not the documented shape: trust none of it
            return [None] * len(calls)
        by_id = dict(zip(ids, entries, strict=True))
        parts: list[ApiAnswer | None] = []
        for call in calls:
            entry = by_id[call.path.rsplit("/", 1)[1]]
            if entry is None:
                parts.append(ApiAnswer("not_found", 404, None))
            elif isinstance(entry, dict) and is_spotify_id(entry.get("id")):
                parts.append(ApiAnswer("ok", 200, entry))
            else:  # a malformed entry: the single call checks its own answer
                parts.append(None)
        return parts

    return split


#: Track lookups by id (``/tracks/{id}``) batched as ``/tracks?ids=`` (50), audio features
#: (``/audio-features/{id}``) as ``/audio-features?ids=`` (100). Development-mode apps created
#: since 2026-02-11 get 403 from both: the transport then makes single calls.
BATCH_RULES: tuple[BatchRule, ...] = (
    BatchRule(
        "track",
        MAX_TRACK_IDS,
        _batch_builder("/tracks", "tracks_batch"),
        _batch_splitter("tracks"),
    ),
    BatchRule(
        "audio_features",
        MAX_AUDIO_FEATURE_IDS,
        _batch_builder("/audio-features", "audio_features_batch"),
        _batch_splitter("audio_features"),
    ),
)


# -- the provider declaration (scrapy_apigw.providers.spec) --------------------------------------


def _auth(creds: Mapping[str, Any], ctx: AuthContext) -> Auth:
    """OAuth 2 client credentials (PROVIDERS.md section 1), refreshed before expiry."""
    return ClientCredentialsAuth(
        creds["client_id"], creds["client_secret"], ctx.post, ctx.clock, ctx.provider
    )


#: Spotify: PROVIDERS.md section 0 (10 req/s, burst 20, breaker 10 / 120 s / 2; TTLs track
#: 30 days, search 7 days, audio features 90 days).
PROVIDER = ProviderSpec(
    name="spotify",
    config=ProviderConfig(
        name="spotify",
        base_url="https://api.spotify.com/v1",
        token_url="https://accounts.spotify.com/api/token",
        domains=("api.spotify.com", "accounts.spotify.com"),
        rate=10,
        burst=20,
        failure_threshold=10,
        open_timeout=120,
        success_threshold=2,
        cache_ttl={"track": 30 * DAY, "search": 7 * DAY, "audio_features": 90 * DAY},
    ),
    client=lambda ctx: SpotifyClient(),
    credentials=(
        # The sandbox's values: scrapy_apigw.sandbox.config.DEFAULT_SPOTIFY_CLIENT_*.
        Credential("client_id", "SPOTIFY_CLIENT_ID", sandbox="sandbox-client-id"),
        Credential("client_secret", "SPOTIFY_CLIENT_SECRET", sandbox="sandbox-client-secret"),
    ),
    auth=_auth,
    batch_rules=BATCH_RULES,
    # Never read (the client reads ids, names, artists, album dates, ISRCs, durations,
    # popularity and audio features): the links and images, the preview, and the markets.
    # Without a ``market`` every track and album lists each market it is sold in, deprecated
    # since Feb 2026 (PROVIDERS.md section 1). Together more than half of a search answer.
    unread_keys=frozenset(
        {
            "available_markets",
            "external_urls",
            "href",
            "images",
            "preview_url",
            "uri",
            "analysis_url",
            "track_href",
        }
    ),
    sandbox_path="/spotify/v1",
    sandbox_token_path="/spotify/accounts/api/token",
)
