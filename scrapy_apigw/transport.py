"""Enrichment calls over treq, through the gateway, the auth layer and the cache.

One :class:`Transport` per pipeline. :meth:`Transport.fetch` turns an
:class:`~scrapy_apigw.providers.base.ApiCall` into an
:class:`~scrapy_apigw.providers.base.ApiAnswer`:

cache hit? → for each attempt: fail fast if the circuit is OPEN → wait for the provider's
token bucket / pause / window → take a breaker permit → send with treq → classify → record on
the breaker and pacing → retry (backoff with jitter, or the provider pause a rate limit set)
→ cache ``ok`` / ``not_found`` answers with their data type's TTL.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import treq
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import maybe_deferred_to_future

from scrapy_apigw.core.outcome import Outcome
from scrapy_apigw.exceptions import (
    ApiGatewayError,
    AuthError,
    ProviderUnavailable,
    RateLimitedError,
)
from scrapy_apigw.gateway import Gateway, ProviderState, decode_json
from scrapy_apigw.providers.auth import (
    Auth,
    ClientCredentialsAuth,
    HeaderAuth,
    NoAuth,
    QueryKeyAuth,
    UserAgentAuth,
)
from scrapy_apigw.providers.base import ANSWER_KINDS, ApiAnswer, ApiCall
from scrapy_apigw.secrets import redact_url

if TYPE_CHECKING:
    from scrapy_apigw.cache import ResponseCache

logger = logging.getLogger(__name__)


@dataclass
class Attempt:
    """One HTTP exchange: its outcome, status (0 when no response), body and headers."""

    outcome: Outcome
    status: int = 0
    data: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: float | None = None
    error: str | None = None

    def describe(self) -> str:
        """Log-safe summary, e.g. ``"HTTP 503"`` or ``"ConnectionRefusedError"``."""
        return f"HTTP {self.status}" if self.status else (self.error or self.outcome.value)


class Transport:
    """treq client for the pipeline path, sharing the crawler's :class:`Gateway`.

    Args:
        gateway: the crawler's gateway (limits, breakers, retry policies, stats).
        cache: the answer cache, or None to disable caching.
    """

    def __init__(self, gateway: Gateway, cache: ResponseCache | None = None) -> None:
        self.gateway = gateway
        self.cache = cache
        self.settings = gateway.settings
        self.auth: dict[str, Auth] = {
            name: self._build_auth(state) for name, state in gateway.states.items()
        }
        self._refused: set[str] = set()
        self._pool: Any = None
        self._client: Any = None

    # -- lifecycle --------------------------------------------------------------------------

    def _http(self) -> Any:
        if self._client is None:
            from twisted.internet import reactor
            from twisted.web.client import Agent, HTTPConnectionPool

            self._pool = HTTPConnectionPool(reactor, persistent=True)
            self._pool.maxPersistentPerHost = 8
            agent: Any = Agent(reactor, pool=self._pool)
            self._client = treq.client.HTTPClient(agent)
        return self._client

    async def close(self) -> None:
        """Close cached connections (treq's pool keeps idle ones open otherwise)."""
        if self._pool is not None:
            await maybe_deferred_to_future(self._pool.closeCachedConnections())
            self._pool = self._client = None

    # -- public API -------------------------------------------------------------------------

    async def fetch(self, call: ApiCall) -> ApiAnswer:
        """Answer *call* from the cache or the provider.

        Raises:
            ProviderUnavailable: no answer (circuit open, retries exhausted, network error).
            RateLimitedError: the provider asked for a pause longer than ``max_retry_after``.
            AuthError: the provider refused our credentials (remembered for the crawl).
        """
        state = self.gateway.states.get(call.provider)
        if state is None:
            raise ProviderUnavailable(call.provider, "provider disabled or unknown")
        ttl = state.config.ttl(call.data_type)
        if self.cache is not None and ttl > 0:
            cached = await self.cache.get(call)
            if cached is not None:
                return cached
            self.gateway.inc(f"{state.name}/cache/miss")
        answer = await self._call(state, call)
        if self.cache is not None and ttl > 0:
            if answer.kind == "ok":
                await self.cache.put(call, answer, ttl)
            elif answer.kind == "not_found":
                await self.cache.put(call, answer, min(ttl, state.config.not_found_ttl))
        return answer

    # -- internals --------------------------------------------------------------------------

    async def _call(self, state: ProviderState, call: ApiCall) -> ApiAnswer:
        if state.name in self._refused:
            raise AuthError(state.name, "credentials refused earlier in this crawl")
        auth = self.auth[state.name]
        url = state.config.base_url + call.path

        async def send() -> Attempt:
            headers = {
                "User-Agent": self.settings.user_agent,
                "Accept": "application/json",
                **dict(call.headers),
            }
            params = list(call.params)
            await auth.apply(headers, params)  # after a refresh: the new token
            return await self._attempt(state, call.method, url, headers, params)

        refreshed = False
        while True:
            try:
                result = await self._with_retries(state, send)
            except AuthError as exc:  # the token endpoint refused the client credentials
                self._refuse(state, exc.reason)
            if result.outcome is Outcome.AUTH_FAILED:
                if auth.refreshable and not refreshed:
                    # An expired OAuth token: refresh once; this is not a retry (PROVIDERS.md §0).
                    auth.invalidate()
                    refreshed = True
                    self.gateway.inc(f"{state.name}/auth/refreshes")
                    continue
                self._refuse(state, f"credentials refused ({result.describe()})")
            kind = ANSWER_KINDS.get(result.outcome)
            if kind is None:  # pragma: no cover - every non-retryable outcome is mapped above
                raise ProviderUnavailable(state.name, result.describe())
            if kind == "rejected":
                logger.debug(
                    "apigw: %s refused %s %s: %s",
                    state.name,
                    call.method,
                    redact_url(url),
                    result.describe(),
                )
            return ApiAnswer(kind=kind, status=result.status, data=result.data)

    def _refuse(self, state: ProviderState, reason: str) -> NoReturn:
        if state.name not in self._refused:
            self._refused.add(state.name)
            logger.error(
                "apigw: %s: %s; the provider is skipped for the rest of the crawl",
                state.name,
                reason,
            )
        raise AuthError(state.name, reason)

    async def _with_retries(
        self, state: ProviderState, send: Callable[[], Awaitable[Attempt]]
    ) -> Attempt:
        attempt = 0
        while True:
            result = await send()
            if not result.outcome.retryable:
                return result
            attempt += 1
            delay = self.gateway.retry_delay(state, result.outcome, attempt, result.retry_after)
            if delay is None:
                raise RateLimitedError(state.name, result.retry_after or 0.0)
            if not state.policy.should_retry(result.outcome, attempt):
                raise ProviderUnavailable(
                    state.name, f"{result.describe()} after {attempt - 1} retries"
                )
            self.gateway.inc(f"{state.name}/retries")
            if delay > 0:
                await sleep(delay)

    async def _attempt(
        self,
        state: ProviderState,
        method: str,
        url: str,
        headers: dict[str, str],
        params: list[tuple[str, str]],
        body: bytes | None = None,
    ) -> Attempt:
        gateway = self.gateway
        gateway.fail_fast(state)
        await gateway.acquire(state)
        gateway.check_circuit(state)
        try:
            status, response_headers, content = await self._send(
                method, url, headers, params, body, state.config.timeout
            )
        except ApiGatewayError:
            raise
        except Exception as exc:
            # Timeouts, refused or reset connections: the exception class is the reason (its
            # text is not logged, so no URL or credential can leak through it).
            gateway.observe(state, Outcome.NETWORK_ERROR, {})
            return Attempt(Outcome.NETWORK_ERROR, error=type(exc).__name__)
        data = decode_json(content)
        outcome = state.classify(status, data)
        retry_after = gateway.observe(state, outcome, response_headers)
        return Attempt(outcome, status, data, response_headers, retry_after)

    async def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        params: list[tuple[str, str]],
        body: bytes | None,
        timeout: float,
    ) -> tuple[int, dict[str, str], bytes]:
        from twisted.internet import reactor

        d = self._http().request(
            method, url, headers=headers, params=params or None, data=body, timeout=timeout
        )
        response = await maybe_deferred_to_future(d)
        # treq's timeout stops at the response headers: the body gets its own (verified fact).
        content_d = treq.content(response)
        content_d.addTimeout(timeout, reactor)
        content = await maybe_deferred_to_future(content_d)
        response_headers = {
            key.decode("latin-1").lower(): values[-1].decode("latin-1")
            for key, values in response.headers.getAllRawHeaders()
        }
        return response.code, response_headers, content

    # -- auth -------------------------------------------------------------------------------

    def _build_auth(self, state: ProviderState) -> Auth:
        creds = self.settings.credentials.get(state.name, {})
        if state.name == "spotify" and creds.get("client_id") and creds.get("client_secret"):
            return ClientCredentialsAuth(
                creds["client_id"],
                creds["client_secret"],
                self._token_poster(state),
                self.gateway.clock,
            )
        if state.name == "musicbrainz" and creds.get("user_agent"):
            return UserAgentAuth(str(creds["user_agent"]))
        if state.name == "discogs" and creds.get("token"):
            return HeaderAuth("Authorization", "Discogs token={secret}", creds["token"])
        if state.name == "lastfm" and creds.get("api_key"):
            return QueryKeyAuth("api_key", creds["api_key"])
        return NoAuth()

    def _token_poster(
        self, state: ProviderState
    ) -> Callable[[dict[str, str], bytes], Awaitable[tuple[int, Any]]]:
        async def post(headers: dict[str, str], body: bytes) -> tuple[int, Any]:
            token_url = state.config.token_url
            if not token_url:
                raise ProviderUnavailable(state.name, "no token_url configured")
            all_headers = {"User-Agent": self.settings.user_agent, **headers}

            async def send() -> Attempt:
                return await self._attempt(state, "POST", token_url, all_headers, [], body)

            result = await self._with_retries(state, send)
            self.gateway.inc(f"{state.name}/auth/tokens")
            return result.status, result.data

        return post
