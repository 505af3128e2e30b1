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
    MALFORMED = "malformed"  # a 2xx that is not the provider's valid shape: retry with backoff

    @property
    def retryable(self) -> bool:
        """True for outcomes the retry policy retries (rate limits, 5xx, network errors, malformed
        answers); whether a given HTTP status is retried is also up to the provider's
        ``retry_statuses`` (:func:`retried`)."""
        return self in (
            Outcome.RATE_LIMITED,
            Outcome.SERVER_ERROR,
            Outcome.NETWORK_ERROR,
            Outcome.MALFORMED,
        )

    @property
    def breaker_failure(self) -> bool:
        """True for outcomes that count as a failure for the circuit breaker."""
        return self in (Outcome.SERVER_ERROR, Outcome.NETWORK_ERROR, Outcome.MALFORMED)

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


def apply_status_lists(
    outcome: Outcome,
    status: int,
    retry_statuses: frozenset[int],
    rate_limit_statuses: frozenset[int],
) -> Outcome:
    """The outcome of an exchange once a provider's configured status lists are applied.

    - a status in *rate_limit_statuses* is RATE_LIMITED, whatever the provider's classifier said
      (its own signals, such as MusicBrainz's 503 rate-limit body or Last.fm error 29, stay);
    - a status in *retry_statuses* that the classifier took for a refused request
      (CLIENT_ERROR, e.g. 420 or 425) is a SERVER_ERROR, so that it is retried; 401, 403 and
      404/410 keep their meaning.

    Args:
        outcome: what the provider's classifier made of the exchange.
        status: HTTP status (0 when there was no response).
        retry_statuses, rate_limit_statuses: the provider's ``ProviderConfig`` fields.
    """
    if status in rate_limit_statuses:
        return Outcome.RATE_LIMITED
    if outcome is Outcome.CLIENT_ERROR and status in retry_statuses:
        return Outcome.SERVER_ERROR
    return outcome


def is_retried(outcome: Outcome, status: int, retry_statuses: frozenset[int]) -> bool:
    """True when an exchange with *outcome* and HTTP *status* may be retried.

    A retryable outcome (:attr:`Outcome.retryable`) is retried when it has no status (network
    error), a 2xx status (a malformed answer, or an error in a 200 body such as Last.fm's error
    29 or 16), or a status listed in *retry_statuses*. Anything else is not retried: removing 503
    from ``retry_statuses`` makes a 503 fail at once (it still counts for the breaker).
    """
    if not outcome.retryable:
        return False
    if status == 0 or 200 <= status < 300:
        return True
    return status in retry_statuses
