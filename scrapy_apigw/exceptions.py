"""Exceptions raised by the gateway.

Every message is safe to log: none carries a credential, a token or a URL with a query string.
"""

from __future__ import annotations


class ApiGatewayError(Exception):
    """Base class of every scrapy-apigw error."""


class ConfigError(ApiGatewayError, ValueError):
    """A setting has a value the gateway cannot use (raised at crawler start)."""


class ProviderUnavailable(ApiGatewayError):
    """A provider call did not produce an answer.

    Attributes:
        provider: provider name, e.g. ``"spotify"``.
        reason: short, log-safe reason, e.g. ``"circuit open"`` or ``"HTTP 503 after 5 retries"``.
    """

    def __init__(self, provider: str, reason: str) -> None:
        super().__init__(f"{provider}: {reason}")
        self.provider = provider
        self.reason = reason


class CircuitOpenError(ProviderUnavailable):
    """The provider's circuit is open: the call was refused without touching the network.

    ``retry_in`` is the number of seconds until the breaker lets a probe through (half-open).
    """

    def __init__(self, provider: str, retry_in: float) -> None:
        super().__init__(provider, f"circuit open (probe in {retry_in:.1f} s)")
        self.retry_in = retry_in


class RateLimitedError(ProviderUnavailable):
    """The provider keeps rate limiting, or asked for a pause over ``max_retry_after``: it is
    treated as unavailable and the call was refused (or its wait cut short) without touching the
    network (see :class:`~scrapy_apigw.core.ratelimit_streak.RateLimitStreak`).

    ``retry_in`` is the number of seconds until calls are let through again.
    """

    def __init__(self, provider: str, retry_in: float) -> None:
        super().__init__(provider, f"rate limited (unavailable for {retry_in:.0f} s)")
        self.retry_in = retry_in


class Interrupted(ProviderUnavailable):
    """The call was refused or cut short because its item may not wait any longer.

    ``reason`` is ``"interrupted"`` when the crawl is stopping (a graceful stop: SIGINT,
    ``CLOSESPIDER_*``, Scrapyd ``cancel.json``), or the item's deadline, e.g.
    ``"item timeout (30 s)"`` (``APIGW_ITEM_TIMEOUT``).
    """

    def __init__(self, provider: str, reason: str = "interrupted") -> None:
        super().__init__(provider, reason)


class AuthError(ProviderUnavailable):
    """Credentials were refused (bad client id/secret, invalid key, suspended key)."""
