"""What one HTTP exchange with a provider meant: the vocabulary of retry and breaker decisions."""

from __future__ import annotations

import enum


class Outcome(enum.Enum):
    """What one HTTP exchange with a provider meant.

    The retry policy and the breaker act on this, not on raw status codes, so a provider can
    redefine what a status means (MusicBrainz 503 = rate limited; Last.fm error 29 in a 200 body).
    """

    SUCCESS = "success"  # an answer with data
    NOT_FOUND = "not_found"  # the provider answered: there is no such thing (404, empty, error 6)
    FORBIDDEN = "forbidden"  # 403: not available to this app (e.g. Spotify audio features)
    CLIENT_ERROR = "client_error"  # 400 and other 4xx: our request was refused, never retried
    AUTH_FAILED = "auth_failed"  # 401 or an invalid/suspended key
    RATE_LIMITED = "rate_limited"  # 429, MusicBrainz 503, Last.fm error 29: retry after a pause
    SERVER_ERROR = "server_error"  # 5xx, Last.fm errors 8/11/16: retry with backoff
    NETWORK_ERROR = "network_error"  # timeout, refused, reset: retry with backoff

    @property
    def retryable(self) -> bool:
        """True for outcomes the retry policy retries (rate limits, 5xx, network errors)."""
        return self in (Outcome.RATE_LIMITED, Outcome.SERVER_ERROR, Outcome.NETWORK_ERROR)

    @property
    def breaker_failure(self) -> bool:
        """True for outcomes that count as a failure for the circuit breaker."""
        return self in (Outcome.SERVER_ERROR, Outcome.NETWORK_ERROR)

    @property
    def breaker_success(self) -> bool:
        """True for outcomes that count as a success (the provider is healthy)."""
        return self in (Outcome.SUCCESS, Outcome.NOT_FOUND)


def classify_status(status: int, rate_limit_statuses: frozenset[int] = frozenset({429})) -> Outcome:
    """Default classification of an HTTP status (RFC 9110 semantics plus the provider's signal).

    Args:
        status: HTTP status code.
        rate_limit_statuses: statuses that mean "too fast" for this provider.
    """
    if status in rate_limit_statuses:
        return Outcome.RATE_LIMITED
    if 200 <= status < 300:
        return Outcome.SUCCESS
    if status in (404, 410):
        return Outcome.NOT_FOUND
    if status == 401:
        return Outcome.AUTH_FAILED
    if status == 403:
        return Outcome.FORBIDDEN
    if status == 429:
        return Outcome.RATE_LIMITED
    if status in (408,) or status >= 500:
        return Outcome.SERVER_ERROR
    return Outcome.CLIENT_ERROR
