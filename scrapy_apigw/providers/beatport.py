"""Beatport v4 client: BPM, key, genre, label, catalog number (PROVIDERS.md section 5a).

Access is partner-only (Beatport issues no public client ids): without credentials the
provider is skipped with one warning, as any provider without them.

Calls (paths relative to ``https://api.beatport.com/v4``; the transport adds the bearer token):

- ``POST /auth/o/token/`` (``token_url``): OAuth 2, ``grant_type=client_credentials`` with the
  partner's ``client_id`` and ``client_secret`` in the form body, answered ``{access_token,
  expires_in, refresh_token, token_type, scope}`` (36000 s seen); before it expires, or after
  a 401, ``grant_type=refresh_token`` with the refresh token (:class:`BeatportAuth`);
- ``GET /catalog/search/?q=<artist> <title>&type=tracks&per_page=N`` (data_type ``"search"``),
  answered ``{"tracks": [...], "releases": [...]}``; candidates are ranked with
  :func:`scrapy_apigw.core.matching.best_match` on ``name (mix_name)`` and ``artists``;
- ``GET /catalog/tracks/{id}/`` (data_type ``"track"``) for the chosen track: the full track
  object (``key.camelot_number``, ``isrc``, ``catalog_number``, ``release.label``).

Errors are DRF style, ``{"detail": "Not found."}``. Rate limits are undocumented.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from scrapy_apigw.core.camelot import PITCH_CLASSES, camelot_from_spotify, key_name
from scrapy_apigw.core.confidence import Candidate, best_candidate
from scrapy_apigw.core.matching import (
    normalize_isrc,
    primary_artist,
    strip_featuring,
)
from scrapy_apigw.core.outcome import Outcome, classify_status
from scrapy_apigw.exceptions import AuthError
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
from scrapy_apigw.secrets import Secret

__all__ = [
    "PROVIDER",
    "SHAPES",
    "BeatportAuth",
    "BeatportClient",
    "beatport_key",
    "track_fields",
]

logger = logging.getLogger(__name__)

#: Longest artist/title text put in the search query (characters).
MAX_QUERY_VALUE = 200

#: What each call needs from a 2xx body, by data type (PROVIDERS.md section 5a).
SHAPES: dict[str, Shape] = {
    "search": ("tracks", list),
    "track": ("id", int),
}

_PITCH = {name: index for index, name in enumerate(PITCH_CLASSES)}
_FLATS = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#", "Cb": "B", "Fb": "E"}
_KEY_NAME = re.compile(r"^\s*([A-Ga-g])\s*([#♯b♭]?)\s+(major|minor|maj|min)\s*$", re.IGNORECASE)


def beatport_key(key: Any) -> tuple[str, str | None] | None:
    """``(key, camelot_key)`` of a Beatport ``key`` object, or None when it names no key.

    The name (``"G Minor"``, ``"Eb Major"``, ``"F♯ minor"``) is written as the other sources
    write it: ASCII sharps, lower-case mode (``"G minor"``, ``"D# major"``;
    :func:`scrapy_apigw.core.camelot.key_name`). The Camelot code is Beatport's own
    ``camelot_number`` + ``camelot_letter`` (``"6A"``) when given and valid, else derived from
    the name (search results may carry the name only).
    """
    if not isinstance(key, dict) or not isinstance(key.get("name"), str):
        return None
    match = _KEY_NAME.match(key["name"])
    if match is None:
        return None
    letter, accidental, mode_word = match.groups()
    note = letter.upper() + {"♯": "#", "♭": "b"}.get(accidental, accidental)
    note = _FLATS.get(note, note)
    pitch = _PITCH.get(note)
    if pitch is None:  # "E#", "B#": not a pitch-class name any source uses
        return None
    mode = 1 if mode_word.lower().startswith("maj") else 0
    name = key_name(pitch, mode)
    if name is None:
        return None
    number, letter_code = key.get("camelot_number"), key.get("camelot_letter")
    camelot = camelot_from_spotify(pitch, mode)
    if (
        isinstance(number, int)
        and not isinstance(number, bool)
        and 1 <= number <= 12
        and letter_code in ("A", "B")
    ):
        camelot = f"{number}{letter_code}"
    return name, camelot


def _is_id(value: Any) -> bool:
    """True for a Beatport id: a positive int (bools excluded)."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _name(value: Any) -> str | None:
    """``value["name"]`` of a Beatport object (genre, sub_genre, label), stripped, else None."""
    name = value.get("name") if isinstance(value, dict) else None
    return name.strip() if isinstance(name, str) and name.strip() else None


def _artists(item: dict[str, Any]) -> list[str]:
    return [n for n in (_name(a) for a in listed(item.get("artists"))) if n]


#: Beatport's mix name of the original version.
ORIGINAL_MIX = "original mix"


def full_title(item: dict[str, Any], original_named: bool = True) -> str:
    """``"name (mix_name)"`` of a track object; ``name`` alone without a mix name, and for
    the ``"Original Mix"`` unless *original_named* (the scraped title says "Original Mix"
    too). Beatport names every version, the original too: a scraped title without a version
    is the original's, and so ranks first among versions that score the same (a radio or
    extended edit is the same recording to :func:`~scrapy_apigw.core.matching.title_score`;
    the literal title then decides)."""
    name = str(item.get("name") or "").strip()
    mix = item.get("mix_name")
    if not isinstance(mix, str) or not mix.strip():
        return name
    if mix.strip().casefold() == ORIGINAL_MIX and not original_named:
        return name
    return f"{name} ({mix.strip()})"


def track_fields(item: dict[str, Any]) -> dict[str, Any]:
    """Output fields of a Beatport track object.

    ``beatport_id`` (int ``id``), ``bpm`` (``bpm`` as a float, 0.1 precision; absent when 0 or
    missing), ``key`` and ``camelot_key`` (:func:`beatport_key`), ``genre`` and ``sub_genre``
    (their ``name``), ``label`` (``release.label.name``), ``catalog_number``, ``isrc`` (when
    valid), ``mix_name`` (``"Original Mix"``, ``"Extended Mix"``).
    """
    fields: dict[str, Any] = {"beatport_id": int(item["id"])}
    bpm = item.get("bpm")
    if isinstance(bpm, int | float) and not isinstance(bpm, bool) and 0 < bpm < 1000:
        fields["bpm"] = round(float(bpm), 1)
    key = beatport_key(item.get("key"))
    if key is not None:
        fields["key"], camelot = key
        if camelot:
            fields["camelot_key"] = camelot
    for source in ("genre", "sub_genre"):
        name = _name(item.get(source))
        if name:
            fields[source] = name
    release = item.get("release")
    label = _name(release.get("label")) if isinstance(release, dict) else None
    if label:
        fields["label"] = label
    catalog = item.get("catalog_number")
    if not isinstance(catalog, str) and isinstance(release, dict):
        catalog = release.get("catalog_number")
    if isinstance(catalog, str) and catalog.strip():
        fields["catalog_number"] = catalog.strip()
    isrc = normalize_isrc(item.get("isrc"))
    if isrc:
        fields["isrc"] = isrc
    mix = item.get("mix_name")
    if isinstance(mix, str) and mix.strip():
        fields["mix_name"] = mix.strip()
    return fields


class BeatportClient:
    """Beatport part of the waterfall.

    Args:
        per_page: search results asked for, 1..100.

    Fields produced: see :func:`track_fields`. The search result is enough when the track
    lookup answers "not found"; the lookup's object is used otherwise (it has the Camelot code,
    ISRC and catalog number). It sets ``track.isrc`` when the track had no valid ISRC.
    """

    name = "beatport"

    def __init__(self, per_page: int = 5) -> None:
        if not 1 <= per_page <= 100:
            raise ValueError(f"per_page must be 1..100, got {per_page}")
        self.per_page = per_page

    def classify(self, status: int, data: Any) -> Outcome:
        """Classify a Beatport answer by status (DRF bodies ``{"detail": ...}`` add nothing):
        401 AUTH_FAILED (no, invalid or expired token), 403 FORBIDDEN, 404 NOT_FOUND,
        429 RATE_LIMITED, 5xx SERVER_ERROR, other 4xx CLIENT_ERROR."""
        return classify_status(status)

    def check_shape(self, call: ApiCall, data: Any) -> str | None:
        """What a 2xx body lacks for *call* (see :data:`SHAPES`), or None."""
        return check_shape(SHAPES, call, data)

    async def enrich(self, track: TrackContext, fetch: Fetch) -> ProviderResult:
        """Search the track, then read its full object."""
        artist = primary_artist(track.artist, track.artists)
        title = strip_featuring(track.title)
        if not (artist and title):
            return ProviderResult("skipped", reason="no artist and title")
        query = f"{artist[:MAX_QUERY_VALUE]} {title[:MAX_QUERY_VALUE]}"
        params = (("q", query), ("type", "tracks"), ("per_page", str(self.per_page)))
        answer = await fetch(ApiCall(self.name, "search", "/catalog/search/", params))
        if answer.kind in ("rejected", "forbidden"):
            return ProviderResult("failed", reason=f"search refused (HTTP {answer.status})")
        found = self.pick(answer, track)
        if found is None:
            return ProviderResult("not_found", reason="no matching track")
        item, confidence = found
        detail = await fetch(ApiCall(self.name, "track", f"/catalog/tracks/{item['id']}/"))
        data = detail.data if detail.kind == "ok" else None
        if isinstance(data, dict) and _is_id(data.get("id")):
            item = data
        fields = track_fields(item)
        if "isrc" in fields and normalize_isrc(track.isrc) is None:
            track.isrc = fields["isrc"]
        evidence: dict[str, Any] = {"isrcs": [fields["isrc"]]} if "isrc" in fields else {}
        length = item.get("length_ms")
        if isinstance(length, int) and length > 0:
            evidence["duration_ms"] = length
        return ProviderResult("ok", fields, match=match_of(confidence, "search"), evidence=evidence)

    @staticmethod
    def _pick(answer: ApiAnswer, track: TrackContext) -> dict[str, Any] | None:
        found = BeatportClient.pick(answer, track)
        return found[0] if found else None

    @staticmethod
    def pick(answer: ApiAnswer, track: TrackContext) -> tuple[dict[str, Any], float] | None:
        """``(track object, confidence)`` of the most confident search item (:func:`candidate`:
        Beatport names every version in ``mix_name``, the original as "Original Mix"), or None
        below ``track.min_confidence``."""
        if answer.kind != "ok" or not isinstance(answer.data, dict):
            return None
        items = [
            i
            for i in listed(answer.data.get("tracks"))
            if isinstance(i, dict) and _is_id(i.get("id")) and i.get("name")
        ]
        return best_candidate(items, wanted_of(track), candidate, minimum=track.min_confidence)


def candidate(item: dict[str, Any]) -> Candidate:
    """The :class:`~scrapy_apigw.core.confidence.Candidate` of a Beatport track object: its
    :func:`full_title` (the version from ``mix_name``), artists, ``length_ms``, ``isrc`` and
    ``publish_date`` (the earlier release wins a tie)."""
    length = item.get("length_ms")
    isrc = item.get("isrc")
    released = item.get("publish_date") or item.get("new_release_date")
    return Candidate(
        title=full_title(item),
        artists=_artists(item),
        duration_ms=length if isinstance(length, int) and length > 0 else None,
        isrcs=[isrc] if isinstance(isrc, str) and isrc else [],
        released=released if isinstance(released, str) else None,
    )


# -- auth ---------------------------------------------------------------------------------------


def _granted(status: int, data: Any) -> str | None:
    """The access token of a Beatport token answer, or None: HTTP 200 with an
    ``access_token`` and a ``token_type`` that is "bearer" in any case, or none at all
    (beets-beatport4's recorded shape has none)."""
    if status != 200 or not isinstance(data, dict) or not data.get("access_token"):
        return None
    kind = data.get("token_type")
    if kind is not None and str(kind).lower() != "bearer":
        return None
    return str(data["access_token"])


class BeatportAuth(ClientCredentialsAuth):
    """Beatport's OAuth 2: a client-credentials grant, then refresh-token grants.

    The first token comes from ``grant_type=client_credentials`` (``client_id`` and
    ``client_secret`` in the form body, as Django OAuth Toolkit accepts them). Its
    ``refresh_token`` (kept in memory only, as the access token) renews it when less than
    ``min(60 s, 10 %)`` of its lifetime remains or after a 401 (:meth:`invalidate`, which
    keeps the refresh token). A refused refresh (``invalid_grant``: revoked or used) falls
    back to a new client-credentials grant; a refused grant is final (:class:`AuthError`,
    see :class:`~scrapy_apigw.providers.auth.ClientCredentialsAuth`).

    Attributes:
        refreshes: refresh-token grants obtained (for tests and the debug log).
    """

    def __init__(
        self, client_id: Secret, client_secret: Secret, post: Any, clock: Any, provider: str
    ) -> None:
        super().__init__(client_id, client_secret, post, clock, provider)
        self._refresh_token: Secret | None = None
        self.refreshes = 0

    def _form(self, grant: str, **extra: str) -> bytes:
        fields = {
            "grant_type": grant,
            **extra,
            "client_id": self._client_id.reveal(),
            "client_secret": self._client_secret.reveal(),
        }
        return urlencode(fields).encode("ascii")

    async def _request_token(self) -> Secret:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if self._refresh_token is not None:
            body = self._form("refresh_token", refresh_token=self._refresh_token.reveal())
            status, data = await self._post(headers, body)
            token = _granted(status, data)
            if token is not None:
                self.refreshes += 1
                return self._granted_token(token, data)
            logger.debug("apigw: %s refresh token refused (HTTP %s)", self.provider, status)
            self._refresh_token = None
        status, data = await self._post(headers, self._form("client_credentials"))
        token = _granted(status, data)
        if token is None:
            error = data.get("error") if isinstance(data, dict) else None
            raise AuthError(
                self.provider, f"token request refused (HTTP {status}, {error or 'no token'})"
            )
        return self._granted_token(token, data)

    def _granted_token(self, token: str, data: dict[str, Any]) -> Secret:
        refresh = data.get("refresh_token")
        self._refresh_token = Secret(str(refresh)) if refresh else None
        return self._keep(token, data)


def _auth(creds: Mapping[str, Any], ctx: AuthContext) -> Auth:
    return BeatportAuth(
        creds["client_id"], creds["client_secret"], ctx.post, ctx.clock, ctx.provider
    )


# -- the provider declaration (scrapy_apigw.providers.spec) --------------------------------------

#: Beatport: PROVIDERS.md section 0 (2 req/s, burst 2, breaker 5 / 90 s / 2; BPM cached 60 days).
PROVIDER = ProviderSpec(
    name="beatport",
    config=ProviderConfig(
        name="beatport",
        base_url="https://api.beatport.com/v4",
        token_url="https://api.beatport.com/v4/auth/o/token/",
        domains=("api.beatport.com",),
        rate=2,
        burst=2,
        failure_threshold=5,
        open_timeout=90,
        success_threshold=2,
        cache_ttl={"track": 60 * DAY, "search": 60 * DAY},
    ),
    client=lambda ctx: BeatportClient(),
    credentials=(
        # BEATPORT_API_KEY is the partner's client id (PROVIDERS.md section 0); the sandbox's
        # values are scrapy_apigw.sandbox.config.DEFAULT_BEATPORT_*.
        Credential("client_id", "BEATPORT_API_KEY", sandbox="sandbox-beatport-key"),
        Credential("client_secret", "BEATPORT_API_SECRET", sandbox="sandbox-beatport-secret"),
    ),
    auth=_auth,
    sandbox_path="/beatport/v4",
    sandbox_token_path="/beatport/v4/auth/o/token/",
)
