"""Last.fm API 2.0 (PROVIDERS.md section 4), mounted at ``/lastfm``.

``GET {url}/lastfm/2.0/?method=...&api_key=...&format=json``; without ``format=json`` the
answer is XML (``<lfm status="ok">``), as on the real service. Method names are
case-insensitive.

- ``track.getInfo`` (``artist`` + ``track``, or ``mbid``): ``{"track":{name, mbid?, url,
  duration:"<ms>", streamable:{"#text":"0","fulltrack":"0"}, listeners:"<n>", playcount:"<n>",
  artist:{name, mbid?, url}, album?:{artist,title,mbid?,url,image[],@attr?}, toptags:{tag:[{name,
  url}]}, wiki?}}``. **Numbers are strings**; ``mbid``, ``album`` and ``wiki`` are missing for
  some tracks and ``duration`` is ``"0"`` for some, as on Last.fm. Unknown artist/track pair
  (``lastfm_unknown_track="stub"``, the default): HTTP 200 with a *stub track*, as Last.fm
  answers today (PROVIDERS.md section 4): the names as asked, ``duration`` "0", ``listeners``
  "2", ``playcount`` "2" (unverified), no ``mbid``, no ``album``, no ``wiki``, an empty
  ``toptags.tag``. ``lastfm_unknown_track="error6"``: the older HTTP 200
  ``{"error":6,"message":"Track not found","links":[]}``. An unknown ``mbid`` is error 6 in both.
- ``track.getTopTags``: ``{"toptags":{"tag":[{"count":100,"name","url"}],"@attr":{"artist",
  "track"}}}``, ``count`` an int, the top tag 100; unknown pair: empty ``tag`` list, HTTP 200.
- Any other method: error 3 "Invalid Method - No method with that name in this package", 400.

The artist may be one of the credited artists or the whole credit ("A & B", "A feat. B",
"A x B"...). The answer names the main (first) artist, as Last.fm does for features.
``autocorrect=1`` (both methods) maps near-misses to the canonical names: matching is then
accent-, punctuation- and join-word-insensitive ("Royksopp", "A and B" for "A & B"), and the
answer carries Last.fm's spelling, not the one asked. Without it (``autocorrect=0``, Last.fm's
default) only the exact names match, ignoring case and repeated spaces; a near-miss is unknown.

Auth: a missing or wrong ``api_key`` gets HTTP 403 with error 10 (the status Last.fm uses for
authentication errors; the community docs call HTTP codes unreliable).

Rate limit: GCRA at 5 requests/s with a burst tolerance of 25 (an assumption: the old terms
said "5 requests per second per IP averaged over 5 minutes"), checked before the key as it is
per IP; over it HTTP 429 ``{"error":29,"message":"Rate Limit Exceeded - Your IP has made too
many requests in a short period","links":[]}``, or the same body with HTTP 200 when
``lastfm_rate_limit_status=200`` (PROVIDERS.md section 0: "error 29 in a JSON body (HTTP 429 or
200)"); the ``rate_limit_next`` fault sends the same. No rate-limit headers. Outages answer error 11
(503), random errors error 8 (500) or 16.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote_plus

from scrapy_apigw.sandbox.catalog import Catalog
from scrapy_apigw.sandbox.config import SandboxConfig
from scrapy_apigw.sandbox.http import Reply, SandboxRequest, json_reply, text_reply
from scrapy_apigw.sandbox.limits import Gcra
from scrapy_apigw.sandbox.provider import Provider
from scrapy_apigw.sandbox.records import TrackRecord
from scrapy_apigw.sandbox.text import artist_tokens, fold, tokens
from scrapy_apigw.sandbox.xmlbody import ET, from_json, serialize

__all__ = ["BURST", "RATE", "Lastfm", "stub_track"]

RATE = 5.0
BURST = 25
MESSAGES = {
    3: "Invalid Method - No method with that name in this package",
    6: "Track not found",
    8: "Operation failed - Most likely the backend service failed. Please try again.",
    10: "Invalid API key - You must be granted a valid key by last.fm",
    11: "Service Offline - This service is temporarily offline. Try again later.",
    16: "There was a temporary error processing your request. Please try again",
    29: "Rate Limit Exceeded - Your IP has made too many requests in a short period",
}
MISSING_PARAMS = "You must supply either a track & artist name or a track mbid."


class Lastfm(Provider):
    """The Last.fm track methods over a :class:`Catalog`."""

    name = "lastfm"

    def __init__(self, catalog: Catalog, config: SandboxConfig) -> None:
        self.catalog = catalog
        self.config = config
        self.limiter = Gcra(RATE * config.speed, BURST)
        self._by_title: dict[tuple[str, ...], list[TrackRecord]] = {}
        for track, text in catalog.at("lastfm"):
            self._by_title.setdefault(text.title or (fold(track.title),), []).append(track)
        self._by_mbid = {t.lastfm.mbid: t for t, _ in catalog.at("lastfm") if t.lastfm.mbid}

    # -- plumbing -----------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the rate state."""
        self.limiter.reset()

    @staticmethod
    def _json(req: SandboxRequest) -> bool:
        return (req.arg("format") or "").lower() == "json"

    def _error(
        self, req: SandboxRequest, code: int, status: int, message: str | None = None,
        *, rate_limited: bool = False, headers: tuple[tuple[str, str], ...] = (),
    ) -> Reply:  # fmt: skip
        text = message or MESSAGES[code]
        if self._json(req):
            body = {"error": code, "message": text, "links": []}
            return json_reply(status, body, headers, rate_limited=rate_limited)
        root = ET.Element("lfm", status="failed")
        error = ET.SubElement(root, "error", code=str(code))
        error.text = text
        return Reply(
            status, serialize(root), "text/xml; charset=utf-8", headers, None, rate_limited
        )

    def _ok(self, req: SandboxRequest, data: dict[str, Any]) -> Reply:
        if self._json(req):
            return json_reply(200, data)
        root = ET.Element("lfm", status="ok")
        for key, value in data.items():
            root.append(from_json(key, value))
        return Reply(200, serialize(root), "text/xml; charset=utf-8")

    def rate_limit_reply(self, req: SandboxRequest, retry_after: str | None) -> Reply:
        """Error 29 with HTTP 429 (or 200, see the module docstring); ``Retry-After`` only when
        forced with one."""
        headers = (("Retry-After", retry_after),) if retry_after is not None else ()
        return self._error(req, 29, self.config.lastfm_rate_limit_status, headers=headers)

    def error_reply(self, req: SandboxRequest, status: int, fault: str) -> Reply:
        """Error 11 for 503, 8 for 500, 16 otherwise."""
        code = {503: 11, 500: 8}.get(status, 16)
        return self._error(req, code, status)

    def serve(self, req: SandboxRequest) -> Reply:
        """Rate limit (per IP), API key, method dispatch."""
        if req.segments() != ["2.0"]:
            return text_reply(404, "Not Found")
        if not self.limiter.acquire(req.now).allowed:
            status = self.config.lastfm_rate_limit_status
            return self._error(req, 29, status, rate_limited=True)
        key = req.arg("api_key") or ""
        if not secrets.compare_digest(key, self.config.lastfm_api_key):
            return self._error(req, 10, 403)
        method = (req.arg("method") or "").lower()
        if method == "track.getinfo":
            return self._get_info(req)
        if method == "track.gettoptags":
            return self._top_tags(req)
        return self._error(req, 3, 400)

    # -- lookup -------------------------------------------------------------------------------

    def find(
        self,
        artist: str | None,
        title: str | None,
        mbid: str | None,
        *,
        autocorrect: bool = True,
    ) -> TrackRecord | None:
        """The track named by *mbid*, or by *artist* and *title* (see the module docstring):
        near-misses only with *autocorrect*, else the exact names (case-insensitive)."""
        if mbid:
            return self._by_mbid.get(mbid.strip().lower())
        if not artist or not title:
            return None
        if not autocorrect:
            return self._find_exact(artist, title)
        title_words = tokens(title) or (fold(title),)
        wanted = artist_tokens(artist)
        for track in self._by_title.get(title_words, []):
            names = [artist_tokens(a) for a in track.artists]
            if wanted:
                if wanted in names or wanted == frozenset().union(*names):
                    return track
            elif any(fold(artist) == fold(a) for a in track.artists):
                return track
        return None

    def _find_exact(self, artist: str, title: str) -> TrackRecord | None:
        wanted_title, wanted_artist = _exact(title), _exact(artist)
        for track in self._by_title.get(tokens(title) or (fold(title),), []):
            if _exact(track.title) == wanted_title and wanted_artist in {
                _exact(a) for a in (*track.artists, track.credit)
            }:
                return track
        return None

    def _params(self, req: SandboxRequest) -> tuple[str | None, str | None, str | None]:
        return req.arg("artist"), req.arg("track"), req.arg("mbid")

    def _lookup(self, req: SandboxRequest) -> TrackRecord | None:
        artist, title, mbid = self._params(req)
        autocorrect = (req.arg("autocorrect") or "0").strip() == "1"
        return self.find(artist, title, mbid, autocorrect=autocorrect)

    def _get_info(self, req: SandboxRequest) -> Reply:
        artist, title, mbid = self._params(req)
        if not mbid and not (artist and title):
            return self._error(req, 6, 200, MISSING_PARAMS)
        track = self._lookup(req)
        if track is None:
            if mbid or self.config.lastfm_unknown_track == "error6":
                return self._error(req, 6, 200)
            return self._ok(req, {"track": stub_track(artist or "", title or "")})
        return self._ok(req, {"track": self.track_object(track)})

    def _top_tags(self, req: SandboxRequest) -> Reply:
        artist, title, mbid = self._params(req)
        if not mbid and not (artist and title):
            return self._error(req, 6, 400, MISSING_PARAMS)
        track = self._lookup(req)
        if track is None:
            attr = {"artist": artist or "", "track": title or ""}
            return self._ok(req, {"toptags": {"tag": [], "@attr": attr}})
        tags = [{"count": c, "name": n, "url": _tag_url(n)} for n, c in track.lastfm.tags]
        attr = {"artist": track.artists[0], "track": track.title}
        return self._ok(req, {"toptags": {"tag": tags, "@attr": attr}})

    # -- objects ------------------------------------------------------------------------------

    def track_object(self, track: TrackRecord) -> dict[str, Any]:
        """The ``track`` object of ``track.getInfo``."""
        lf = track.lastfm
        artist = track.artists[0]
        artist_url = f"https://www.last.fm/music/{quote_plus(artist)}"
        obj: dict[str, Any] = {"name": track.title}
        if lf.mbid:
            obj["mbid"] = lf.mbid
        obj.update(
            {
                "url": f"{artist_url}/_/{quote_plus(track.title)}",
                "duration": str(lf.duration_ms),
                "streamable": {"#text": "0", "fulltrack": "0"},
                "listeners": str(lf.listeners),
                "playcount": str(lf.playcount),
            }
        )
        artist_obj: dict[str, Any] = {"name": artist}
        if lf.mbid:
            artist_obj["mbid"] = track.musicbrainz.artist_ids[0]
        artist_obj["url"] = artist_url
        obj["artist"] = artist_obj
        if lf.album_position is not None:
            album_name = track.spotify.album_name
            image = track.spotify.image_hash
            album: dict[str, Any] = {"artist": artist, "title": album_name}
            if lf.mbid:
                album["mbid"] = track.musicbrainz.release_id
            album["url"] = f"{artist_url}/{quote_plus(album_name)}"
            album["image"] = [
                {"#text": f"https://lastfm.freetls.fastly.net/i/u/{px}/{image}.png", "size": size}
                for size, px in (("small", "34s"), ("medium", "64s"), ("large", "174s"),
                                 ("extralarge", "300x300"))
            ]  # fmt: skip
            album["@attr"] = {"position": str(lf.album_position)}
            obj["album"] = album
        obj["toptags"] = {"tag": [{"name": n, "url": _tag_url(n)} for n, _ in lf.tags[:5]]}
        if lf.wiki:
            obj["wiki"] = {
                "published": f"01 Jan {max(track.year, 2006)}, 12:00",
                "summary": f"{track.title} is a {track.genre or 'electronic'} track by {artist}.",
                "content": f"{track.title} is a {track.genre or 'electronic'} track by {artist}, "
                f"released in {track.year}.",
            }
        return obj


def stub_track(artist: str, title: str) -> dict[str, Any]:
    """The ``track`` Last.fm answers for an unknown artist/track pair (PROVIDERS.md section 4).

    The names as asked, ``duration`` "0", ``listeners`` "2" (observed), ``playcount`` "2"
    (unverified), an empty tag list, and no ``mbid``, ``album`` or ``wiki``.
    """
    artist_url = f"https://www.last.fm/music/{quote_plus(artist)}"
    return {
        "name": title,
        "url": f"{artist_url}/_/{quote_plus(title)}",
        "duration": "0",
        "streamable": {"#text": "0", "fulltrack": "0"},
        "listeners": "2",
        "playcount": "2",
        "artist": {"name": artist, "url": artist_url},
        "toptags": {"tag": []},
    }


def _exact(name: str) -> str:
    """*name* as Last.fm compares it without autocorrect: case-folded, spaces collapsed."""
    return " ".join(name.casefold().split())


def _tag_url(name: str) -> str:
    return f"https://www.last.fm/tag/{quote_plus(name)}"
