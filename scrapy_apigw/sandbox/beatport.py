"""Beatport API v4 (PROVIDERS.md section 5a), mounted at ``/beatport``.

No licensed real recording exists; the shapes follow PROVIDERS.md and the synthetic fixtures
of beets-beatport4 (track, search, release and token objects). Routes (below
``{url}/beatport/v4``):

- ``POST /auth/o/token/``: OAuth 2 (Django OAuth Toolkit). ``grant_type=client_credentials``
  with ``client_id``/``client_secret`` in the form body (or HTTP Basic), or
  ``grant_type=refresh_token`` with ``refresh_token``. Success ``{"access_token",
  "expires_in", "token_type": "Bearer", "scope": "app:locker user:dj", "refresh_token"}``
  (a refresh token is good for one refresh, as Django OAuth Toolkit rotates them); bad
  client 401 ``{"error": "invalid_client"}``, bad refresh token 400 ``{"error":
  "invalid_grant"}``, other grants 400 ``{"error": "unsupported_grant_type"}``. A token
  lives ``beatport_token_ttl / speed`` seconds. Only outage faults apply to it.
- ``GET /catalog/search/?q=&type=tracks&per_page=&page=``: every word of ``q`` must appear in
  the track's name, mix name or artists (case- and accent-insensitive); exact names first,
  then catalog order. ``{"tracks": [...], "releases": [], "page", "per_page", "count"}``.
- ``GET /catalog/tracks/{id}/``: the track object; unknown id 404 ``{"detail": "Not found."}``.

Calls need ``Authorization: Bearer``: none 401 ``{"detail": "Authentication credentials were
not provided."}``, unknown or expired 401 ``{"detail": "Invalid token."}`` (wording
unverified). Rate limits are undocumented: 120 requests per 60 s window here (scaled by
``speed``), over it 429 ``{"detail": "Request was throttled. Expected available in N
seconds."}`` with ``Retry-After`` (DRF's throttling).

Which tracks Beatport carries: every catalog track except those of the genres in
:data:`NOT_ON_BEATPORT` (Beatport sells electronic music). Its records derive from the track's
digest (:func:`beatport_record`): an integer BPM (the Spotify tempo rounded, as Beatport shows
whole BPMs), the Spotify key (a digest key where Spotify detected none), the genre mapped to
Beatport's names, the Discogs label and catalog number when there is a release, and the ISRC.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from typing import Any

from scrapy_apigw.sandbox.catalog import Catalog
from scrapy_apigw.sandbox.config import SandboxConfig
from scrapy_apigw.sandbox.genres import LABELS, profile_for
from scrapy_apigw.sandbox.http import Reply, SandboxRequest, json_reply
from scrapy_apigw.sandbox.limits import SlidingWindow, retry_after_header
from scrapy_apigw.sandbox.provider import Provider
from scrapy_apigw.sandbox.records import Digest, TrackRecord, release_title_of
from scrapy_apigw.sandbox.text import fold, tokens

__all__ = ["NOT_ON_BEATPORT", "Beatport", "BeatportRecord", "beatport_record"]

RATE_LIMIT = 120
WINDOW_SECONDS = 60.0
#: Catalog genres Beatport does not carry.
NOT_ON_BEATPORT = frozenset({"pop", "synth-pop", "disco"})

#: Catalog genre -> (Beatport genre, sub-genre or None).
GENRES: dict[str, tuple[str, str | None]] = {
    "house": ("House", None),
    "deep house": ("Deep House", None),
    "tech house": ("Tech House", None),
    "progressive house": ("Progressive House", None),
    "melodic house": ("Melodic House & Techno", "Melodic House"),
    "melodic techno": ("Melodic House & Techno", "Melodic Techno"),
    "techno": ("Techno (Peak Time / Driving)", "Driving"),
    "minimal techno": ("Minimal / Deep Tech", "Deep Tech"),
    "trance": ("Trance (Main Floor)", "Progressive Trance"),
    "eurodance": ("Dance / Pop", None),
    "dance-pop": ("Dance / Pop", None),
    "french house": ("Nu Disco / Disco", "French House"),
    "nu-disco": ("Nu Disco / Disco", None),
    "electro": ("Electro (Classic / Detroit / Modern)", None),
    "electro house": ("Electro House", None),
    "big room": ("Mainstage", "Big Room"),
    "edm": ("Mainstage", None),
    "tropical house": ("Dance / Pop", "Tropical House"),
    "future bass": ("Trap / Future Bass", "Future Bass"),
    "big beat": ("Breaks / Breakbeat / UK Bass", "Big Beat"),
    "breakbeat": ("Breaks / Breakbeat / UK Bass", None),
    "drum and bass": ("Drum & Bass", "Liquid"),
    "dubstep": ("Dubstep", None),
    "uk garage": ("UK Garage / Bassline", None),
    "indie dance": ("Indie Dance", None),
    "electronica": ("Electronica", None),
    "downtempo": ("Downtempo", None),
    "trip hop": ("Downtempo", "Trip Hop"),
    "ambient": ("Ambient / Experimental", None),
    "synthwave": ("Electronica", "Synthwave"),
    "moombahton": ("Dance / Pop", "Moombahton"),
    "afro house": ("Afro House", None),
}

#: Beatport's key names by Spotify pitch class (its site writes these spellings).
KEY_NOTES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_VERSION = re.compile(r"\s*(?:\(([^()]*)\)|\[([^\[\]]*)\]|\s-\s(.+))\s*$")


@dataclass(frozen=True)
class BeatportRecord:
    """What Beatport says about one catalog track."""

    id: int
    name: str
    mix_name: str
    bpm: int
    pitch: int  # Spotify pitch class 0..11
    mode: int  # 1 major, 0 minor
    genre: str
    genre_id: int
    sub_genre: str | None
    label: str
    label_id: int
    catalog_number: str
    release_id: int
    release_name: str
    publish_date: str
    isrc: str
    length_ms: int


def beatport_record(track: TrackRecord) -> BeatportRecord | None:
    """The Beatport record of *track*, or None when Beatport does not carry it."""
    if track.genre in NOT_ON_BEATPORT:
        return None
    d = Digest(track.key)
    name = release_title_of(track.title)
    rest = track.title[len(name) :].strip() if track.title.startswith(name) else ""
    match = _VERSION.match(rest) if rest else None
    mix = next((g for g in match.groups() if g), "") if match else ""
    features = track.spotify.features
    pitch, mode = features.key, features.mode
    if pitch < 0:  # Spotify detected none; Beatport always names one
        pitch, mode = d.below("beatport-key", 12), d.below("beatport-mode", 2)
    genre, sub_genre = GENRES.get(track.genre, ("Electronica", None))
    discogs = track.discogs
    if discogs is not None and discogs.catno != "none":
        label, catno = discogs.label, discogs.catno
    else:
        choice = LABELS[d.choice("beatport-label", profile_for(track.genre).labels)]
        label = choice.name
        catno = f"{choice.prefix}{d.between('beatport-catno', 1, 480):03d}"
    month, day = d.between("month", 1, 12), d.between("day", 1, 28)
    return BeatportRecord(
        id=d.between("beatport-track", 1_000_000, 29_999_999),
        name=name,
        mix_name=mix.strip() or "Original Mix",
        bpm=round(features.tempo),
        pitch=pitch,
        mode=mode,
        genre=genre,
        genre_id=Digest(fold(genre)).between("beatport-genre", 1, 120),
        sub_genre=sub_genre,
        label=label,
        label_id=Digest(fold(label)).between("beatport-label", 1, 99_999),
        catalog_number=catno,
        release_id=d.between("beatport-release", 1_000_000, 9_999_999),
        release_name=track.release_title,
        publish_date=f"{track.year}-{month:02d}-{day:02d}",
        isrc=track.isrc,
        length_ms=track.spotify.duration_ms,
    )


def _slug(text: str) -> str:
    """Beatport's URL slug: folded words joined by ``-`` (``"melodic-house-techno"``)."""
    return "-".join(tokens(text))


def _camelot(pitch: int, mode: int) -> tuple[int, str]:
    """Camelot number and letter of a pitch class and mode (PROVIDERS.md's closed form)."""
    number = (7 * pitch + (8 if mode == 1 else 5)) % 12
    return number or 12, "B" if mode == 1 else "A"


def _detail(status: int, detail: str, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return json_reply(status, {"detail": detail}, headers)


class Beatport(Provider):
    """Beatport v4 catalog and token endpoint over a :class:`Catalog`."""

    name = "beatport"

    def __init__(self, catalog: Catalog, config: SandboxConfig) -> None:
        self.catalog = catalog
        self.config = config
        self.window = SlidingWindow(WINDOW_SECONDS / config.speed)
        self._lifetime = config.beatport_token_ttl / config.speed
        self._tokens: dict[str, float] = {}  # access token -> expiry (sandbox clock)
        self._refresh: set[str] = set()  # refresh tokens not used yet
        self.records: dict[int, tuple[TrackRecord, BeatportRecord]] = {}
        for track in catalog:
            record = beatport_record(track)
            if record is not None:
                self.records[record.id] = (track, record)
        #: pre-tokenised (name + mix, artists) per record id, for the search
        self._words = {
            rid: set(tokens(f"{r.name} {r.mix_name}")) | set(tokens(" ".join(t.artists)))
            for rid, (t, r) in self.records.items()
        }

    def reset(self) -> None:
        """Forget the rate-limit window (tokens stay valid)."""
        self.window.reset()

    def fault_exempt(self, req: SandboxRequest) -> bool:
        """The token endpoint only suffers outages."""
        return req.segments()[:3] == ["v4", "auth", "o"]

    def rate_limit_reply(self, req: SandboxRequest, retry_after: str | None) -> Reply:
        """DRF's throttled answer."""
        wait = retry_after if retry_after is not None else "1"
        return _detail(429, reply_detail(wait), (("Retry-After", wait),))

    def error_reply(self, req: SandboxRequest, status: int, fault: str) -> Reply:
        """A 5xx with a DRF body."""
        return _detail(status, "Service temporarily unavailable, try again later.")

    def serve(self, req: SandboxRequest) -> Reply:
        """Token endpoint, or auth check, rate limit and routing of a catalog call."""
        segs = [s for s in req.segments() if s]
        if segs == ["v4", "auth", "o", "token"]:
            return self._token(req)
        if segs[:2] != ["v4", "catalog"]:
            return _detail(404, "Not found.")
        refused = self._check_bearer(req)
        if refused is not None:
            return refused
        decision = self.window.acquire(req.now, RATE_LIMIT)
        if not decision.allowed:
            wait = retry_after_header(decision.retry_after)
            headers = (("Retry-After", wait),)
            return json_reply(429, {"detail": reply_detail(wait)}, headers, rate_limited=True)
        if req.method not in ("GET", "HEAD"):
            return _detail(405, f'Method "{req.method}" not allowed.')
        route = segs[2:]
        if route == ["search"]:
            return self._search(req)
        if len(route) == 2 and route[0] == "tracks":
            found = self.records.get(int(route[1])) if route[1].isdigit() else None
            if found is None:
                return _detail(404, "Not found.")
            return json_reply(200, self.track_object(*found))
        return _detail(404, "Not found.")

    # -- auth ---------------------------------------------------------------------------------

    def _token(self, req: SandboxRequest) -> Reply:
        if req.method != "POST":
            return _detail(405, f'Method "{req.method}" not allowed.')
        form = req.form()
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        authorization = req.header("authorization") or ""
        if authorization[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
                client_id, _, client_secret = decoded.partition(":")
            except (ValueError, UnicodeDecodeError):
                client_id = client_secret = None
        if not (
            client_id is not None
            and client_secret is not None
            and secrets.compare_digest(client_id, self.config.beatport_client_id)
            and secrets.compare_digest(client_secret, self.config.beatport_client_secret)
        ):
            return json_reply(401, {"error": "invalid_client"})
        grant = form.get("grant_type")
        if grant == "refresh_token":
            refresh = form.get("refresh_token") or ""
            if refresh not in self._refresh:
                return json_reply(400, {"error": "invalid_grant"})
            self._refresh.discard(refresh)  # rotated: good for one refresh
        elif grant != "client_credentials":
            return json_reply(400, {"error": "unsupported_grant_type"})
        token = secrets.token_urlsafe(24)
        refresh = secrets.token_urlsafe(24)
        self._tokens[token] = req.now + self._lifetime
        self._refresh.add(refresh)
        return json_reply(
            200,
            {
                "access_token": token,
                "expires_in": int(self.config.beatport_token_ttl),
                "token_type": "Bearer",
                "scope": "app:locker user:dj",
                "refresh_token": refresh,
            },
        )

    def _check_bearer(self, req: SandboxRequest) -> Reply | None:
        authorization = (req.header("authorization") or "").strip()
        if not authorization:
            return _detail(401, "Authentication credentials were not provided.")
        scheme, _, token = authorization.partition(" ")
        expiry = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if expiry is None or req.now >= expiry:
            return _detail(401, "Invalid token.")
        return None

    # -- search -------------------------------------------------------------------------------

    def _search(self, req: SandboxRequest) -> Reply:
        q = (req.arg("q") or "").strip()
        kind = req.arg("type") or "tracks"
        per_page = _int(req.arg("per_page"), 10)
        page = _int(req.arg("page"), 1)
        if not q or per_page is None or page is None or not 1 <= per_page <= 150 or page < 1:
            return _detail(400, "Invalid search parameters.")
        words = set(tokens(q))
        hits: list[tuple[int, int, int]] = []
        if kind == "tracks" and words:
            for rid, (track, record) in self.records.items():
                if words <= self._words[rid]:
                    exact = 0 if set(tokens(record.name)) <= words else 1
                    hits.append((exact, track.index, rid))
        hits.sort()
        start = (page - 1) * per_page
        tracks = [self.track_object(*self.records[h[2]]) for h in hits[start : start + per_page]]
        return json_reply(
            200,
            {"tracks": tracks, "releases": [], "page": page, "per_page": per_page,
             "count": len(hits)},
        )  # fmt: skip

    # -- objects ------------------------------------------------------------------------------

    def track_object(self, track: TrackRecord, r: BeatportRecord) -> dict[str, Any]:
        """The v4 track object of *track* (PROVIDERS.md section 5a fields)."""
        number, letter = _camelot(r.pitch, r.mode)
        note = KEY_NOTES[r.pitch]
        chord = "Major" if r.mode == 1 else "Minor"
        image = f"https://geo-media.beatport.com/image_size/500x500/{r.release_id}.jpg"
        seconds = round(r.length_ms / 1000)
        return {
            "id": r.id,
            "name": r.name,
            "mix_name": r.mix_name,
            "slug": _slug(r.name),
            "artists": [
                {
                    "id": Digest(fold(a)).between("beatport-artist", 1, 999_999),
                    "name": a,
                    "slug": _slug(a),
                }
                for a in track.artists
            ],
            "remixers": [],
            "bpm": r.bpm,
            "key": {
                "id": r.pitch * 2 + r.mode + 1,
                "name": f"{note} {chord}",
                "camelot_number": number,
                "camelot_letter": letter,
                "chord_type": {"id": 1 if r.mode == 1 else 2, "name": chord},
                "letter": note[0],
                "is_sharp": note.endswith("#"),
                "is_flat": note.endswith("b"),
            },
            "genre": {"id": r.genre_id, "name": r.genre, "slug": _slug(r.genre)},
            "sub_genre": (
                {
                    "id": Digest(fold(r.sub_genre)).between("beatport-sub", 1, 300),
                    "name": r.sub_genre,
                    "slug": _slug(r.sub_genre),
                }
                if r.sub_genre
                else None
            ),
            "isrc": r.isrc,
            "catalog_number": r.catalog_number,
            "release": {
                "id": r.release_id,
                "name": r.release_name,
                "label": {"id": r.label_id, "name": r.label},
                "image": {"uri": image, "dynamic_uri": image.replace("500x500", "{w}x{h}")},
            },
            "length_ms": r.length_ms,
            "length": f"{seconds // 60}:{seconds % 60:02d}",
            "publish_date": r.publish_date,
            "new_release_date": r.publish_date,
            "number": 1,
            "price": {"code": "USD", "symbol": "$", "value": 1.49, "display": "$1.49"},
        }


def reply_detail(wait: str) -> str:
    """DRF's throttled message."""
    return f"Request was throttled. Expected available in {wait} seconds."


def _int(raw: str | None, default: int) -> int | None:
    if raw is None or raw == "":
        return default
    return int(raw) if raw.isdigit() else None
