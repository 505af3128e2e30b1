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
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import DeferredLock

from scrapy_apigw.core.clock import Clock
from scrapy_apigw.exceptions import AuthError
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


class ClientCredentialsAuth:
    """OAuth 2 client-credentials flow (RFC 6749 §4.4) as Spotify implements it.

    The token lives in memory only (never in the cache, logs or stats). It is requested on
    first use, shared by concurrent callers (one request in flight), and refreshed when less
    than ``min(60 s, 10 % of its lifetime)`` remains, or after :meth:`invalidate`.

    Raises (from :meth:`apply`):
        AuthError: the token endpoint refused the credentials (Spotify: HTTP 400
            ``invalid_client``) or answered without a bearer token.
    """

    refreshable = True

    def __init__(
        self, client_id: Secret, client_secret: Secret, post: TokenPoster, clock: Clock
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._post = post
        self._clock = clock
        self._token: Secret | None = None
        self._refresh_at = 0.0
        self._lock = DeferredLock()

    async def apply(self, headers: dict[str, str], params: list[tuple[str, str]]) -> None:
        token = await self._valid_token()
        headers["Authorization"] = f"Bearer {token.reveal()}"

    def invalidate(self) -> None:
        self._token = None

    async def _valid_token(self) -> Secret:
        if self._token is not None and self._clock() < self._refresh_at:
            return self._token
        await maybe_deferred_to_future(self._lock.acquire())
        try:
            # Another caller may have refreshed it while we waited for the lock.
            if self._token is None or self._clock() >= self._refresh_at:
                await self._request_token()
            assert self._token is not None
            return self._token
        finally:
            self._lock.release()

    async def _request_token(self) -> None:
        basic = f"{self._client_id.reveal()}:{self._client_secret.reveal()}".encode()
        headers = {
            "Authorization": "Basic " + base64.b64encode(basic).decode("ascii"),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        status, data = await self._post(headers, b"grant_type=client_credentials")
        token = data.get("access_token") if isinstance(data, dict) else None
        token_type = str(data.get("token_type", "")) if isinstance(data, dict) else ""
        if status != 200 or not token or token_type.lower() != "bearer":
            error = data.get("error") if isinstance(data, dict) else None
            raise AuthError(
                "spotify", f"token request refused (HTTP {status}, {error or 'no token'})"
            )
        lifetime = float(data.get("expires_in") or 3600)
        self._token = Secret(str(token))
        self._refresh_at = self._clock() + lifetime - min(60.0, lifetime * 0.1)
        logger.debug("apigw: spotify token obtained, valid %.0f s", lifetime)
