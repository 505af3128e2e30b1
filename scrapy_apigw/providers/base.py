"""Types shared by the provider clients, the transport and the enrichment waterfall.

A provider client only builds :class:`ApiCall` objects and parses :class:`ApiAnswer` objects; it
never touches the network, the cache, credentials or the clock. The transport
(:mod:`scrapy_apigw.transport`) turns a call into an answer through the gateway (token bucket,
circuit breaker, retry policy), the auth strategy and the cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from scrapy_apigw.core.confidence import Wanted
from scrapy_apigw.core.outcome import Outcome, classify_status

__all__ = [
    "ANSWER_KINDS",
    "AnswerKind",
    "ApiAnswer",
    "ApiCall",
    "Fetch",
    "Outcome",
    "ProviderClient",
    "ProviderResult",
    "ResultStatus",
    "Shape",
    "TrackContext",
    "check_shape",
    "classify_status",
    "listed",
    "match_of",
    "require",
    "wanted_of",
]


@dataclass(frozen=True)
class ApiCall:
    """One logical request to a provider, without credentials.

    Attributes:
        provider: provider name (registry key).
        data_type: cache category, selects the TTL (``"search"``, ``"track"``, ``"isrc"``...).
        path: path relative to the provider's ``base_url``, starting with ``/``
            (e.g. ``"/search"``, ``"/isrc/GBAAA9900303"``). Already percent-encoded where needed.
        params: query parameters in a fixed order; never credentials (the auth layer adds those).
        method: HTTP method.
        headers: extra request headers (e.g. ``Accept``); never credentials.
        refusal: when a 403 to this call refuses the whole app, not this one request, the name
            of what is refused (e.g. ``"audio_features"``): the transport remembers the 403
            for ``APIGW_REFUSAL_TTL`` seconds, in the cache, and answers later such calls
            ``forbidden`` without asking (see ``Transport.refused``). Not part of the cache key,
            nor of equality: it says how to treat the answer, not what is asked.
    """

    provider: str
    data_type: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    refusal: str | None = field(default=None, compare=False)


AnswerKind = Literal["ok", "not_found", "forbidden", "rejected"]


@dataclass(frozen=True)
class ApiAnswer:
    """The final answer to an :class:`ApiCall`.

    Attributes:
        kind: ``"ok"`` (data present), ``"not_found"`` (the provider says there is none),
            ``"forbidden"`` (403: not available to this app), ``"rejected"`` (another 4xx:
            our request was refused; ``data`` holds the provider's error body).
        status: HTTP status of the final attempt (200 for cache hits of ok answers).
        data: the decoded JSON body (dict or list), or ``None``.
        from_cache: True when served from the cache.
        stale: True when served from the cache past its TTL because the provider failed
            (stale-if-error, ``APIGW_STALE_TTL``); such an answer is also ``from_cache``.
    """

    kind: AnswerKind
    status: int
    data: Any = None
    from_cache: bool = False
    stale: bool = False


#: The answer kind of each non-retryable outcome the transport returns as an answer (the others
#: are retried, refreshed, or raised as ``ProviderUnavailable``).
ANSWER_KINDS: dict[Outcome, AnswerKind] = {
    Outcome.SUCCESS: "ok",
    Outcome.NOT_FOUND: "not_found",
    Outcome.FORBIDDEN: "forbidden",
    Outcome.CLIENT_ERROR: "rejected",
}


#: What one call needs from a 2xx JSON body: a dotted path and the JSON type found there, e.g.
#: ``("tracks.items", list)``. An empty path means the body itself.
Shape = tuple[str, type]

_TYPE_NAMES = {list: "list", dict: "object", str: "string", int: "integer"}


def require(data: Any, path: str, kind: type) -> str | None:
    """None when *data* holds a *kind* value at the dotted *path*, else what is missing.

    ``require({"tracks": {"items": []}}, "tracks.items", list)`` is None;
    ``require({"tracks": {}}, "tracks.items", list)`` is ``"no tracks.items list"``. A bool is
    not an ``int`` and an empty string is missing. Never raises, whatever *data* is.
    """
    value = data
    for key in path.split(".") if path else ():
        value = value.get(key) if isinstance(value, dict) else None
    wrong = (isinstance(value, bool) and kind is not bool) or (kind is str and value == "")
    if isinstance(value, kind) and not wrong:
        return None
    return f"no {path or 'JSON'} {_TYPE_NAMES.get(kind, kind.__name__)}"


def listed(value: Any) -> list[Any]:
    """*value* when it is a JSON array, else ``[]``: a field that should list things but holds
    a number, a string or an object lists nothing (iterating it would fail or split it)."""
    return value if isinstance(value, list) else []


def check_shape(shapes: Mapping[str, Shape], call: ApiCall, data: Any) -> str | None:
    """Check a 2xx body against the shape its call's ``data_type`` needs (see :func:`require`);
    None for a data type with no shape listed."""
    shape = shapes.get(call.data_type)
    return require(data, *shape) if shape else None


class Fetch(Protocol):
    """What a provider client calls to get an answer; raises ``ProviderUnavailable`` on failure."""

    async def __call__(self, call: ApiCall) -> ApiAnswer: ...


@dataclass
class TrackContext:
    """What the waterfall knows about one track so far; clients read it and add to it.

    ``artist`` and ``title`` are cleaned input strings (possibly empty); ``artists`` lists every
    credited artist when the input gave several. Identifier fields are filled from the input or by
    earlier providers (Spotify gives the ISRC that MusicBrainz then looks up).
    """

    artist: str = ""
    title: str = ""
    artists: tuple[str, ...] = ()
    spotify_id: str | None = None
    isrc: str | None = None
    musicbrainz_id: str | None = None
    duration_ms: int | None = None
    #: Why the scraped track names nothing findable (``"unidentified track (ID - ID)"``, see
    #: :func:`scrapy_apigw.core.scraped.unidentified`); such a track is not searched.
    unidentified: str | None = None
    #: Lowest match confidence a client accepts (``APIGW_MIN_MATCH_CONFIDENCE``, set by the
    #: waterfall); a candidate below is "not found".
    min_confidence: float = 0.8
    #: Confidence of the identifiers an earlier provider filled in (``"isrc"``,
    #: ``"musicbrainz_id"``...: that provider's match confidence); identifiers from the input
    #: are not listed (confidence 1.0).
    identifier_confidence: dict[str, float] = field(default_factory=dict)
    #: Which provider filled in each of those identifiers (``{"isrc": "spotify"}``).
    identifier_source: dict[str, str] = field(default_factory=dict)
    #: Output fields earlier providers of the waterfall already set (the waterfall adds each
    #: provider's after it answers; first source wins), so a later client can skip a call that
    #: would only give one of them (Discogs' release for ``release_date``).
    found: set[str] = field(default_factory=set)
    #: The values behind :attr:`found`, by field and provider, in waterfall order
    #: (``{"release_date": {"spotify": "2013-06-18", "musicbrainz": "2013"}}``), so a later
    #: client can check its candidates against them (Discogs' release year).
    found_values: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def has_query(self) -> bool:
        """True when there is something to look up (artist and title, or an identifier); an
        unidentified track (``"ID - ID"``) has only its identifiers."""
        if self.unidentified:
            return bool(self.spotify_id or self.isrc)
        return bool((self.artist and self.title) or self.spotify_id or self.isrc)

    def confidence_of(self, identifier: str) -> float:
        """Confidence of identifier *identifier* (``"isrc"``...): 1.0 when it came from the
        input, else the match confidence of the provider that found it."""
        return self.identifier_confidence.get(identifier, 1.0)

    def found_identifier(self, identifier: str, provider: str, confidence: float) -> None:
        """Record that *provider* filled in *identifier* with match *confidence*."""
        self.identifier_confidence[identifier] = confidence
        self.identifier_source[identifier] = provider

    def identifier_match(self, identifier: str, by: str) -> dict[str, Any]:
        """The ``match`` of a lookup by *identifier*: ``{"confidence", "by"}`` plus
        ``"via": provider`` when an earlier provider found the identifier (such a lookup is
        only as sure as that provider's match, and the cross-checks do not prefer it)."""
        match = match_of(self.confidence_of(identifier), by)
        source = self.identifier_source.get(identifier)
        if source:
            match["via"] = source
        return match


ResultStatus = Literal["ok", "not_found", "failed", "skipped"]


@dataclass
class ProviderResult:
    """What one provider contributed to one track.

    Attributes:
        status: ``ok`` (fields found), ``not_found`` (the provider answered: no match),
            ``failed`` (no answer: outage, open circuit, retries exhausted, malformed answers,
            refused request),
            ``skipped`` (disabled or nothing this provider can look up).
        fields: output fields to set on the item (names from :mod:`scrapy_apigw.enrichment.fields`).
        reason: short log-safe reason for ``failed``/``skipped``/``not_found``.
        stale: True when some answer behind this result was served stale (the provider failed
            and an expired cache entry stood in: ``enrichment_stale`` on the item).
        calls_saved: calls the client did not need to make, by reason (counted in the stats
            ``apigw/<provider>/calls_saved/<reason>``, see docs/stats.md).
        match: how the provider matched the track, for ``enrichment_match``:
            ``{"confidence": 0.97, "by": "search"}`` (``by``: ``"id"``, ``"isrc"`` or
            ``"search"``); None when it found nothing.
        evidence: what the matched record says of the recording, for the waterfall's
            cross-checks (not output fields): ``"isrcs"`` (list of str), ``"duration_ms"``
            (int).
    """

    status: ResultStatus
    fields: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    stale: bool = False
    calls_saved: dict[str, int] = field(default_factory=dict)
    # Metadata of the match, not what was found: left out of equality (compare=False).
    match: dict[str, Any] | None = field(default=None, compare=False)
    evidence: dict[str, Any] = field(default_factory=dict, compare=False)


class ProviderClient(Protocol):
    """A provider's part of the waterfall.

    ``enrich`` reads *track*, makes calls through *fetch*, and returns what it found. It may
    update *track* with identifiers later providers need (``isrc``, ``musicbrainz_id``...).
    It lets :class:`~scrapy_apigw.exceptions.ProviderUnavailable` propagate: the waterfall turns
    that into a ``failed`` result.
    """

    name: str

    async def enrich(self, track: TrackContext, fetch: Fetch) -> ProviderResult: ...

    def classify(self, status: int, data: Any) -> Outcome:
        """Classify one HTTP exchange (status + decoded JSON body or None)."""
        ...

    def check_shape(self, call: ApiCall, data: Any) -> str | None:
        """None when a 2xx body *data* (decoded JSON) has what *call* needs, else a short
        log-safe note of what is missing (``"no results list"``): the transport then treats
        the answer as :attr:`Outcome.MALFORMED`. Never raises."""
        ...


def wanted_of(track: TrackContext, *, with_isrc: bool = True) -> Wanted:
    """The :class:`~scrapy_apigw.core.confidence.Wanted` of *track*: its title, every credited
    artist, the duration an earlier provider found and (with *with_isrc*) its ISRC."""
    return Wanted(
        title=track.title,
        artists=list(track.artists) or [track.artist],
        duration_ms=track.duration_ms,
        isrc=track.isrc if with_isrc else None,
    )


def match_of(confidence: float, by: str) -> dict[str, Any]:
    """The ``enrichment_match`` entry of one provider: ``{"confidence": 0.97, "by": "isrc"}``
    (confidence rounded to 0.01; *by* is ``"id"``, ``"isrc"`` or ``"search"``)."""
    return {"confidence": round(confidence, 2), "by": by}
