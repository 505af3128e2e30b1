"""Spotify's client-credentials token: cached, refreshed before expiry, shared, refused clearly.

The token poster is an in-test function (the real one posts through the transport, tested end
to end in tests/integration/test_auth.py); the clock is a FakeClock.
"""

import pytest
import pytest_twisted
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet import defer

from scrapy_apigw.core.clock import FakeClock
from scrapy_apigw.exceptions import AuthError, ProviderUnavailable
from scrapy_apigw.providers.auth import ClientCredentialsAuth, HeaderAuth, QueryKeyAuth
from scrapy_apigw.secrets import Secret


class Poster:
    def __init__(self, answers):
        self.answers = list(answers)
        self.requests = []
        self.gate = None
        self.entered = defer.Deferred()  # fires when the first request is being made

    async def __call__(self, headers, body):
        self.requests.append((headers, body))
        if not self.entered.called:
            self.entered.callback(None)
        if self.gate is not None:
            await maybe_deferred_to_future(self.gate)
        return self.answers.pop(0)


async def release_after_the_others_queued(poster):
    """Open *poster*'s gate once its first request is waiting and the other callers, started
    in the same loop turn, have queued behind it (one zero-delay turn of the reactor)."""
    from twisted.internet import reactor, task

    await poster.entered
    await task.deferLater(reactor, 0, poster.gate.callback, None)


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
async def test_one_refusal_fails_every_waiting_caller_and_is_remembered():
    poster = Poster([(400, {"error": "invalid_client"})])
    poster.gate = defer.Deferred()
    auth = ClientCredentialsAuth(Secret("id"), Secret("wrong"), poster, FakeClock())
    waiting = [bearer(auth) for _ in range(5)]
    await release_after_the_others_queued(poster)
    results = await defer.DeferredList(waiting, consumeErrors=True)
    assert [ok for ok, _ in results] == [False] * 5
    assert {f.value.reason for _, f in results} == {
        "token request refused (HTTP 400, invalid_client)"
    }
    with pytest.raises(AuthError, match="invalid_client"):
        await bearer(auth)  # later callers: the remembered refusal, no new request
    auth.invalidate()
    with pytest.raises(AuthError):
        await bearer(auth)
    assert len(poster.requests) == 1


@pytest_twisted.ensureDeferred
async def test_a_failed_token_request_is_shared_by_its_waiters_then_tried_again():
    class Failing(Poster):
        async def __call__(self, headers, body):
            self.requests.append((headers, body))
            if len(self.requests) == 1:
                self.entered.callback(None)
                await maybe_deferred_to_future(self.gate)
                raise ProviderUnavailable("spotify", "HTTP 503 after 5 retries")
            return token(2)

    poster = Failing([])
    poster.gate = defer.Deferred()
    auth = ClientCredentialsAuth(Secret("id"), Secret("s"), poster, FakeClock())
    waiting = [bearer(auth) for _ in range(3)]
    await release_after_the_others_queued(poster)
    results = await defer.DeferredList(waiting, consumeErrors=True)
    assert [type(f.value) for _, f in results] == [ProviderUnavailable] * 3
    assert await bearer(auth) == "Bearer tok2"  # not a refusal: the next caller asks again
    assert len(poster.requests) == 2


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


def test_thousands_of_callers_woken_at_once_all_get_the_token(monkeypatch):
    # Under a non-asyncio reactor Scrapy's maybe_deferred_to_future returns the Deferred itself,
    # so a woken caller runs at once on the waker's stack. Woken one by one from each other's
    # release (a DeferredLock) they overflowed the stack and the lock stayed held: the crawl
    # hung. Plain Deferreds, no reactor: everything below runs synchronously.
    import scrapy_apigw.providers.auth as auth_module

    monkeypatch.setattr(auth_module, "maybe_deferred_to_future", lambda d: d)
    gate = defer.Deferred()
    requests = []

    async def post(headers, body):
        requests.append(body)
        await gate
        return token(1)

    auth = ClientCredentialsAuth(Secret("id"), Secret("s"), post, FakeClock())

    async def apply():
        headers = {}
        await auth.apply(headers, [])
        return headers["Authorization"]

    callers = [defer.Deferred.fromCoroutine(apply()) for _ in range(3000)]
    gate.callback(None)
    results = [caller.result for caller in callers]  # each fired (a hang would raise here)
    assert results == ["Bearer tok1"] * 3000
    assert len(requests) == 1


@pytest_twisted.ensureDeferred
async def test_a_cancelled_caller_does_not_stop_the_others():
    poster = Poster([token(1)])
    poster.gate = defer.Deferred()
    auth = ClientCredentialsAuth(Secret("id"), Secret("s"), poster, FakeClock())
    first, cancelled, last = bearer(auth), bearer(auth), bearer(auth)
    cancelled.cancel()
    poster.gate.callback(None)
    assert await defer.gatherResults([first, last]) == ["Bearer tok1"] * 2
    assert len(poster.requests) == 1
