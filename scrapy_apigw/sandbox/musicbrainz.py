"""MusicBrainz WS/2 (PROVIDERS.md section 2), mounted at ``/musicbrainz``.

Routes (below ``{url}/musicbrainz``):

- ``GET /ws/2/isrc/{isrc}[?inc=artists|artist-credits|releases|isrcs|tags...]``:
  ``{"isrc","recordings":[{id,title,length,disambiguation,video,first-release-date}]}`` (the
  shape of musicbrainz-server's own ``LookupISRC`` test). Unknown ISRC 404, malformed 400
  ``"Invalid isrc."`` (text unverified). About 3 % of catalog tracks are not listed under their
  ISRC; about 4 % have a second recording (a Dolby Atmos mix) under the same ISRC.
- ``GET /ws/2/recording?query=<lucene>&limit=&offset=``: Lucene parsed by
  :mod:`scrapy_apigw.sandbox.lucene` (fields ``recording``, ``artist``/``artistname``,
  ``release``, ``isrc``, ``rid``, ``arid``, ``reid``, ``rgid``, ``tag``; a term without a field
  searches the title and the artists). Invalid syntax 400 ``{"error": "Search server could not
  complete query: Bad request", "help": ...}``: the text MusicBrainz sent in 2013 (beets#277,
  XML); today's exact JSON text is unverified. ``score`` is relative: the best hit is 100.
  ``limit`` is clamped to 1..100 (default 25).
- ``GET /ws/2/recording/{mbid}[?inc=isrcs+artist-credits+tags+releases...]``: lookup with
  the keys of Picard's ``recording.json``; bad MBID 400 ``"Invalid mbid."``; an unknown inc 400
  ``"<inc> is not a valid inc parameter for the recording resource."``.

Checks, in the real order (PROVIDERS.md section 2): the User-Agent first. A missing one gets
403 (the 2011 rule); a generic one (:func:`scrapy_apigw.core.useragent.user_agent_problem`: a
library's default such as ``python-requests/2.32``, Scrapy's, or one without an e-mail or URL to
contact, such as ``scrapy-apigw/0.2.0``) is "anonymous": with ``musicbrainz_generic_ua=
"throttled"`` (default) every such request gets the rate-limit 503, as the anonymous pool of
about 50 req/s shared by the world's generic clients is used up; ``"blocked"`` answers 403,
``"allowed"`` lets it through. Then the per-IP rate: GCRA at 1 request/s with a burst tolerance
of 3 (an assumption: MusicBrainz publishes only "1 request/s on average"). Refused requests are
counted like served ones (up to 10 s of backlog), so a client that keeps sending too fast gets
503 ``Service Temporarily Unavailable`` with the real body for everything until its rate falls
below 1/s. A request the User-Agent check refused never reaches the rate check (the
documented order), so it is not counted. Then content negotiation: JSON for
``fmt=json`` or an ``Accept`` naming ``application/json``, XML otherwise, 406 for an ``Accept``
allowing neither. Errors use ``{"error": ..., "help": "For usage, please see: ..."}`` (or
``<error><text>`` in XML). Outages default to 502 (503 is the rate-limit signal), with the HTML
page of the nginx front end.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from scrapy_apigw.core.useragent import user_agent_problem
from scrapy_apigw.sandbox.catalog import Catalog
from scrapy_apigw.sandbox.http import Reply, SandboxRequest, json_reply, text_reply
from scrapy_apigw.sandbox.limits import Gcra
from scrapy_apigw.sandbox.lucene import LuceneSyntaxError, SearchDoc, parse, score
from scrapy_apigw.sandbox.provider import Provider
from scrapy_apigw.sandbox.records import Digest, TrackRecord
from scrapy_apigw.sandbox.text import fold, tokens
from scrapy_apigw.sandbox.xmlbody import ET, serialize

__all__ = ["BACKLOG", "BURST", "RATE", "RATE_LIMIT_MESSAGE", "MusicBrainz"]

RATE = 1.0
BURST = 3
#: Refused requests remembered by the rate limit, in seconds of 1 req/s (an assumption).
BACKLOG = 10
HELP = "For usage, please see: https://musicbrainz.org/development/mmd"
RATE_LIMIT_MESSAGE = (
    "Your requests are exceeding the allowable rate limit. "
    "Please see http://wiki.musicbrainz.org/XMLWebService for more information."
)
SEARCH_ERROR = "Search server could not complete query: Bad request"
MMD_NS = "http://musicbrainz.org/ns/mmd-2.0#"
EXT_NS = "http://musicbrainz.org/ns/ext#-2.0"
OFFICIAL_STATUS_ID = "4e304316-386d-3409-af2e-78857eec5cfe"
RELEASE_GROUP_TYPE_IDS = {
    "Album": "f529b476-6e62-324f-b0aa-1f3e33d313fc",
    "Single": "d6038452-8ee0-3f68-affc-2de9a1ede0b9",
}
AREAS = {
    "GB": "United Kingdom", "US": "United States", "DE": "Germany", "NL": "Netherlands",
    "SE": "Sweden", "FR": "France", "XE": "Europe", "BE": "Belgium", "NO": "Norway",
    "AU": "Australia", "IT": "Italy", "CA": "Canada", "XW": "[Worldwide]",
}  # fmt: skip
_ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$")
_MBID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ISRC_INCS = frozenset(
    {"artists", "artist-credits", "releases", "isrcs", "url-rels", "tags", "genres", "aliases",
     "release-groups", "media", "ratings"}
)  # fmt: skip
RECORDING_INCS = ISRC_INCS | frozenset(
    {"work-rels", "annotation", "artist-rels", "recording-rels", "release-rels", "label-rels",
     "series-rels", "place-rels", "event-rels", "area-rels", "instrument-rels", "discids",
     "user-tags", "user-genres", "user-ratings", "work-level-rels", "recording-level-rels"}
)  # fmt: skip
NGINX_PAGE = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
REASONS = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}


def sort_name(name: str) -> str:
    """MusicBrainz-style sort name: ``"The Knife"`` sorts as ``"Knife, The"``."""
    return f"{name[4:]}, The" if name.startswith("The ") else name


class MusicBrainz(Provider):
    """The MusicBrainz web service over a :class:`Catalog`."""

    name = "musicbrainz"
    default_error_status = 502

    def __init__(self, catalog: Catalog, speed: float = 1.0, generic_ua: str = "throttled") -> None:
        self.catalog = catalog
        self.generic_ua = generic_ua
        self.limiter = Gcra(RATE * speed, BURST, count_refused=True, max_backlog=BACKLOG)
        self._docs = [
            (track, atmos, self._doc(track))
            for track, _ in catalog.at("musicbrainz")
            for atmos in ((False, True) if track.musicbrainz.atmos_recording_id else (False,))
        ]

    @staticmethod
    def _doc(track: TrackRecord) -> SearchDoc:
        mb = track.musicbrainz
        names = [*track.artists, track.credit]
        ids: dict[str, list[str]] = {
            "rid": [mb.recording_id, mb.atmos_recording_id or ""],
            "arid": list(mb.artist_ids),
            "reid": [mb.release_id],
            "rgid": [mb.release_group_id],
            "isrc": [fold(track.isrc)] if mb.isrc_listed else [],
        }
        text = {
            "recording": [tokens(track.mb_title)],
            "artist": [tokens(n) for n in names],
            "artistname": [tokens(n) for n in track.artists],
            "release": [tokens(mb.release_title)],
            "tag": [tokens(t) for t, _ in mb.tags],
        }
        raw = {
            "recording": [fold(track.mb_title)],
            "artist": [fold(n) for n in names],
            "artistname": [fold(n) for n in track.artists],
            "release": [fold(mb.release_title)],
        }
        return SearchDoc(text=text, raw=raw, ids=ids)

    # -- plumbing -----------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the rate state."""
        self.limiter.reset()

    def rate_limit_reply(self, req: SandboxRequest, retry_after: str | None) -> Reply:
        """503 with the real rate-limit body (and ``Retry-After`` when forced with one)."""
        headers = (("Retry-After", retry_after),) if retry_after is not None else ()
        return self._rate_limited(req, headers)

    def error_reply(self, req: SandboxRequest, status: int, fault: str) -> Reply:
        """The nginx HTML page for 502/503/504, the JSON/XML envelope otherwise."""
        if status in REASONS:
            page = NGINX_PAGE.format(status=status, reason=REASONS[status])
            return text_reply(status, page, "text/html", reason=REASONS[status])
        return self._error(req, status, "Internal Server Error", fmt=self._format(req) or "json")

    def _rate_limited(self, req: SandboxRequest, headers: tuple[tuple[str, str], ...]) -> Reply:
        fmt = self._format(req) or "json"
        reason = "Service Temporarily Unavailable"
        if fmt == "json":
            return json_reply(
                503, {"error": RATE_LIMIT_MESSAGE}, headers, reason=reason, rate_limited=True
            )
        root = ET.Element("error")
        ET.SubElement(root, "text").text = RATE_LIMIT_MESSAGE
        body = serialize(root)
        return Reply(503, body, "application/xml; charset=utf-8", headers, reason, True)

    @staticmethod
    def _format(req: SandboxRequest) -> str | None:
        """``"json"``, ``"xml"``, or ``None`` when the ``Accept`` header allows neither."""
        fmt = (req.arg("fmt") or "").lower()
        if fmt in ("json", "xml"):
            return fmt
        accept = (req.header("accept") or "").lower()
        if not accept.strip():
            return "xml"
        ranges = [part.split(";")[0].strip() for part in accept.split(",")]
        if "application/json" in ranges:
            return "json"
        if any(
            r in ("application/xml", "text/xml", "*/*", "application/*", "text/*") for r in ranges
        ):
            return "xml"
        return None

    def _error(self, req: SandboxRequest, status: int, message: str, fmt: str) -> Reply:
        if fmt == "json":
            return json_reply(status, {"error": message, "help": HELP})
        root = ET.Element("error")
        ET.SubElement(root, "text").text = message
        ET.SubElement(root, "text").text = HELP
        return Reply(status, serialize(root), "application/xml; charset=utf-8")

    def serve(self, req: SandboxRequest) -> Reply:
        """User-Agent check, rate limit, content negotiation, routing."""
        problem = user_agent_problem(req.header("user-agent"))
        if problem == "missing":
            return self._error(req, 403, "Forbidden: a User-Agent header is required", "json")
        if problem is not None and self.generic_ua == "blocked":
            return self._error(req, 403, f"Forbidden: {problem} User-Agent", "json")
        if problem is not None and self.generic_ua == "throttled":
            return self._rate_limited(req, ())
        # Past the User-Agent check every request counts, even one the rate refuses.
        if not self.limiter.acquire(req.now).allowed:
            return self._rate_limited(req, ())
        fmt = self._format(req)
        if fmt is None:
            return text_reply(406, "406 Not Acceptable\n")
        segs = req.segments()
        if segs[:2] != ["ws", "2"] or len(segs) < 3:
            return self._error(req, 404, "Not Found", fmt)
        resource, rest = segs[2], segs[3:]
        if resource == "isrc" and len(rest) == 1:
            return self._isrc(req, rest[0], fmt)
        if resource == "recording" and not rest:
            return self._search(req, fmt)
        if resource == "recording" and len(rest) == 1:
            return self._lookup(req, rest[0], fmt)
        return self._error(req, 404, "Not Found", fmt)

    # -- handlers -----------------------------------------------------------------------------

    @staticmethod
    def _incs(req: SandboxRequest) -> list[str]:
        raw = " ".join(req.query.get("inc", []))
        return [i for i in re.split(r"[\s+]+", raw) if i]

    def _isrc(self, req: SandboxRequest, code: str, fmt: str) -> Reply:
        code = code.upper()
        if not _ISRC.match(code):
            return self._error(req, 400, "Invalid isrc.", fmt)
        incs = self._incs(req)
        bad = [i for i in incs if i not in ISRC_INCS]
        if bad:
            return self._error(
                req, 400, f"{bad[0]} is not a valid inc parameter for the isrc resource.", fmt
            )
        found = [t for t in self.catalog.by_isrc.get(code, []) if t.musicbrainz.isrc_listed]
        if not found:
            return self._error(req, 404, "Not Found", fmt)
        recordings = [
            self.recording(track, atmos, incs)
            for track in found
            for atmos in ((False, True) if track.musicbrainz.atmos_recording_id else (False,))
        ]
        if fmt == "json":
            return json_reply(200, {"isrc": code, "recordings": recordings})
        root = _metadata()
        isrc = ET.SubElement(root, "isrc", id=code)
        listing = ET.SubElement(isrc, "recording-list", count=str(len(recordings)))
        for rec in recordings:
            listing.append(_recording_xml(rec))
        return _xml_reply(root)

    def _lookup(self, req: SandboxRequest, mbid: str, fmt: str) -> Reply:
        if not _MBID.match(mbid.lower()):
            return self._error(req, 400, "Invalid mbid.", fmt)
        incs = self._incs(req)
        bad = [i for i in incs if i not in RECORDING_INCS]
        if bad:
            return self._error(
                req, 400, f"{bad[0]} is not a valid inc parameter for the recording resource.", fmt
            )
        found = self.catalog.by_recording_id.get(mbid.lower())
        if found is None:
            return self._error(req, 404, "Not Found", fmt)
        rec = self.recording(found[0], found[1], incs)
        if fmt == "json":
            return json_reply(200, rec)
        root = _metadata()
        root.append(_recording_xml(rec))
        return _xml_reply(root)

    def _search(self, req: SandboxRequest, fmt: str) -> Reply:
        query = req.arg("query")
        if query is None:
            return self._error(req, 400, SEARCH_ERROR, fmt)
        try:
            tree = parse(query)
        except LuceneSyntaxError:
            return self._error(req, 400, SEARCH_ERROR, fmt)
        limit = min(100, max(1, _int(req.arg("limit"), 25)))
        offset = max(0, _int(req.arg("offset"), 0))
        scored = [(score(tree, doc), track, atmos) for track, atmos, doc in self._docs]
        hits = [h for h in scored if h[0] > 0]
        hits.sort(key=lambda h: (-h[0], h[2], -h[1].spotify.popularity, h[1].index))
        best = hits[0][0] if hits else 1.0
        recordings = []
        for value, track, atmos in hits[offset : offset + limit]:
            incs = ["artist-credits", "releases", "isrcs", "tags"]
            rec = self.recording(track, atmos, incs, search=True)
            rec = {"id": rec["id"], "score": round(100 * value / best), **rec}
            recordings.append(rec)
        created = (
            datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        )
        if fmt == "json":
            return json_reply(
                200,
                {
                    "created": created,
                    "count": len(hits),
                    "offset": offset,
                    "recordings": recordings,
                },
            )
        root = _metadata(created=created)
        listing = ET.SubElement(root, "recording-list", count=str(len(hits)), offset=str(offset))
        for rec in recordings:
            listing.append(_recording_xml(rec))
        return _xml_reply(root)

    # -- objects ------------------------------------------------------------------------------

    def recording(
        self, track: TrackRecord, atmos: bool, incs: list[str], *, search: bool = False
    ) -> dict[str, Any]:
        """A recording object with the blocks selected by *incs*.

        Search results (``search=True``) use ``media[].track``, set ``video`` to ``null`` and
        carry ``isrcs``, ``tags`` and ``disambiguation`` only when present; lookups use
        ``media[].tracks`` and ``video: false``, as the real service does.
        """
        mb = track.musicbrainz
        disambiguation = "Dolby Atmos" if atmos else mb.disambiguation
        length = mb.length + (1234 if atmos else 0)
        rec: dict[str, Any] = {
            "id": mb.atmos_recording_id if atmos and mb.atmos_recording_id else mb.recording_id,
            "title": track.mb_title,
            "length": length,
        }
        if not search or disambiguation:
            rec["disambiguation"] = disambiguation
        rec["video"] = None if search else False
        if "artists" in incs or "artist-credits" in incs:
            rec["artist-credit"] = self.artist_credit(track)
        rec["first-release-date"] = mb.first_release_date
        if "releases" in incs:
            rec["releases"] = [self._release(track, length, search)]
        if "isrcs" in incs and (mb.isrc_listed or not search):
            rec["isrcs"] = [track.isrc] if mb.isrc_listed else []
        if "aliases" in incs:
            rec["aliases"] = []
        if "tags" in incs:
            rec["tags"] = [{"count": max(1, c // 20), "name": n} for n, c in mb.tags]
        if "genres" in incs:
            rec["genres"] = [
                {"id": Digest(n).mbid("genre"), "name": n, "count": max(1, c // 20),
                 "disambiguation": ""}
                for n, c in mb.tags[:1]
            ]  # fmt: skip
        if any(i.endswith("-rels") for i in incs):
            rec["relations"] = []
        return rec

    @staticmethod
    def artist_credit(track: TrackRecord) -> list[dict[str, Any]]:
        """``artist-credit`` list: names joined by ``", "`` and a final ``" & "``."""
        credit = []
        n = len(track.artists)
        for i, (name, artist_id) in enumerate(
            zip(track.artists, track.musicbrainz.artist_ids, strict=True)
        ):
            join = "" if i == n - 1 else (" & " if i == n - 2 else ", ")
            credit.append(
                {
                    "name": name,
                    "joinphrase": join,
                    "artist": {
                        "id": artist_id,
                        "name": name,
                        "sort-name": sort_name(name),
                        "disambiguation": "",
                    },
                }
            )
        return credit

    @staticmethod
    def _release(track: TrackRecord, length: int, search: bool) -> dict[str, Any]:
        mb = track.musicbrainz
        area = {
            "id": Digest(mb.release_country).mbid("area"),
            "name": AREAS.get(mb.release_country, "[Worldwide]"),
            "sort-name": AREAS.get(mb.release_country, "[Worldwide]"),
            "iso-3166-1-codes": [mb.release_country],
        }
        track_entry = {"id": mb.track_id, "number": "1", "title": track.mb_title, "length": length}
        if not search:
            track_entry["position"] = 1
        medium: dict[str, Any] = {
            "position": 1,
            "format": mb.media_format,
            ("track" if search else "tracks"): [track_entry],
            "track-count": mb.track_count,
            "track-offset": 0,
        }
        group: dict[str, Any] = {
            "id": mb.release_group_id,
            "type-id": RELEASE_GROUP_TYPE_IDS[mb.release_type],
            "primary-type-id": RELEASE_GROUP_TYPE_IDS[mb.release_type],
            "title": mb.release_title,
            "primary-type": mb.release_type,
        }
        if mb.secondary_types:  # only when present, as in real search answers
            group["secondary-types"] = list(mb.secondary_types)
            # invented like every sandbox MBID (the real type ids were not checked here)
            group["secondary-type-ids"] = [
                Digest(t).mbid("secondary-type") for t in mb.secondary_types
            ]
        return {
            "id": mb.release_id,
            "status-id": OFFICIAL_STATUS_ID,
            "count": 1,
            "title": mb.release_title,
            "status": "Official",
            "release-group": group,
            "date": mb.first_release_date,
            "country": mb.release_country,
            "release-events": [{"date": mb.first_release_date, "area": area}],
            "track-count": mb.track_count,
            "media": [medium],
        }


def _int(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


def _metadata(created: str | None = None) -> ET.Element:
    root = ET.Element("metadata", {"xmlns": MMD_NS, "xmlns:ns2": EXT_NS})
    if created:
        root.set("created", created)
    return root


def _xml_reply(root: ET.Element) -> Reply:
    return Reply(200, serialize(root), "application/xml; charset=utf-8")


def _recording_xml(rec: dict[str, Any]) -> ET.Element:
    element = ET.Element("recording", id=rec["id"])
    if "score" in rec:
        element.set("ns2:score", str(rec["score"]))
    _sub(element, "title", rec["title"])
    _sub(element, "length", rec["length"])
    if rec.get("disambiguation"):
        _sub(element, "disambiguation", rec["disambiguation"])
    _sub(element, "first-release-date", rec["first-release-date"])
    if "artist-credit" in rec:
        credit = ET.SubElement(element, "artist-credit")
        for entry in rec["artist-credit"]:
            name_credit = ET.SubElement(credit, "name-credit")
            if entry["joinphrase"]:
                name_credit.set("joinphrase", entry["joinphrase"])
            artist = ET.SubElement(name_credit, "artist", id=entry["artist"]["id"])
            _sub(artist, "name", entry["artist"]["name"])
            _sub(artist, "sort-name", entry["artist"]["sort-name"])
    if "releases" in rec:
        listing = ET.SubElement(element, "release-list", count=str(len(rec["releases"])))
        for release in rec["releases"]:
            node = ET.SubElement(listing, "release", id=release["id"])
            _sub(node, "title", release["title"])
            _sub(node, "status", release["status"])
            _sub(node, "date", release["date"])
            _sub(node, "country", release["country"])
    if rec.get("isrcs"):
        isrcs = ET.SubElement(element, "isrc-list", count=str(len(rec["isrcs"])))
        for code in rec["isrcs"]:
            ET.SubElement(isrcs, "isrc", id=code)
    if rec.get("tags"):
        tags = ET.SubElement(element, "tag-list")
        for tag in rec["tags"]:
            _sub(ET.SubElement(tags, "tag", count=str(tag["count"])), "name", tag["name"])
    return element


def _sub(parent: ET.Element, tag: str, value: Any) -> ET.Element:
    node = ET.SubElement(parent, tag)
    node.text = str(value)
    return node
