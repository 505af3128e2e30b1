"""Last.fm client: play counts, listeners and top tags (PROVIDERS.md section 4).

Calls (path ``/`` of ``https://ws.audioscrobbler.com/2.0``; the transport adds ``api_key``):

- ``GET /?method=track.getInfo&artist=<artist>&track=<title>&autocorrect=1&format=json``
  (data_type ``"info"``), and, if Last.fm does not know those names (a stub track or error 6)
  or there are none, ``GET /?method=track.getInfo&mbid=<mbid>&format=json`` when MusicBrainz
  gave a recording MBID. Names first: every track has them and Last.fm keys its tracks by
  them, while many Last.fm tracks carry no MBID (``mbid`` is often missing, PROVIDERS.md
  section 4), so asking by MBID first cost a second getInfo for each of those; last, when the
  track credits several artists, by the second artist's name (a credit written in another
  order). The title is sent without a ``[Label]`` bracket or ``"(Original Mix)"``;
- ``GET /?method=track.getTopTags`` with the same identification (data_type ``"tags"``),
  only when the getInfo track lists no ``toptags`` (it usually does: most tracks cost one call).

Last.fm reports errors in the JSON body, often with HTTP 200 (``{"error": 6, "message": ...}``),
so :meth:`LastFmClient.classify` reads the body first.
"""

from __future__ import annotations

from typing import Any

from scrapy_apigw.core.confidence import Candidate, confidence
from scrapy_apigw.core.matching import primary_artist
from scrapy_apigw.core.outcome import Outcome, classify_status
from scrapy_apigw.core.scraped import search_title
from scrapy_apigw.providers.auth import QueryKeyAuth
from scrapy_apigw.providers.base import (
    ApiAnswer,
    ApiCall,
    Fetch,
    ProviderResult,
    Shape,
    TrackContext,
    check_shape,
    match_of,
    wanted_of,
)
from scrapy_apigw.providers.registry import DAY, ProviderConfig
from scrapy_apigw.providers.spec import Credential, ProviderSpec

__all__ = [
    "ERROR_OUTCOMES",
    "MAX_QUERY_VALUE",
    "PROVIDER",
    "SAVED_TOP_TAGS",
    "SHAPES",
    "STUB_MAX_LISTENERS",
    "LastFmClient",
    "count",
    "is_stub_track",
]

#: Longest artist/track value sent (characters): a garbage 5,000-character title must not build
#: a URL the server refuses with 414.
MAX_QUERY_VALUE = 200

#: Last.fm error codes (last.fm/api/errorcodes) and what they mean for retry and breaker.
ERROR_OUTCOMES: dict[int, Outcome] = {
    29: Outcome.RATE_LIMITED,  # rate limit exceeded (HTTP 429 or 200)
    8: Outcome.SERVER_ERROR,  # operation failed (generic backend error)
    11: Outcome.SERVER_ERROR,  # service offline
    16: Outcome.SERVER_ERROR,  # temporary error, retry
    6: Outcome.NOT_FOUND,  # invalid parameters: "Track not found", unknown artist
    4: Outcome.AUTH_FAILED,  # authentication failed
    9: Outcome.AUTH_FAILED,  # invalid session key
    10: Outcome.AUTH_FAILED,  # invalid API key
    26: Outcome.AUTH_FAILED,  # suspended API key
    2: Outcome.CLIENT_ERROR,  # invalid service
    3: Outcome.CLIENT_ERROR,  # invalid method
    5: Outcome.CLIENT_ERROR,  # invalid format
    7: Outcome.CLIENT_ERROR,  # invalid resource
    13: Outcome.CLIENT_ERROR,  # invalid signature
    17: Outcome.CLIENT_ERROR,  # login required
}

#: What each call needs from a 2xx body without an ``error`` code (those are classified by
#: :meth:`LastFmClient.classify` first), by data type; anything less is MALFORMED.
SHAPES: dict[str, Shape] = {
    "info": ("track", dict),
    "tags": ("toptags", dict),
}


def _error_code(data: Any) -> int | None:
    """The ``error`` code of a Last.fm error body (int, or a numeric string), else None."""
    if not isinstance(data, dict) or "error" not in data:
        return None
    code = data["error"]
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.strip().isdigit():
        return int(code)
    return None


def count(value: Any) -> int | None:
    """A Last.fm number (sent as a string: ``"1315650"``) as a non-negative int, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


#: ``calls_saved`` reason (stat ``apigw/lastfm/calls_saved/toptags_from_getinfo``): a
#: ``track.getTopTags`` call not made because ``track.getInfo`` listed the track's top tags.
SAVED_TOP_TAGS = "toptags_from_getinfo"

#: Most listeners a stub track reports: Last.fm's stub for an unknown pair says ``"2"``.
STUB_MAX_LISTENERS = 2


def is_stub_track(info: dict[str, Any]) -> bool:
    """True when a ``track.getInfo`` ``track`` is Last.fm's stub for an unknown pair.

    Last.fm answers an unknown artist/track with HTTP 200 and a track that only echoes the
    names asked: ``listeners`` "2" (at most :data:`STUB_MAX_LISTENERS`), ``duration`` "0", no
    tags, no ``album`` and no ``mbid`` (PROVIDERS.md section 4, lastfm-docs/api-docs). A real
    track always has one of these: more listeners, a duration, a tag, an album or an MBID.
    """
    toptags = info.get("toptags")
    tags = toptags.get("tag") if isinstance(toptags, dict) else None
    listeners = count(info.get("listeners"))
    return (
        (listeners is None or listeners <= STUB_MAX_LISTENERS)
        and not count(info.get("duration"))
        and not tags
        and not info.get("album")
        and not (isinstance(info.get("mbid"), str) and info["mbid"].strip())
    )


def candidate(info: dict[str, Any]) -> Candidate:
    """The :class:`~scrapy_apigw.core.confidence.Candidate` of a ``track.getInfo`` track:
    ``name``, ``artist.name`` and ``duration`` (ms as a string; ``"0"`` is unknown)."""
    artist = info.get("artist")
    name = artist.get("name") if isinstance(artist, dict) else artist
    return Candidate(
        title=str(info.get("name") or ""),
        artists=[name] if isinstance(name, str) and name else [],
        duration_ms=count(info.get("duration")) or None,
    )


class LastFmClient:
    """Last.fm part of the waterfall.

    Args:
        autocorrect: send ``autocorrect=1`` so Last.fm maps misspelt artist/track names to its
            canonical ones (``0`` otherwise).
        max_tags: most tags kept in ``lastfm_tags``.

    Fields produced: ``lastfm_playcount`` and ``lastfm_listeners`` (ints; missing or unparsable
    values are left out) and ``lastfm_tags`` (tag names, duplicates removed case-insensitively,
    at most *max_tags*; not set when Last.fm has no tags). The tags are the getInfo track's
    ``toptags`` (names without counts, in Last.fm's order, the top few: 5 on the sandbox, the
    number real Last.fm lists is undocumented); only when it lists none is
    ``track.getTopTags`` asked (tags by ``count`` descending), and each call so saved counts
    in ``calls_saved`` as :data:`SAVED_TOP_TAGS`. For an
    unknown artist/track pair Last.fm answers HTTP 200 with a stub track instead of error 6
    (PROVIDERS.md section 4); :func:`is_stub_track` tells it apart and the track is reported
    not found, without asking for its tags.
    """

    name = "lastfm"

    def __init__(self, autocorrect: bool = True, max_tags: int = 10) -> None:
        if max_tags < 1:
            raise ValueError(f"max_tags must be >= 1, got {max_tags}")
        self.autocorrect = autocorrect
        self.max_tags = max_tags

    def classify(self, status: int, data: Any) -> Outcome:
        """Classify a Last.fm answer: the body's ``error`` code first, whatever the status.

        ================  ==============
        error code        outcome
        ================  ==============
        29                RATE_LIMITED
        8, 11, 16         SERVER_ERROR
        6                 NOT_FOUND
        4, 9, 10, 26      AUTH_FAILED
        2, 3, 5, 7, 13,   CLIENT_ERROR
        17
        other code        by status if it is an error status, else CLIENT_ERROR (an error body
                          is never a success)
        no error key      by status (2xx SUCCESS, 429 RATE_LIMITED, 5xx SERVER_ERROR...)
        ================  ==============
        """
        code = _error_code(data)
        if code is None:
            return classify_status(status)
        if code in ERROR_OUTCOMES:
            return ERROR_OUTCOMES[code]
        by_status = classify_status(status)
        return Outcome.CLIENT_ERROR if by_status is Outcome.SUCCESS else by_status

    def check_shape(self, call: ApiCall, data: Any) -> str | None:
        """What a 2xx body lacks for *call* (see :data:`SHAPES`), or None."""
        return check_shape(SHAPES, call, data)

    async def enrich(self, track: TrackContext, fetch: Fetch) -> ProviderResult:
        """Read the track's counts and top tags from getInfo, asking getTopTags only when
        getInfo lists no tags."""
        identities: list[tuple[tuple[str, str], ...]] = []
        artist = primary_artist(track.artist, track.artists)
        autocorrect = "1" if self.autocorrect else "0"
        title = search_title(track.title, keep_featuring=True)[:MAX_QUERY_VALUE]
        if artist and title:
            artist = artist[:MAX_QUERY_VALUE]
            identities.append((("artist", artist), ("track", title), ("autocorrect", autocorrect)))
        if track.musicbrainz_id:
            identities.append((("mbid", track.musicbrainz_id),))
        if artist and title and len(track.artists) > 1:
            # a credit written in another order ("B, A"): Last.fm keys the track by its first
            # artist, so the second one is asked last
            second = primary_artist(track.artists[1])[:MAX_QUERY_VALUE]
            if second and second.casefold() != artist.casefold():
                identities.append(
                    (("artist", second), ("track", title), ("autocorrect", autocorrect))
                )
        if track.unidentified:
            identities = identities[1:] if artist and track.title else identities
        if not identities:
            return ProviderResult("skipped", reason="no MBID, or artist and title")

        info: dict[str, Any] | None = None
        stub = unsure = False
        answer: ApiAnswer | None = None
        identity: tuple[tuple[str, str], ...] = ()
        match: dict[str, Any] | None = None
        for identity in identities:
            answer = await fetch(self._call("track.getInfo", identity, "info"))
            data = answer.data if answer.kind == "ok" and isinstance(answer.data, dict) else {}
            if isinstance(data.get("track"), dict):
                if is_stub_track(data["track"]):
                    stub = True
                    continue
                if identity[0][0] == "mbid":
                    match = track.identifier_match("musicbrainz_id", "id")
                else:
                    # autocorrect may map the names to another track: check what came back
                    sure = confidence(wanted_of(track), candidate(data["track"]))
                    if sure < track.min_confidence:
                        unsure = True
                        continue
                    match = match_of(sure, "search")
                info = data["track"]
                break  # *identity* is the one Last.fm knows: ask the tags with it
        if info is None:
            if answer is not None and answer.kind in ("rejected", "forbidden"):
                return ProviderResult("failed", reason=f"request refused (HTTP {answer.status})")
            if unsure:
                return ProviderResult("not_found", reason="no confident match")
            if stub:
                return ProviderResult("not_found", reason="track not found (stub track)")
            return ProviderResult("not_found", reason="track not found")

        fields: dict[str, Any] = {}
        for source, target in (
            ("playcount", "lastfm_playcount"),
            ("listeners", "lastfm_listeners"),
        ):
            value = count(info.get(source))
            if value is not None:
                fields[target] = value
        saved: dict[str, int] = {}
        tags = self.top_tags(info)
        if tags:
            saved[SAVED_TOP_TAGS] = 1
        else:
            tags_answer = await fetch(self._call("track.getTopTags", identity, "tags"))
            if tags_answer.kind == "ok":
                tags = self.top_tags(tags_answer.data)
        if tags:
            fields["lastfm_tags"] = tags
        if not fields:
            return ProviderResult("not_found", reason="no counts or tags")
        return ProviderResult("ok", fields, calls_saved=saved, match=match)

    def top_tags(self, data: Any) -> list[str]:
        """Tag names of a ``track.getTopTags`` body or a ``track.getInfo`` track, by count
        descending (Last.fm's order where there are no counts), at most ``max_tags``.

        Shape: ``{"toptags": {"tag": [{"count": 100, "name": "hard rock", "url": ...}]}}``; the
        getInfo track's ``toptags`` has the same shape without ``count``. A single tag may come
        as an object instead of a list (Last.fm's XML-to-JSON conversion).
        """
        toptags = data.get("toptags") if isinstance(data, dict) else None
        raw = toptags.get("tag") if isinstance(toptags, dict) else None
        entries = [raw] if isinstance(raw, dict) else raw if isinstance(raw, list) else []
        tags = [t for t in entries if isinstance(t, dict) and isinstance(t.get("name"), str)]
        tags.sort(key=lambda t: -(count(t.get("count")) or 0))
        names: list[str] = []
        seen: set[str] = set()
        for tag in tags:
            name = tag["name"].strip()
            if name and name.casefold() not in seen:
                seen.add(name.casefold())
                names.append(name)
        return names[: self.max_tags]

    def _call(self, method: str, identity: tuple[tuple[str, str], ...], data_type: str) -> ApiCall:
        params = (("method", method), *identity, ("format", "json"))
        return ApiCall(provider=self.name, data_type=data_type, path="/", params=params)


# -- the provider declaration (scrapy_apigw.providers.spec) --------------------------------------

#: Last.fm: PROVIDERS.md section 0 (5 req/s, burst 5, breaker 5 / 60 s / 2; tags cached 14 days).
PROVIDER = ProviderSpec(
    name="lastfm",
    config=ProviderConfig(
        name="lastfm",
        base_url="https://ws.audioscrobbler.com/2.0",
        domains=("ws.audioscrobbler.com",),
        rate=5,
        burst=5,
        failure_threshold=5,
        open_timeout=60,
        success_threshold=2,
        cache_ttl={"tags": 14 * DAY, "info": 14 * DAY},
    ),
    client=lambda ctx: LastFmClient(),
    # The sandbox's value: scrapy_apigw.sandbox.config.DEFAULT_LASTFM_API_KEY.
    credentials=(Credential("api_key", "LASTFM_API_KEY", sandbox="sandbox-lastfm-key"),),
    auth=lambda creds, ctx: QueryKeyAuth("api_key", creds["api_key"]),
    sandbox_path="/lastfm/2.0",
    # Never read: the pages and images, the wiki text, the streamable flags (the client reads
    # names, mbids, listeners, play counts, durations and tags).
    unread_keys=frozenset({"image", "streamable", "url", "wiki"}),
)
