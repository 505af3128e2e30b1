"""Spotify Web API client: track lookup/search and audio features (PROVIDERS.md section 1).

Calls (paths relative to ``https://api.spotify.com/v1``; the transport adds the bearer token):

- ``GET /tracks/{id}`` (data_type ``"track"``) when the input has a valid Spotify id;
- else ``GET /search?q=isrc:<ISRC>&type=track&limit=N`` when an ISRC is known;
- else (or when those found nothing) ``GET /search?q=track:"<title>" artist:"<artist>"&type=track
  &limit=N`` (data_type ``"search"``); candidates are ranked with
  :func:`scrapy_apigw.core.matching.best_match`;
- then ``GET /audio-features/{id}`` (data_type ``"audio_features"``), unless Spotify already
  answered 403 to this client: audio features are refused to apps registered after 2024-11-27
  (Spotify blog "Introducing some changes to our Web API", 2024-11-27; spotipy#1173), and that
  never changes during a crawl.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from scrapy_apigw.core.camelot import camelot_from_spotify, key_name
from scrapy_apigw.core.matching import (
    DEFAULT_THRESHOLD,
    best_match,
    normalize_isrc,
    primary_artist,
    strip_featuring,
)
from scrapy_apigw.core.outcome import Outcome, classify_status
from scrapy_apigw.providers.base import ApiAnswer, ApiCall, Fetch, ProviderResult, TrackContext

__all__ = ["MAX_SEARCH_LIMIT", "SpotifyClient", "is_spotify_id"]

logger = logging.getLogger(__name__)

#: Largest ``limit`` /v1/search accepts since the 2026-02-14 spec update (400 above it).
MAX_SEARCH_LIMIT = 10
#: Longest title/artist value put in a search query (characters, before escaping).
MAX_QUERY_VALUE = 200

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
    """*value* as a float when it is a JSON number (bools excluded), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _track_artists(item: dict[str, Any]) -> list[str]:
    """Artist names of a TrackObject."""
    return [a["name"] for a in item.get("artists") or [] if isinstance(a, dict) and a.get("name")]


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

    async def enrich(self, track: TrackContext, fetch: Fetch) -> ProviderResult:
        """Find the track (id, then ISRC, then artist + title) and read its audio features."""
        item: dict[str, Any] | None = None
        last: ApiAnswer | None = None
        market = (("market", self.market),) if self.market else ()

        if is_spotify_id(track.spotify_id):
            last = await fetch(self._call(f"/tracks/{track.spotify_id}", "track", market))
            if last.kind == "ok" and isinstance(last.data, dict) and last.data.get("id"):
                item = last.data
        isrc = normalize_isrc(track.isrc)
        if item is None and isrc:
            last = await fetch(self._search(f"isrc:{isrc}", market))
            item = self._pick(last, track, require_match=False)
        artist = primary_artist(track.artist, track.artists)
        title = strip_featuring(track.title)
        if item is None and artist and title:
            last = await fetch(
                self._search(f"track:{_quote(title)} artist:{_quote(artist)}", market)
            )
            item = self._pick(last, track, require_match=True)

        if last is None:
            return ProviderResult("skipped", reason="no spotify id, ISRC, or artist and title")
        if item is None:
            if last.kind in ("rejected", "forbidden"):
                return ProviderResult("failed", reason=f"request refused (HTTP {last.status})")
            return ProviderResult("not_found", reason="no matching track")

        fields = self._track_fields(item, track)
        fields.update(await self._audio_features(fields["spotify_id"], fetch))
        return ProviderResult("ok", fields)

    def _call(self, path: str, data_type: str, params: tuple[tuple[str, str], ...]) -> ApiCall:
        return ApiCall(provider=self.name, data_type=data_type, path=path, params=params)

    def _search(self, query: str, market: tuple[tuple[str, str], ...]) -> ApiCall:
        params = (("q", query), ("type", "track"), ("limit", str(self.search_limit)), *market)
        return self._call("/search", "search", params)

    def _pick(
        self, answer: ApiAnswer, track: TrackContext, require_match: bool
    ) -> dict[str, Any] | None:
        """Best search item for *track*.

        A text search needs a :func:`best_match` score of at least 80. An ISRC search already
        names the recording: the best-matching item is taken when artist and title are known,
        else the first one.
        """
        if answer.kind != "ok" or not isinstance(answer.data, dict):
            return None
        tracks = answer.data.get("tracks")
        raw = tracks.get("items") if isinstance(tracks, dict) else None
        items = [i for i in raw or [] if isinstance(i, dict) and i.get("id")]
        if not items:
            return None
        artists = list(track.artists) or [track.artist]
        if track.title and any(artists):
            found = best_match(
                items,
                track.title,
                artists,
                lambda i: (str(i.get("name") or ""), _track_artists(i)),
                threshold=DEFAULT_THRESHOLD if require_match else 0.0,
            )
            return found[0] if found else None
        return None if require_match else items[0]

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
        answer = await fetch(self._call(f"/audio-features/{spotify_id}", "audio_features", ()))
        if answer.kind == "forbidden":
            if self.audio_features_available:  # several tracks may be in flight: log once
                logger.warning(
                    "spotify: /audio-features answered 403 (not available to apps registered "
                    "since 2024-11-27); no more audio-feature calls in this crawl"
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
