"""Types shared by the provider clients, the transport and the enrichment waterfall.

A provider client only builds :class:`ApiCall` objects and parses :class:`ApiAnswer` objects; it
never touches the network, the cache, credentials or the clock. The transport
(:mod:`scrapy_apigw.transport`) turns a call into an answer through the gateway (token bucket,
circuit breaker, retry policy), the auth strategy and the cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

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
    "TrackContext",
    "classify_status",
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
    """

    provider: str
    data_type: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()


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
    """

    kind: AnswerKind
    status: int
    data: Any = None
    from_cache: bool = False


#: The answer kind of each non-retryable outcome the transport returns as an answer (the others
#: are retried, refreshed, or raised as ``ProviderUnavailable``).
ANSWER_KINDS: dict[Outcome, AnswerKind] = {
    Outcome.SUCCESS: "ok",
    Outcome.NOT_FOUND: "not_found",
    Outcome.FORBIDDEN: "forbidden",
    Outcome.CLIENT_ERROR: "rejected",
}


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

    @property
    def has_query(self) -> bool:
        """True when there is something to look up (artist and title, or an identifier)."""
        return bool((self.artist and self.title) or self.spotify_id or self.isrc)


ResultStatus = Literal["ok", "not_found", "failed", "skipped"]


@dataclass
class ProviderResult:
    """What one provider contributed to one track.

    Attributes:
        status: ``ok`` (fields found), ``not_found`` (the provider answered: no match),
            ``failed`` (no answer: outage, open circuit, retries exhausted, refused request),
            ``skipped`` (disabled or nothing this provider can look up).
        fields: output fields to set on the item (names from :mod:`scrapy_apigw.enrichment.fields`).
        reason: short log-safe reason for ``failed``/``skipped``/``not_found``.
    """

    status: ResultStatus
    fields: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


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
