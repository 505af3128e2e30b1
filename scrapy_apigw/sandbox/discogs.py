"""Discogs API (PROVIDERS.md section 3), mounted at ``/discogs``.

Routes (below ``{url}/discogs``):

- ``GET /database/search?q=&type=&artist=&track=&title=&release_title=&label=&catno=&year=
  &country=&genre=&style=&per_page=&page=``: authentication required (401 ``{"message": "You
  must authenticate to access this resource."}``). ``type`` ``release`` or ``master`` (none: both;
  ``artist``/``label`` give no results). ``per_page`` default 50, max 100. Results as in the
  go-discogs fixture: ``title`` "Artist - Title", ``year`` a *string* (absent when unknown),
  ``label[]``, ``format[]``, ``catno``... About 3.5 % of catalog tracks have no release at all.
- ``GET /releases/{id}``: the full release (``year`` an *int*, 0 when unknown; ``released``
  "YYYY-MM-DD", "YYYY-MM-00" or "YYYY"; ``labels[].catno``, "none" for Not On Label), or 404
  ``{"message": "Release not found."}``. Allowed without authentication.
- ``GET /masters/{id}``: the master, or 404 ``{"message": "Master Release not found."}``.

Tracklists look like real ones (go-discogs ``releases_71989``, joalla ``releases_3329867``):
besides ``track`` entries, some releases open with a ``heading`` entry (``position`` "",
titled like the release, which is often the track's own title), some group their later
versions under an ``index`` entry with ``sub_tracks``, and some credit ``artists`` per track
(the release's artists on its own tracks, a guest artist on a guest track). Which layout a
release gets is derived from its id, so it is the same on every run. A compilation decoy is
credited to "Various" (artist 194) like real compilations: search title ``"Various - <name>"``,
``Compilation`` among the format's descriptions, every track crediting its own artists.

Auth: ``Authorization: Discogs token=<t>``, ``?token=<t>``, or the consumer key and secret:
``Authorization: Discogs key=<k>, secret=<s>`` or ``?key=<k>&secret=<s>``. Wrong credentials
get 401 ``{"message": "Invalid consumer token. Please register an app before making
requests."}`` on every route (wording unverified).

User-Agent: mandatory (PROVIDERS.md section 3: without one Discogs "silently blocks" the
client). A request without one is answered 403 ``{"message": "Forbidden"}`` (the exact answer
is unverified) before any other check, and not counted by the rate limit.

Rate limit: a moving 60 s window per IP (all clients of the sandbox are one IP), 60 requests
authenticated, 25 unauthenticated; each request is checked against its own quota. Every
response carries ``X-Discogs-Ratelimit`` (the quota), ``X-Discogs-Ratelimit-Used`` (requests in
the window, this one included) and ``X-Discogs-Ratelimit-Remaining``. Over the quota: 429
``{"message": "You are making requests too quickly."}`` without ``Retry-After`` (undocumented).
"""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import urlencode

from scrapy_apigw.sandbox.catalog import Catalog
from scrapy_apigw.sandbox.config import SandboxConfig
from scrapy_apigw.sandbox.http import Reply, SandboxRequest, json_reply
from scrapy_apigw.sandbox.limits import Decision, SlidingWindow
from scrapy_apigw.sandbox.provider import Provider
from scrapy_apigw.sandbox.records import (
    DISCOGS_VARIOUS,
    DISCOGS_VARIOUS_ID,
    Digest,
    DiscogsRecord,
    TrackRecord,
    discogs_artist_id,
)
from scrapy_apigw.sandbox.text import artist_tokens, fold, tokens

__all__ = [
    "AUTHENTICATED_LIMIT",
    "UNAUTHENTICATED_LIMIT",
    "WINDOW_SECONDS",
    "Discogs",
    "credit",
]

AUTHENTICATED_LIMIT = 60
UNAUTHENTICATED_LIMIT = 25
WINDOW_SECONDS = 60.0
NEED_AUTH = "You must authenticate to access this resource."
BAD_TOKEN = "Invalid consumer token. Please register an app before making requests."
TOO_FAST = "You are making requests too quickly."
NOT_FOUND = "The requested resource was not found."
#: Guests credited on a guest track of a release with per-track artists (not catalog artists).
GUEST_ARTISTS = ("Sandbox Guest", "DJ Reprise", "The Other Side")
_IMAGE = "https://i.discogs.com/sandbox/rs:fit/g:sm/q:{q}/h:{h}/w:{w}/{name}.jpeg"


def _various(track: TrackRecord) -> bool:
    """True for a compilation by "Various" (its tracks credit their own artists)."""
    return track.discogs is not None and bool(track.discogs.track_artists)


def credit(track: TrackRecord) -> str:
    """The release's credit: ``"Various"`` for a compilation, else the track's artists."""
    return DISCOGS_VARIOUS if _various(track) else track.credit


def slug(text: str) -> str:
    """Discogs URL slug: words joined by hyphens (``"A - B (C)"`` -> ``A-B-C``)."""
    return "-".join(re.findall(r"[^\W_]+", text)) or "Unknown"


class Discogs(Provider):
    """The Discogs database API over a :class:`Catalog`."""

    name = "discogs"

    def __init__(self, catalog: Catalog, config: SandboxConfig) -> None:
        self.catalog = catalog
        self.config = config
        self.window = SlidingWindow(WINDOW_SECONDS / config.speed)

    # -- plumbing -----------------------------------------------------------------------------

    def reset(self) -> None:
        """Empty the moving window."""
        self.window.reset()

    def _auth(self, req: SandboxRequest) -> str:
        """``"ok"``, ``"none"`` (no credentials) or ``"bad"`` (wrong credentials)."""
        token, key, secret = req.arg("token"), req.arg("key"), req.arg("secret")
        authorization = (req.header("authorization") or "").strip()
        by_token = re.match(r"(?i)discogs\s+token=(\S+)$", authorization)
        by_key = re.match(r"(?i)discogs\s+key=([^,\s]+)\s*,\s*secret=(\S+)$", authorization)
        if by_token:
            token = by_token.group(1)
        elif by_key:
            key, secret = by_key.groups()
        elif authorization:
            return "bad"
        if token is not None:
            return "ok" if token == self.config.discogs_token else "bad"
        if key is not None or secret is not None:
            pair = (key, secret) == (
                self.config.discogs_consumer_key,
                self.config.discogs_consumer_secret,
            )
            return "ok" if pair else "bad"
        return "none"

    @staticmethod
    def _limit_headers(decision: Decision) -> tuple[tuple[str, str], ...]:
        return (
            ("X-Discogs-Ratelimit", str(decision.limit)),
            ("X-Discogs-Ratelimit-Used", str(min(decision.used, decision.limit))),
            ("X-Discogs-Ratelimit-Remaining", str(decision.remaining)),
        )

    def _quota(self, req: SandboxRequest) -> int:
        return AUTHENTICATED_LIMIT if self._auth(req) == "ok" else UNAUTHENTICATED_LIMIT

    def rate_limit_reply(self, req: SandboxRequest, retry_after: str | None) -> Reply:
        """429 with the real body and the window headers (``Retry-After`` only if forced)."""
        decision = self.window.peek(req.now, self._quota(req))
        headers = self._limit_headers(Decision(False, limit=decision.limit, used=decision.limit))
        if retry_after is not None:
            headers += (("Retry-After", retry_after),)
        return json_reply(429, {"message": TOO_FAST}, headers)

    def error_reply(self, req: SandboxRequest, status: int, fault: str) -> Reply:
        """A 5xx ``{"message": ...}`` with the window headers."""
        headers = self._limit_headers(self.window.peek(req.now, self._quota(req)))
        messages = {500: "Internal Server Error", 502: "Bad Gateway", 504: "Gateway Timeout"}
        return json_reply(status, {"message": messages.get(status, "Service Unavailable")}, headers)

    def serve(self, req: SandboxRequest) -> Reply:
        """User-Agent, rate limit (per request quota), auth, routing; window headers on every
        answer but the User-Agent block."""
        if not (req.header("user-agent") or "").strip():
            return json_reply(403, {"message": "Forbidden"})
        auth = self._auth(req)
        limit = AUTHENTICATED_LIMIT if auth == "ok" else UNAUTHENTICATED_LIMIT
        decision = self.window.acquire(req.now, limit)
        headers = self._limit_headers(decision)
        if not decision.allowed:
            return json_reply(429, {"message": TOO_FAST}, headers, rate_limited=True)
        reply = self._route(req, auth)
        return reply.with_headers(*headers)

    def _route(self, req: SandboxRequest, auth: str) -> Reply:
        if auth == "bad":
            return json_reply(401, {"message": BAD_TOKEN})
        segs = req.segments()
        if segs == ["database", "search"]:
            if auth != "ok":
                return json_reply(401, {"message": NEED_AUTH})
            return self._search(req)
        if len(segs) == 2 and segs[0] in ("releases", "masters"):
            found = self._find(segs[0], segs[1])
            if found is None:
                what = "Release" if segs[0] == "releases" else "Master Release"
                return json_reply(404, {"message": f"{what} not found."})
            if segs[0] == "releases":
                return json_reply(200, self.release_object(found, req.base_url))
            return json_reply(200, self.master_object(found, req.base_url))
        return json_reply(404, {"message": NOT_FOUND})

    def _find(self, kind: str, raw_id: str) -> TrackRecord | None:
        if not raw_id.isdigit():
            return None
        index = (
            self.catalog.by_discogs_release
            if kind == "releases"
            else self.catalog.by_discogs_master
        )
        return index.get(int(raw_id))

    # -- search -------------------------------------------------------------------------------

    def _search(self, req: SandboxRequest) -> Reply:
        kind = (req.arg("type") or "").lower()
        per_page = min(100, max(1, _int(req.arg("per_page"), 50)))
        page = max(1, _int(req.arg("page"), 1))
        results: list[dict[str, Any]] = []
        if kind in ("", "release", "master"):
            found = [
                t for t in self.catalog.tracks if t.discogs and self._matches(t, t.discogs, req)
            ]
            found.sort(key=lambda t: self._rank(t, req))
            for track in found:
                assert track.discogs is not None
                if kind in ("", "master"):
                    results.append(self._result(track, track.discogs, "master", req.base_url))
                if kind in ("", "release"):
                    results.append(self._result(track, track.discogs, "release", req.base_url))
        pages = max(1, math.ceil(len(results) / per_page))
        urls: dict[str, str] = {}
        hidden = ("page", "token", "key", "secret")  # credentials never go into the links
        params = {k: v[0] for k, v in req.query.items() if k not in hidden}

        def link(n: int) -> str:
            return f"{req.base_url}/discogs/database/search?{urlencode({**params, 'page': n})}"

        if page > 1:
            urls.update(first=link(1), prev=link(page - 1))
        if page < pages:
            urls.update(next=link(page + 1), last=link(pages))
        return json_reply(
            200,
            {
                "pagination": {
                    "page": page,
                    "pages": pages,
                    "per_page": per_page,
                    "items": len(results),
                    "urls": urls,
                },
                "results": results[(page - 1) * per_page : page * per_page],
            },
        )

    @staticmethod
    def _rank(track: TrackRecord, req: SandboxRequest) -> tuple[int, int, int]:
        """Relevance order: a release listing the asked ``track`` under exactly that title (or
        titled exactly ``q``/``release_title``) first, then the most owned ("have"), then
        catalog order. Truth plays no part: a decoy can rank first."""
        d = track.discogs
        assert d is not None
        exact = 1
        wanted = req.arg("track")
        if wanted and any(tokens(t) == tokens(wanted) for _, t, _ in d.tracklist):
            exact = 0
        title = req.arg("release_title") or req.arg("title")
        if not wanted and title and tokens(title) == tokens(d.title):
            exact = 0
        return (exact, -d.have, track.index)

    @staticmethod
    def _matches(track: TrackRecord, d: DiscogsRecord, req: SandboxRequest) -> bool:
        text_pool = set(tokens(track.credit)) | set(tokens(d.title)) | set(tokens(d.label))
        text_pool |= set(tokens(credit(track)))
        for _, title, _ in d.tracklist:
            text_pool |= set(tokens(title))
        checks: dict[str, Any] = {
            "q": lambda w: set(tokens(w)) <= text_pool,
            "artist": lambda w: _artist_matches(w, track),
            "track": lambda w: any(set(tokens(w)) <= set(tokens(t)) for _, t, _ in d.tracklist),
            "title": lambda w: set(tokens(w)) <= set(tokens(f"{credit(track)} {d.title}")),
            "release_title": lambda w: set(tokens(w)) <= set(tokens(d.title)),
            "label": lambda w: set(tokens(w)) <= set(tokens(d.label)),
            "catno": lambda w: re.sub(r"[\s-]", "", fold(w)) == re.sub(r"[\s-]", "", fold(d.catno)),
            "year": lambda w: w.strip() == str(d.year),
            "country": lambda w: fold(w) == fold(d.country),
            "genre": lambda w: fold(w) in {fold(g) for g in d.genres},
            "style": lambda w: fold(w) in {fold(s) for s in d.styles},
            "format": lambda w: (
                fold(w) in {fold(f) for f in (d.format_name, *d.format_descriptions)}
            ),
        }
        for name, check in checks.items():
            value = req.arg(name)
            if value is not None and value.strip() and not check(value):
                return False
        return True

    def _result(self, track: TrackRecord, d: DiscogsRecord, kind: str, base: str) -> dict[str, Any]:
        entity_id = d.master_id if kind == "master" else d.release_id
        title = f"{credit(track)} - {d.title}"
        result: dict[str, Any] = {"country": d.country}
        if d.year:
            result["year"] = str(d.year)
        result.update(
            {
                "format": [d.format_name, *d.format_descriptions],
                "label": [d.label],
                "type": kind,
                "genre": list(d.genres),
                "style": list(d.styles),
                "id": entity_id,
                "barcode": [],
                "user_data": {"in_wantlist": False, "in_collection": False},
                "master_id": d.master_id,
                "master_url": f"{base}/discogs/masters/{d.master_id}",
                "uri": f"/{slug(title)}/{kind}/{entity_id}",
                "catno": d.catno,
                "title": title,
                "thumb": _IMAGE.format(q=40, h=150, w=150, name=f"R-{entity_id}-{d.image_hash}"),
                "cover_image": _IMAGE.format(
                    q=90, h=600, w=600, name=f"R-{entity_id}-{d.image_hash}"
                ),
                "resource_url": f"{base}/discogs/{kind}s/{entity_id}",
                "community": {"want": d.want, "have": d.have},
            }
        )
        if kind == "release":
            result["format_quantity"] = 1
            result["formats"] = [
                {"name": d.format_name, "qty": "1", "descriptions": list(d.format_descriptions)}
            ]
        return result

    # -- objects ------------------------------------------------------------------------------

    @staticmethod
    def _artists(track: TrackRecord, base: str) -> list[dict[str, Any]]:
        """The release's ``artists``: ``Various`` (194) for a compilation."""
        if _various(track):
            return [_artist_entry(DISCOGS_VARIOUS, DISCOGS_VARIOUS_ID, "", base)]
        return _credit_entries(track.artists, base)

    @staticmethod
    def _tracklist(d: DiscogsRecord, track: TrackRecord, base: str) -> list[dict[str, Any]]:
        """The release's tracklist in one of the real layouts (see the module docstring)."""
        layout = Digest(f"discogs-layout/{d.release_id}")
        entries: list[dict[str, Any]] = [
            {"position": pos, "type_": "track", "title": title, "duration": duration}
            for pos, title, duration in d.tracklist
        ]
        if d.track_artists:  # a compilation: every track credits its own artists
            for entry, names in zip(entries, d.track_artists, strict=True):
                entry["artists"] = _credit_entries(names, base)
            return entries
        if layout.per_mille("per-track-artists") < 300:
            credit = Discogs._artists(track, base)
            for entry in entries:
                entry["artists"] = credit
            if layout.per_mille("guest-track") < 500:
                guest = GUEST_ARTISTS[layout.between("guest", 0, len(GUEST_ARTISTS) - 1)]
                guest_id = discogs_artist_id(guest)
                entries.append(
                    {
                        "position": f"{entries[-1]['position'][:1]}{len(entries) + 1}",
                        "type_": "track",
                        "artists": [_artist_entry(guest, guest_id, "", base)],
                        "title": f"{d.title} (Reprise)",
                        "duration": "",
                    }
                )
        if len(entries) > 1 and layout.per_mille("index") < 200:
            versions = entries[1:]
            entries = [
                entries[0],
                {
                    "position": "",
                    "type_": "index",
                    "title": "Versions",
                    "duration": "",
                    "sub_tracks": versions,
                },
            ]
        if layout.per_mille("heading") < 300:
            entries.insert(
                0, {"position": "", "type_": "heading", "title": d.title, "duration": ""}
            )
        return entries

    def release_object(self, track: TrackRecord, base: str) -> dict[str, Any]:
        """The ``GET /releases/{id}`` document of *track*'s release."""
        d = track.discogs
        assert d is not None
        uri_slug = slug(f"{credit(track)} {d.title}")
        image = _IMAGE.format(q=90, h=600, w=600, name=f"R-{d.release_id}-{d.image_hash}")
        thumb = _IMAGE.format(q=40, h=150, w=150, name=f"R-{d.release_id}-{d.image_hash}")
        obj: dict[str, Any] = {
            "id": d.release_id,
            "status": "Accepted",
            "year": d.year,
            "resource_url": f"{base}/discogs/releases/{d.release_id}",
            "uri": f"https://www.discogs.com/release/{d.release_id}-{uri_slug}",
            "artists": self._artists(track, base),
            "artists_sort": credit(track),
            "labels": [
                {
                    "name": d.label,
                    "catno": d.catno,
                    "entity_type": "1",
                    "entity_type_name": "Label",
                    "id": d.label_id,
                    "resource_url": f"{base}/discogs/labels/{d.label_id}",
                    "thumbnail_url": _IMAGE.format(q=40, h=198, w=600, name=f"L-{d.label_id}"),
                }
            ],
            "series": [],
            "companies": [],
            "formats": [
                {"name": d.format_name, "qty": "1", "descriptions": list(d.format_descriptions)}
            ],
            "data_quality": "Correct" if d.rating_count > 200 else "Needs Vote",
            "community": {
                "have": d.have,
                "want": d.want,
                "rating": {"count": d.rating_count, "average": d.rating_average},
                "submitter": {
                    "username": "sandbox-submitter",
                    "resource_url": f"{base}/discogs/users/sandbox-submitter",
                },
                "contributors": [
                    {
                        "username": "sandbox-submitter",
                        "resource_url": f"{base}/discogs/users/sandbox-submitter",
                    }
                ],
                "data_quality": "Correct" if d.rating_count > 200 else "Needs Vote",
                "status": "Accepted",
            },
            "format_quantity": 1,
            "date_added": d.date_added,
            "date_changed": d.date_added,
            "num_for_sale": d.num_for_sale,
            "lowest_price": d.lowest_price,
            "master_id": d.master_id,
            "master_url": f"{base}/discogs/masters/{d.master_id}",
            "title": d.title,
            "country": d.country,
        }
        if d.released is not None:
            obj["released"] = d.released
            obj["released_formatted"] = d.released_formatted
        obj.update(
            {
                "notes": f"{d.format_name} release on {d.label}.\r\nGenerated by the sandbox.",
                "identifiers": self._identifiers(d),
                "videos": [],
                "genres": list(d.genres),
                "styles": list(d.styles),
                "tracklist": self._tracklist(d, track, base),
                "extraartists": [],
                "images": [
                    {
                        "type": "primary",
                        "uri": image,
                        "resource_url": image,
                        "uri150": thumb,
                        "width": 600,
                        "height": 600,
                    }
                ],
                "thumb": thumb,
            }
        )
        if d.format_name != "File":
            obj["estimated_weight"] = 230 if d.format_name == "Vinyl" else 85
        obj["blocked_from_sale"] = False
        return obj

    @staticmethod
    def _identifiers(d: DiscogsRecord) -> list[dict[str, str]]:
        if d.format_name == "CD":
            barcode = f"{(d.release_id * 7919) % 10**12:012d}"
            return [{"type": "Barcode", "value": barcode}]
        if d.format_name == "Vinyl" and d.catno != "none":
            return [
                {"type": "Matrix / Runout", "value": f"{d.catno} A", "description": "Side A"},
                {"type": "Matrix / Runout", "value": f"{d.catno} B", "description": "Side B"},
            ]
        return []

    def master_object(self, track: TrackRecord, base: str) -> dict[str, Any]:
        """The ``GET /masters/{id}`` document of *track*'s master release."""
        d = track.discogs
        assert d is not None
        uri_slug = slug(f"{credit(track)} {d.title}")
        return {
            "id": d.master_id,
            "main_release": d.release_id,
            "most_recent_release": d.release_id,
            "resource_url": f"{base}/discogs/masters/{d.master_id}",
            "uri": f"https://www.discogs.com/master/{d.master_id}-{uri_slug}",
            "versions_url": f"{base}/discogs/masters/{d.master_id}/versions",
            "main_release_url": f"{base}/discogs/releases/{d.release_id}",
            "most_recent_release_url": f"{base}/discogs/releases/{d.release_id}",
            "num_for_sale": d.num_for_sale,
            "lowest_price": d.lowest_price,
            "images": [],
            "genres": list(d.genres),
            "styles": list(d.styles),
            "year": d.year,
            "tracklist": self._tracklist(d, track, base),
            "artists": self._artists(track, base),
            "title": d.title,
            "data_quality": "Correct",
            "videos": [],
        }


def _credit_entries(names: tuple[str, ...] | list[str], base: str) -> list[dict[str, Any]]:
    """``artists[]`` entries of a credit ("A, B & C": joins ``","``, ``"&"``, ``""``)."""
    n = len(names)
    return [
        _artist_entry(
            name,
            discogs_artist_id(name),
            "" if i == n - 1 else ("&" if i == n - 2 else ","),
            base,
        )
        for i, name in enumerate(names)
    ]


def _artist_entry(name: str, artist_id: int, join: str, base: str) -> dict[str, Any]:
    """One ``artists[]`` entry of a release or of a tracklist entry."""
    return {
        "name": name,
        "anv": "",
        "join": join,
        "role": "",
        "tracks": "",
        "id": artist_id,
        "resource_url": f"{base}/discogs/artists/{artist_id}",
        "thumbnail_url": _IMAGE.format(q=40, h=196, w=196, name=f"A-{artist_id}"),
    }


def _artist_matches(value: str, track: TrackRecord) -> bool:
    wanted = artist_tokens(value)
    if not wanted:
        return any(fold(value) == fold(a) for a in track.artists)
    names = [artist_tokens(a) for a in track.artists]
    return any(wanted <= a for a in names) or wanted <= frozenset().union(*names)


def _int(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default
