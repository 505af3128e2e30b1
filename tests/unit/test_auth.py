"""Spotify's client-credentials token: cached, refreshed before expiry, shared, refused clearly.

The token poster is an in-test function (the real one posts through the transport, tested end
to end in tests/integration/test_auth.py); the clock is a FakeClock.
"""

import pytest
import pytest_twisted
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet import defer

from scrapy_apigw.core.clock import FakeClock
from scrapy_apigw.exceptions import AuthError
from scrapy_apigw.providers.auth import ClientCredentialsAuth, HeaderAuth, QueryKeyAuth
from scrapy_apigw.secrets import Secret


class Poster:
    def __init__(self, answers):
        self.answers = list(answers)
        self.requests = []
        self.gate = None

    async def __call__(self, headers, body):
        self.requests.append((headers, body))
        if self.gate is not None:
            await maybe_deferred_to_future(self.gate)
        return self.answers.pop(0)


def token(n, lifetime=3600):
    return 200, {"access_token": f"tok{n}", "token_type": "bearer", "expires_in": lifetime}


def bearer(auth):
    """The Authorization header *auth* sets, as a Deferred (runs auth as an asyncio task)."""

    async def apply():
        headers = {}
        await auth.apply(headers, [])
        return headers["Authorization"]

    return deferred_from_coro(apply())


@pytest_twisted.ensureDeferred
async def test_token_is_cached_and_refreshed_before_expiry():
    clock = FakeClock()
    poster = Poster([token(1), token(2)])
    auth = ClientCredentialsAuth(Secret("id"), Secret("secret"), poster, clock)
    assert await bearer(auth) == "Bearer tok1"
    headers, body = poster.requests[0]
    assert body == b"grant_type=client_credentials"
    assert headers["Authorization"] == "Basic aWQ6c2VjcmV0"  # base64("id:secret")
    clock.set(3539.9)  # refresh 60 s before the hour is up
    assert await bearer(auth) == "Bearer tok1"
    clock.set(3540.0)
    assert await bearer(auth) == "Bearer tok2"
    assert len(poster.requests) == 2


@pytest_twisted.ensureDeferred
async def test_concurrent_callers_share_one_token_request():
    poster = Poster([token(1)])
    poster.gate = defer.Deferred()
    auth = ClientCredentialsAuth(Secret("id"), Secret("s"), poster, FakeClock())
    waiting = [bearer(auth) for _ in range(5)]
    poster.gate.callback(None)
    assert await defer.gatherResults(waiting) == ["Bearer tok1"] * 5
    assert len(poster.requests) == 1


@pytest_twisted.ensureDeferred
async def test_invalidate_forces_one_new_token():
    poster = Poster([token(1), token(2)])
    auth = ClientCredentialsAuth(Secret("id"), Secret("s"), poster, FakeClock())
    assert await bearer(auth) == "Bearer tok1"
    auth.invalidate()
    assert await bearer(auth) == "Bearer tok2"


@pytest.mark.parametrize(
    "answer",
    [
        (400, {"error": "invalid_client", "error_description": "Invalid client"}),
        (200, {"access_token": "x", "token_type": "mac"}),
        (200, None),
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_refused_token_request_is_an_auth_error_without_the_secret(answer):
    auth = ClientCredentialsAuth(Secret("id"), Secret("hunter2"), Poster([answer]), FakeClock())
    with pytest.raises(AuthError) as raised:
        await bearer(auth)
    assert "hunter2" not in str(raised.value) and raised.value.provider == "spotify"


@pytest_twisted.ensureDeferred
async def test_static_credentials_go_in_header_or_query():
    headers, params = {}, [("method", "track.getInfo")]
    await deferred_from_coro(
        HeaderAuth("Authorization", "Discogs token={secret}", Secret("t0k")).apply(headers, params)
    )
    await deferred_from_coro(QueryKeyAuth("api_key", Secret("k3y")).apply(headers, params))
    assert headers == {"Authorization": "Discogs token=t0k"}
    assert params == [("method", "track.getInfo"), ("api_key", "k3y")]
