"""How each provider wants its credentials on a request. The only place secrets are revealed.

- Spotify: OAuth 2 client-credentials token (``POST accounts.spotify.com/api/token`` with HTTP
  Basic ``client_id:client_secret``), sent as ``Authorization: Bearer``; cached, refreshed
  before expiry and once on a 401 (PROVIDERS.md §1).
- MusicBrainz: no key, a meaningful ``User-Agent`` is required (PROVIDERS.md §2).
- Discogs: ``Authorization: Discogs token=<personal access token>`` (PROVIDERS.md §3).
- Last.fm: ``api_key`` query parameter (PROVIDERS.md §4).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from twisted.internet.defer import Deferred

from scrapy_apigw.core.clock import Clock
from scrapy_apigw.deferreds import maybe_deferred_to_future
from scrapy_apigw.exceptions import AuthError, ProviderUnavailable
from scrapy_apigw.secrets import Secret

logger = logging.getLogger(__name__)


class Auth(Protocol):
    """Adds credentials to one outgoing request.

    ``refreshable`` is True when a 401 may be cured by :meth:`invalidate` and one more try
    (an expired OAuth token); that try is not a retry.
    """

    refreshable: bool

    async def apply(self, headers: dict[str, str], params: list[tuple[str, str]]) -> None: ...

    def invalidate(self) -> None: ...


class NoAuth:
    """No credentials (AcousticBrainz, user-added open APIs)."""

    refreshable = False

    async def apply(self, headers: dict[str, str], params: list[tuple[str, str]]) -> None:
        return None

    def invalidate(self) -> None:
        return None


class UserAgentAuth(NoAuth):
    """MusicBrainz: identify with ``App/1.0 ( contact )``; anonymous agents are throttled."""

    def __init__(self, user_agent: str) -> None:
        self.user_agent = user_agent

    async def apply(self, headers: dict[str, str], params: list[tuple[str, str]]) -> None:
        headers["User-Agent"] = self.user_agent


class HeaderAuth(NoAuth):
    """A fixed header, e.g. ``Authorization: Discogs token=...``; *template* has ``{secret}``."""

    def __init__(self, name: str, template: str, secret: Secret) -> None:
        self.name = name
        self.template = template
        self._secret = secret

    async def apply(self, headers: dict[str, str], params: list[tuple[str, str]]) -> None:
        headers[self.name] = self.template.format(secret=self._secret.reveal())


class TemplateHeaderAuth(NoAuth):
    """A header built from several credentials: *template* names them, e.g.
    ``"Bearer {token}"`` or ``"Key {key}, secret={secret}"`` (a provider declared in
    ``APIGW_PROVIDERS``); the values are revealed only here."""

    def __init__(self, name: str, template: str, credentials: Mapping[str, Any]) -> None:
        self.name = name
        self.template = template
        self._credentials = dict(credentials)

    async def apply(self, headers: dict[str, str], params: list[tuple[str, str]]) -> None:
        values = {
            key: value.reveal() if isinstance(value, Secret) else str(value)
            for key, value in self._credentials.items()
        }
        headers[self.name] = self.template.format(**values)


class QueryKeyAuth(NoAuth):
    """A key in the query string, e.g. Last.fm's ``api_key``."""

    def __init__(self, param: str, secret: Secret) -> None:
        self.param = param
        self._secret = secret

    async def apply(self, headers: dict[str, str], params: list[tuple[str, str]]) -> None:
        params.append((self.param, self._secret.reveal()))


#: ``(headers, form body) -> (status, decoded JSON body)``: posts to the token URL through the
#: gateway (so the token request is throttled and breaker-guarded like any other call).
TokenPoster = Callable[[dict[str, str], bytes], Awaitable[tuple[int, Any]]]


def granted_token(status: int, data: Any) -> str | None:
    """Return the bearer token of a token endpoint's answer, or ``None`` if it grants none.

    A grant is HTTP 200 with an ``access_token`` and ``token_type`` "bearer" (any case), RFC 6749
    §5.1; anything else is a refusal (Spotify: HTTP 400 ``invalid_client``, §5.2).
    """
    if status != 200 or not isinstance(data, dict):
        return None
    token = data.get("access_token")
    if not token or str(data.get("token_type", "")).lower() != "bearer":
        return None
    return str(token)


class ClientCredentialsAuth:
    """OAuth 2 client-credentials flow (RFC 6749 §4.4) as Spotify implements it.

    The token lives in memory only (never in the cache, logs or stats). It is requested on
    first use and refreshed when less than ``min(60 s, 10 % of its lifetime)`` remains, or after
    :meth:`invalidate`.

    Single flight: callers that need a token while a request for one is in flight wait for that
    request and share its outcome (the token, or its error), so N concurrent items cost one
    token request. A refusal is final: it is remembered, and every later call raises
    :class:`AuthError` at once without asking again (the credentials will not change during
    the crawl). Other failures (network, 5xx after retries) are shared by the callers waiting
    on that request only; the next caller tries again.

    Raises (from :meth:`apply`):
        AuthError: the token endpoint refused the credentials (Spotify: HTTP 400
            ``invalid_client``) or answered without a bearer token, now or earlier.
        ProviderUnavailable: the token request got no answer (network error, retries
            exhausted, circuit open).
    """

    refreshable = True

    def __init__(
        self,
        client_id: Secret,
        client_secret: Secret,
        post: TokenPoster,
        clock: Clock,
        provider: str = "spotify",
    ) -> None:
        self.provider = provider
        self._client_id = client_id
        self._client_secret = client_secret
        self._post = post
        self._clock = clock
        self._token: Secret | None = None
        self._refresh_at = 0.0
        self._refusal: AuthError | None = None
        # Not None while a token request is in flight: the callers waiting for its outcome.
        self._waiters: list[Deferred[Secret]] | None = None

    async def apply(self, headers: dict[str, str], params: list[tuple[str, str]]) -> None:
        token = await self._valid_token()
        headers["Authorization"] = f"Bearer {token.reveal()}"

    def invalidate(self) -> None:
        self._token = None

    async def _valid_token(self) -> Secret:
        if self._refusal is not None:
            raise AuthError(self._refusal.provider, self._refusal.reason)
        if self._token is not None and self._clock() < self._refresh_at:
            return self._token
        if self._waiters is not None:
            waiter: Deferred[Secret] = Deferred()
            self._waiters.append(waiter)
            return await maybe_deferred_to_future(waiter)
        self._waiters = []
        try:
            token = await self._request_token()
        except BaseException as exc:
            if isinstance(exc, AuthError):
                self._refusal = exc
            # A cancelled request (BaseException) must still release its waiters.
            shared = (
                exc
                if isinstance(exc, Exception)
                else ProviderUnavailable(self.provider, "token request cancelled")
            )
            waiters, self._waiters = self._waiters, None
            for waiter in waiters:
                if not waiter.called:  # its caller was cancelled (item deadline, stop)
                    waiter.errback(shared)
            raise
        # Woken from one flat loop (not one by one from each other's release, as a DeferredLock
        # does): under a non-asyncio reactor a woken caller runs at once, on this stack, and a
        # chain of hundreds overflowed it.
        waiters, self._waiters = self._waiters, None
        for waiter in waiters:
            if not waiter.called:
                waiter.callback(token)
        return token

    async def _request_token(self) -> Secret:
        basic = f"{self._client_id.reveal()}:{self._client_secret.reveal()}".encode()
        headers = {
            "Authorization": "Basic " + base64.b64encode(basic).decode("ascii"),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        status, data = await self._post(headers, b"grant_type=client_credentials")
        token = granted_token(status, data)
        if token is None:
            error = data.get("error") if isinstance(data, dict) else None
            raise AuthError(
                self.provider, f"token request refused (HTTP {status}, {error or 'no token'})"
            )
        return self._keep(token, data)

    def _keep(self, token: str, data: dict[str, Any]) -> Secret:
        """Keep a granted *token* until shortly before it expires (``expires_in``, seconds)."""
        try:
            lifetime = float(data.get("expires_in") or 3600)
        except (TypeError, ValueError):
            lifetime = 3600.0
        self._token = Secret(token)
        self._refresh_at = self._clock() + lifetime - min(60.0, lifetime * 0.1)
        logger.debug("apigw: %s token obtained, valid %.0f s", self.provider, lifetime)
        return self._token
