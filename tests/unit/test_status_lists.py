"""retry_statuses and rate_limit_statuses work for every provider, built-in classifiers included.

The matrix runs through ``ProviderState`` built as the gateway builds it (the provider's client
classifier and shape check, plus its configuration), which both paths ask: the transport and
``RetryAfterMiddleware``.
"""

from __future__ import annotations

import random

import pytest

from scrapy_apigw.core.outcome import Outcome, apply_status_lists, is_retried
from scrapy_apigw.core.payload import Payload
from scrapy_apigw.gateway import ProviderState
from scrapy_apigw.providers.clients import classifier_for, shape_checker_for
from scrapy_apigw.providers.musicbrainz import RATE_LIMIT_MESSAGE
from scrapy_apigw.providers.registry import DEFAULT_PROVIDERS

ALL = ["spotify", "musicbrainz", "discogs", "lastfm", "beatport", "acousticbrainz"]
MB_RATE_LIMIT = {"error": f"Your requests are {RATE_LIMIT_MESSAGE}. Please see ..."}


def state(name: str, **overrides) -> ProviderState:
    config = DEFAULT_PROVIDERS[name].with_overrides(overrides)
    return ProviderState(
        config,
        lambda: 0.0,
        random.Random(0),
        classifier_for(config),
        check_shape=shape_checker_for(config),
    )


def verdict(s: ProviderState, status: int, data=None) -> tuple[Outcome, bool]:
    outcome = s.classify(status, data)
    return outcome, s.retries(outcome, status)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (429, (Outcome.RATE_LIMITED, True)),
        (500, (Outcome.SERVER_ERROR, True)),
        (502, (Outcome.SERVER_ERROR, True)),
        (504, (Outcome.SERVER_ERROR, True)),
        # 5xx outside the default retry_statuses (PROVIDERS.md §0) fail at once, breaker-counted.
        (501, (Outcome.SERVER_ERROR, False)),
        (520, (Outcome.SERVER_ERROR, False)),
        (408, (Outcome.SERVER_ERROR, False)),
        (400, (Outcome.CLIENT_ERROR, False)),
        (401, (Outcome.AUTH_FAILED, False)),
        (403, (Outcome.FORBIDDEN, False)),
        (404, (Outcome.NOT_FOUND, False)),
        (200, (Outcome.SUCCESS, False)),
    ],
)
def test_default_policy_of_every_provider(name, status, expected) -> None:
    assert verdict(state(name), status) == expected


@pytest.mark.parametrize("name", ALL)
def test_network_errors_and_malformed_answers_are_retried_whatever_retry_statuses_say(name):
    s = state(name, retry_statuses=[])
    assert s.retries(Outcome.NETWORK_ERROR, 0)
    assert s.retries(Outcome.MALFORMED, 200)
    assert s.judge(200, Payload(problem="truncated JSON")).outcome is Outcome.MALFORMED


@pytest.mark.parametrize("name", ALL)
def test_removing_503_from_retry_statuses_stops_retrying_it(name) -> None:
    s = state(name, retry_statuses=[429, 500, 502, 504])
    assert verdict(s, 503) == (Outcome.SERVER_ERROR, False)
    assert verdict(s, 502) == (Outcome.SERVER_ERROR, True)
    assert verdict(state(name), 503) == (Outcome.SERVER_ERROR, True)


@pytest.mark.parametrize("name", ALL)
def test_a_status_added_to_retry_statuses_is_retried(name) -> None:
    s = state(name, retry_statuses=[429, 500, 502, 503, 504, 520, 425])
    assert verdict(s, 520) == (Outcome.SERVER_ERROR, True)
    # A 4xx the user calls transient is retried (and counts for the breaker)...
    assert verdict(s, 425) == (Outcome.SERVER_ERROR, True)
    # ...but 401/403/404 keep their meaning.
    s = state(name, retry_statuses=[401, 403, 404])
    assert [verdict(s, code) for code in (401, 403, 404)] == [
        (Outcome.AUTH_FAILED, False),
        (Outcome.FORBIDDEN, False),
        (Outcome.NOT_FOUND, False),
    ]


@pytest.mark.parametrize("name", ALL)
def test_a_status_in_rate_limit_statuses_is_rate_limited(name) -> None:
    s = state(name, rate_limit_statuses=[429, 503, 420])
    assert verdict(s, 503) == (Outcome.RATE_LIMITED, True)
    # 420 is "too fast" but not in retry_statuses: it pauses the provider, the call fails.
    assert verdict(s, 420) == (Outcome.RATE_LIMITED, False)
    assert verdict(state(name, retry_statuses=[420], rate_limit_statuses=[420]), 420) == (
        Outcome.RATE_LIMITED,
        True,
    )


def test_removing_429_from_retry_statuses_stops_retrying_rate_limits() -> None:
    s = state("spotify", retry_statuses=[500, 502, 503, 504])
    assert verdict(s, 429) == (Outcome.RATE_LIMITED, False)


def test_musicbrainz_rate_limit_body_stays_a_rate_limit_beside_the_lists() -> None:
    mb = state("musicbrainz")
    assert verdict(mb, 503, MB_RATE_LIMIT) == (Outcome.RATE_LIMITED, True)
    assert verdict(mb, 503, None) == (Outcome.SERVER_ERROR, True)  # nginx page: maintenance
    without_503 = state("musicbrainz", retry_statuses=[429, 500, 502, 504])
    assert verdict(without_503, 503, MB_RATE_LIMIT) == (Outcome.RATE_LIMITED, False)
    # Listing 503 makes every MusicBrainz 503 a rate limit, the nginx page too.
    assert verdict(state("musicbrainz", rate_limit_statuses=[429, 503]), 503) == (
        Outcome.RATE_LIMITED,
        True,
    )


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, {"error": 29, "message": "Rate Limit Exceeded"}, (Outcome.RATE_LIMITED, True)),
        (200, {"error": 16, "message": "temporary error"}, (Outcome.SERVER_ERROR, True)),
        (200, {"error": 6, "message": "Track not found"}, (Outcome.NOT_FOUND, False)),
        (429, {"error": 29}, (Outcome.RATE_LIMITED, True)),
        (503, {"error": 11}, (Outcome.SERVER_ERROR, True)),
    ],
)
def test_lastfm_error_codes_keep_their_meaning(status, body, expected) -> None:
    assert verdict(state("lastfm"), status, body) == expected


def test_lastfm_rate_limit_statuses_win_over_the_body() -> None:
    s = state("lastfm", rate_limit_statuses=[429, 503])
    assert verdict(s, 503, {"error": 11}) == (Outcome.RATE_LIMITED, True)


def test_the_pure_rules() -> None:
    lists = (frozenset({429, 500, 502, 503, 504}), frozenset({429}))
    assert apply_status_lists(Outcome.CLIENT_ERROR, 420, *lists) is Outcome.CLIENT_ERROR
    assert (
        apply_status_lists(Outcome.SERVER_ERROR, 503, frozenset(), frozenset({503}))
        is Outcome.RATE_LIMITED
    )
    assert (
        apply_status_lists(Outcome.CLIENT_ERROR, 409, frozenset({409}), frozenset())
        is Outcome.SERVER_ERROR
    )
    assert is_retried(Outcome.RATE_LIMITED, 200, frozenset())  # Last.fm error 29 in a 200 body
    assert not is_retried(Outcome.SERVER_ERROR, 503, frozenset({500}))
    assert not is_retried(Outcome.CLIENT_ERROR, 400, frozenset({400}))  # not a retryable outcome
