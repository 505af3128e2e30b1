"""Spotify Web API and Accounts service (PROVIDERS.md section 1), mounted at ``/spotify``.

Routes (below ``{url}/spotify``):

- ``POST /accounts/api/token``: client-credentials flow. Credentials in ``Authorization: Basic
  base64(id:secret)`` or as ``client_id``/``client_secret`` form fields; body
  ``grant_type=client_credentials``. Success ``{"access_token","token_type":"Bearer",
  "expires_in":<token_ttl>}``; bad credentials 400 ``{"error":"invalid_client",
  "error_description":"Invalid client"}``. A token really lives ``token_ttl / speed`` seconds,
  so at ``speed > 1`` clients meet the "expired" 401 and must refresh once. The token service
  is a separate host in reality: it is not rate limited and only outage faults apply to it.
- ``GET /v1/search?q=&type=&limit=&offset=&market=``: field filters ``track:``, ``artist:``,
  ``album:``, ``isrc:``, ``year:`` (``2009`` or ``2000-2010``), ``genre:``; values quoted or one
  bare word; other words must appear in the title, artists or album. Case- and
  accent-insensitive word matching. ``limit`` 0..10 (default 5), ``offset`` 0..1000.
- ``GET /v1/tracks/{id}``, ``GET /v1/tracks?ids=`` (max 50; unknown ids give ``null``).
- ``GET /v1/audio-features/{id}``, ``GET /v1/audio-features?ids=`` (max 100), or 403
  ``{"error":{"status":403}}`` for every call in ``audio_features="forbidden"`` mode.
- ``spotify_batch="forbidden"``: both batch endpoints (``/v1/tracks?ids=``,
  ``/v1/audio-features?ids=``) answer 403 ``{"error":{"status":403,"message":"Forbidden"}}``,
  as for development-mode apps created after 2026-02-11 (rspotify#550, bjarneo/cliamp#54);
  single lookups keep working.

``preview_url`` (deprecated, usually ``null``) is a ``https://p.scdn.co/mp3-preview/...`` string
for about a fifth of the tracks in search results and single lookups; multi-get answers
(``/v1/tracks?ids=``) always carry ``null`` (no 30 s previews in multi-get responses since
2024-11-27).

API calls need ``Authorization: Bearer <token>``: missing 401 "No token provided", unknown 401
"Invalid access token" (wording unverified), expired 401 "The access token expired".

Rate limit (an assumption: the real number is unpublished): 450 requests per rolling 30 s
window, both scaled by ``speed``; over it 429 ``{"error":{"status":429,"message":"API rate
limit exceeded"}}`` with ``Retry-After`` = seconds until the window frees a slot (rounded up);
with ``spotify_rate_limit_body="quota"`` the body is the July 2026 dev-mode quota one,
``{"error":{"status":429,"message":"Too many requests","reason":"QUOTA_EXCEEDED"}}``.
Errors use the ``{"error":{"status","message"}}`` envelope of the OpenAPI ``ErrorObject``.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from scrapy_apigw.sandbox.catalog import Catalog
from scrapy_apigw.sandbox.config import SandboxConfig
from scrapy_apigw.sandbox.http import Reply, SandboxRequest, json_reply
from scrapy_apigw.sandbox.limits import SlidingWindow, retry_after_header
from scrapy_apigw.sandbox.provider import Provider
from scrapy_apigw.sandbox.records import Digest, TrackRecord
from scrapy_apigw.sandbox.text import artist_tokens, fold, tokens

__all__ = ["RATE_LIMIT", "WINDOW_SECONDS", "Spotify"]

RATE_LIMIT = 450
WINDOW_SECONDS = 30.0
SEARCH_TYPES = frozenset({"album", "artist", "playlist", "track", "show", "episode", "audiobook"})
_ID = re.compile(r"^[0-9A-Za-z]{22}$")
_QUERY_PART = re.compile(r'(\w+):"([^"]*)"|(\w+):(\S+)|"([^"]*)"|(\S+)')
_MARKETS = tuple(
    re.findall(
        r"[A-Z]{2}",
        "AD AR AT AU BE BG BO BR CA CH CL CO CR CY CZ DE DK DO EC EE ES FI FR GB GR GT HK HN HU IE "
        "IS IT JP LI LT LU LV MC MT MX MY NI NL NO NZ PA PE PH PL PT PY RO SE SG SI SK SV TR TW US "
        "UY",
    )
)
VARIOUS_ARTISTS_ID = "0LyfQWJT6nXafLPZqxe9Of"


def _error(status: int, message: str | None, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    body: dict[str, Any] = {"status": status}
    if message is not None:
        body["message"] = message
    return json_reply(status, {"error": body}, headers)


@dataclass(frozen=True)
class _Criteria:
    """A parsed search ``q``."""

    filters: tuple[tuple[str, str], ...]
    words: tuple[str, ...]


def parse_query(q: str) -> _Criteria:
    """Split a Spotify ``q`` into field filters and free words.

    >>> parse_query('track:"One More Time" artist:Daft Punk')
    _Criteria(filters=(('track', 'One More Time'), ('artist', 'Daft')), words=('Punk',))
    """
    filters: list[tuple[str, str]] = []
    words: list[str] = []
    known = {"track", "artist", "album", "isrc", "year", "genre", "upc", "tag"}
    for match in _QUERY_PART.finditer(q):
        quoted_field, quoted_value, field, value, phrase, word = match.groups()
        if quoted_field is not None and quoted_field.lower() in known:
            filters.append((quoted_field.lower(), quoted_value))
        elif field is not None and field.lower() in known:
            filters.append((field.lower(), value))
        elif phrase is not None:
            words.append(phrase)
        else:
            text = match.group(0)
            if text not in ("AND", "OR", "NOT"):
                words.append(text if word is None else word)
    return _Criteria(tuple(filters), tuple(words))


class Spotify(Provider):
    """The Spotify Web API and its token endpoint over a :class:`Catalog`."""

    name = "spotify"

    def __init__(self, catalog: Catalog, config: SandboxConfig) -> None:
        self.catalog = catalog
        self.config = config
        self.window = SlidingWindow(WINDOW_SECONDS / config.speed)
        self._token_lifetime = config.token_ttl / config.speed
        self._tokens: dict[str, float] = {}  # token -> expiry (sandbox monotonic clock)

    # -- plumbing -----------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the rate-limit window (tokens stay valid)."""
        self.window.reset()

    def fault_exempt(self, req: SandboxRequest) -> bool:
        """The token endpoint only suffers outages."""
        return req.segments()[:1] == ["accounts"]

    def rate_limit_reply(self, req: SandboxRequest, retry_after: str | None) -> Reply:
        """429 with ``Retry-After`` (the forced value, or ``1``)."""
        header = retry_after if retry_after is not None else "1"
        return self._too_many(("Retry-After", header))

    def _too_many(self, *headers: tuple[str, str], rate_limited: bool = False) -> Reply:
        """A 429 with the body of :attr:`SandboxConfig.spotify_rate_limit_body`."""
        body: dict[str, Any] = {"status": 429, "message": "API rate limit exceeded"}
        if self.config.spotify_rate_limit_body == "quota":
            body = {"status": 429, "message": "Too many requests", "reason": "QUOTA_EXCEEDED"}
        return json_reply(429, {"error": body}, headers, rate_limited=rate_limited)

    def error_reply(self, req: SandboxRequest, status: int, fault: str) -> Reply:
        """A 5xx in the Web API envelope."""
        messages = {500: "Server error", 502: "Bad gateway", 503: "Service unavailable"}
        return _error(status, messages.get(status, "Service unavailable"))

    def serve(self, req: SandboxRequest) -> Reply:
        """Token endpoint, or auth check, rate limit and routing of a Web API call."""
        segs = req.segments()
        if segs == ["accounts", "api", "token"]:
            return self._token(req)
        if not segs or segs[0] != "v1":
            return _error(404, "Service not found")
        refused = self._check_bearer(req)
        if refused is not None:
            return refused
        decision = self.window.acquire(req.now, RATE_LIMIT)
        if not decision.allowed:
            wait = retry_after_header(decision.retry_after)
            return self._too_many(("Retry-After", wait), rate_limited=True)
        if req.method not in ("GET", "HEAD"):
            return _error(405, "Method not allowed")
        route = segs[1:]
        if route == ["search"]:
            return self._search(req)
        batch = route in (["tracks"], ["audio-features"])
        if batch and self.config.spotify_batch == "forbidden":
            return _error(403, "Forbidden")
        if route == ["tracks"]:
            return self._batch(req, "tracks", 50, self._track_or_none)
        if len(route) == 2 and route[0] == "tracks":
            return self._single(req, route[1], self.track_object)
        if route and route[0] == "audio-features":
            if self.config.audio_features == "forbidden":
                return _error(403, None)
            if len(route) == 1:
                return self._batch(req, "audio_features", 100, self._features_or_none)
            if len(route) == 2:
                return self._single(req, route[1], self.audio_features_object)
        return _error(404, "Service not found")

    # -- auth ---------------------------------------------------------------------------------

    def _token(self, req: SandboxRequest) -> Reply:
        if req.method != "POST":
            return json_reply(405, {"error": "method_not_allowed"})
        form = req.form()
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        authorization = req.header("authorization") or ""
        if authorization[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
                client_id, _, client_secret = decoded.partition(":")
            except (ValueError, UnicodeDecodeError):
                return json_reply(
                    400, {"error": "invalid_client", "error_description": "Invalid client"}
                )
        grant = form.get("grant_type")
        if grant is None:
            return json_reply(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant_type parameter is missing",
                },
            )
        if grant != "client_credentials":
            return json_reply(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant_type must be client_credentials, "
                    "authorization_code or refresh_token",
                },
            )
        if not (
            client_id is not None
            and client_secret is not None
            and secrets.compare_digest(client_id, self.config.spotify_client_id)
            and secrets.compare_digest(client_secret, self.config.spotify_client_secret)
        ):
            return json_reply(
                400, {"error": "invalid_client", "error_description": "Invalid client"}
            )
        token = "BQ" + secrets.token_urlsafe(60)
        self._tokens[token] = req.now + self._token_lifetime
        return json_reply(
            200,
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": int(self.config.token_ttl),
            },
        )

    def _check_bearer(self, req: SandboxRequest) -> Reply | None:
        authorization = (req.header("authorization") or "").strip()
        if not authorization:
            return _error(
                401, "No token provided", (("WWW-Authenticate", 'Bearer realm="spotify"'),)
            )
        scheme, _, token = authorization.partition(" ")
        expiry = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if expiry is None:
            return _error(
                401,
                "Invalid access token",
                (("WWW-Authenticate", 'Bearer realm="spotify", error="invalid_token"'),),
            )
        if req.now >= expiry:
            return _error(
                401,
                "The access token expired",
                (
                    (
                        "WWW-Authenticate",
                        'Bearer realm="spotify", error="invalid_token", '
                        'error_description="The access token expired"',
                    ),
                ),
            )
        return None

    # -- lookups ------------------------------------------------------------------------------

    def _single(self, req: SandboxRequest, track_id: str, render: Any) -> Reply:
        if not _ID.match(track_id):
            return _error(400, "invalid id")
        track = self.catalog.by_spotify_id.get(track_id)
        if track is None:
            return _error(404, "non existing id")
        return json_reply(200, render(track, req))

    def _track_or_none(self, track_id: str, req: SandboxRequest) -> dict[str, Any] | None:
        track = self.catalog.by_spotify_id.get(track_id)
        return None if track is None else self.track_object(track, req)

    def _features_or_none(self, track_id: str, req: SandboxRequest) -> dict[str, Any] | None:
        track = self.catalog.by_spotify_id.get(track_id)
        return None if track is None else self.audio_features_object(track, req)

    def _batch(self, req: SandboxRequest, key: str, maximum: int, render: Any) -> Reply:
        raw = req.arg("ids")
        if not raw:
            return _error(400, "invalid id")
        ids = raw.split(",")
        if len(ids) > maximum:
            return _error(400, "Too many ids requested")
        if not all(_ID.match(i) for i in ids):
            return _error(400, "invalid id")
        return json_reply(200, {key: [render(i, req) for i in ids]})

    # -- search -------------------------------------------------------------------------------

    def _search(self, req: SandboxRequest) -> Reply:
        q = req.arg("q")
        if q is None or not q.strip():
            return _error(400, "No search query")
        raw_type = req.arg("type")
        if raw_type is None:
            return _error(400, "Missing parameter type")
        types = [t.strip() for t in raw_type.split(",") if t.strip()]
        bad = [t for t in types if t not in SEARCH_TYPES]
        if not types or bad:
            return _error(400, f"Bad search type field {bad[0] if bad else raw_type}")
        limit = _int_in(req.arg("limit"), 5, 0, 10)
        if limit is None:
            return _error(400, "Invalid limit")
        offset = _int_in(req.arg("offset"), 0, 0, 1000)
        if offset is None:
            return _error(400, "Invalid offset")
        market = req.arg("market")
        if market is not None and not re.fullmatch(r"[A-Z]{2}|from_token", market):
            return _error(400, "Invalid market code")
        body: dict[str, Any] = {}
        for kind in types:
            found = self.search(q) if kind == "track" else []
            items = [self.track_object(t, req) for t in found[offset : offset + limit]]
            body[kind + "s"] = self._paging(req, q, kind, items, len(found), limit, offset)
        return json_reply(200, body)

    def _paging(
        self, req: SandboxRequest, q: str, kind: str, items: list[Any], total: int, limit: int,
        offset: int,
    ) -> dict[str, Any]:  # fmt: skip
        def page(at: int) -> str:
            params = {"query": q, "type": kind, "offset": at, "limit": limit}
            if req.arg("market"):
                params["market"] = req.arg("market") or ""
            return f"{req.base_url}/spotify/v1/search?{urlencode(params, quote_via=quote)}"

        return {
            "href": page(offset),
            "items": items,
            "limit": limit,
            "next": page(offset + limit) if limit and offset + limit < total else None,
            "offset": offset,
            "previous": page(max(0, offset - limit)) if offset > 0 and limit else None,
            "total": total,
        }

    def search(self, q: str) -> list[TrackRecord]:
        """Catalog tracks matching the Spotify query *q*, best first."""
        criteria = parse_query(q)
        if not criteria.filters and not any(tokens(w) for w in criteria.words):
            return []
        hits: list[tuple[int, int, int, TrackRecord]] = []
        for track, text in self.catalog.at("spotify"):
            if not self._matches(track, text, criteria):
                continue
            wanted = [tokens(v) for f, v in criteria.filters if f == "track"]
            exact = 0 if wanted and wanted[0] == text.title else 1
            hits.append((exact, -track.spotify.popularity, track.index, track))
        hits.sort(key=lambda h: h[:3])
        return [h[3] for h in hits]

    @staticmethod
    def _matches(track: TrackRecord, text: Any, criteria: _Criteria) -> bool:
        for field, value in criteria.filters:
            words = tokens(value)
            if field == "track":
                ok = set(words) <= set(text.title) if words else fold(value) in fold(track.title)
            elif field == "artist":
                wanted = artist_tokens(value)
                if wanted:
                    ok = any(wanted <= a for a in text.artists) or wanted <= text.all_artists
                else:
                    ok = any(fold(value) == fold(a) for a in track.artists)
            elif field == "album":
                ok = bool(words) and set(words) <= set(text.album)
            elif field == "isrc":
                ok = fold(value) == fold(track.isrc)
            elif field == "year":
                ok = _year_matches(value, track.year)
            elif field == "genre":
                ok = bool(words) and set(words) <= set(tokens(track.genre))
            else:  # upc, tag: album-only filters never match a track
                ok = False
            if not ok:
                return False
        pool = set(text.title) | text.all_artists | set(text.album)
        for word in criteria.words:
            words = tokens(word)
            if words and not set(words) <= pool:
                return False
        return True

    # -- objects ------------------------------------------------------------------------------

    def _artist(self, name: str, artist_id: str, req: SandboxRequest) -> dict[str, Any]:
        return {
            "external_urls": {"spotify": f"https://open.spotify.com/artist/{artist_id}"},
            "href": f"{req.base_url}/spotify/v1/artists/{artist_id}",
            "id": artist_id,
            "name": name,
            "type": "artist",
            "uri": f"spotify:artist:{artist_id}",
        }

    def track_object(self, track: TrackRecord, req: SandboxRequest) -> dict[str, Any]:
        """The TrackObject of *track* (with ``is_playable`` instead of markets if ``market``)."""
        s = track.spotify
        artists = [
            self._artist(name, aid, req)
            for name, aid in zip(track.artists, s.artist_ids, strict=True)
        ]
        album_artists = (
            [self._artist("Various Artists", VARIOUS_ARTISTS_ID, req)]
            if s.album_type == "compilation"
            else artists
        )
        images = [
            {
                "height": size,
                "url": f"https://i.scdn.co/image/ab67616d{code}{s.image_hash}",
                "width": size,
            }
            for size, code in ((640, "0000b273"), (300, "00001e02"), (64, "00004851"))
        ]
        album: dict[str, Any] = {
            "album_type": s.album_type,
            "artists": album_artists,
            "external_urls": {"spotify": f"https://open.spotify.com/album/{s.album_id}"},
            "href": f"{req.base_url}/spotify/v1/albums/{s.album_id}",
            "id": s.album_id,
            "images": images,
            "name": s.album_name,
            "release_date": s.release_date,
            "release_date_precision": s.release_date_precision,
            "total_tracks": s.album_total_tracks,
            "type": "album",
            "uri": f"spotify:album:{s.album_id}",
        }
        obj: dict[str, Any] = {
            "album": album,
            "artists": artists,
            "disc_number": 1,
            "duration_ms": s.duration_ms,
            "explicit": s.explicit,
            "external_ids": {"isrc": track.isrc},
            "external_urls": {"spotify": f"https://open.spotify.com/track/{s.id}"},
            "href": f"{req.base_url}/spotify/v1/tracks/{s.id}",
            "id": s.id,
            "is_local": False,
            "name": track.title,
            "popularity": s.popularity,
            "preview_url": self._preview_url(track, req),
            "track_number": s.track_number,
            "type": "track",
            "uri": f"spotify:track:{s.id}",
        }
        if req.arg("market"):
            album["is_playable"] = True
            obj["is_playable"] = True
        else:
            album["available_markets"] = list(_MARKETS)
            obj["available_markets"] = list(_MARKETS)
        return obj

    def _preview_url(self, track: TrackRecord, req: SandboxRequest) -> str | None:
        """A 30 s preview for about a fifth of the tracks, never in a multi-get answer."""
        digest = Digest(f"spotify-preview/{track.spotify.id}")
        if req.arg("ids") is not None or digest.per_mille("has-preview") >= 200:
            return None
        cid = self.config.spotify_client_id
        return f"https://p.scdn.co/mp3-preview/{digest.hex('preview', 40)}?cid={quote(cid)}"

    def audio_features_object(self, track: TrackRecord, req: SandboxRequest) -> dict[str, Any]:
        """The audio-features object of *track*."""
        s, f = track.spotify, track.spotify.features
        return {
            "danceability": f.danceability,
            "energy": f.energy,
            "key": f.key,
            "loudness": f.loudness,
            "mode": f.mode,
            "speechiness": f.speechiness,
            "acousticness": f.acousticness,
            "instrumentalness": f.instrumentalness,
            "liveness": f.liveness,
            "valence": f.valence,
            "tempo": f.tempo,
            "type": "audio_features",
            "id": s.id,
            "uri": f"spotify:track:{s.id}",
            "track_href": f"{req.base_url}/spotify/v1/tracks/{s.id}",
            "analysis_url": f"{req.base_url}/spotify/v1/audio-analysis/{s.id}",
            "duration_ms": s.duration_ms,
            "time_signature": f.time_signature,
        }


def _int_in(raw: str | None, default: int, lo: int, hi: int) -> int | None:
    """*raw* as an int in ``[lo, hi]``, *default* when absent, ``None`` when invalid."""
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if lo <= value <= hi else None


def _year_matches(value: str, year: int) -> bool:
    match = re.fullmatch(r"(\d{4})(?:-(\d{4}))?", value.strip())
    if not match:
        return False
    lo = int(match.group(1))
    hi = int(match.group(2) or lo)
    return lo <= year <= hi
