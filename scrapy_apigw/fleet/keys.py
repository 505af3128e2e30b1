"""Where the fleet keeps its state in Redis: one key layout, namespaced per fleet and provider.

Layout (``ns`` is the cache namespace, e.g. ``apigw``)::

    {ns}:fleet:{<fleet>:<provider>}:bucket    HASH  token bucket and shared pause
    {ns}:fleet:{<fleet>:<provider>}:line      ZSET  waiters in turn order
    {ns}:fleet:{<fleet>:<provider>}:window    LIST  grant instants in the sliding window
    {ns}:fleet:{<fleet>:<provider>}:quota     HASH  the provider's announced quota
    {ns}:fleet:{<fleet>:<provider>}:breaker   HASH  circuit state and counts
    {ns}:fleet:{<fleet>:<provider>}:probes    ZSET  half-open probe permits and their leases
    {ns}:fleet:{<fleet>:<provider>}:adaptive  HASH  effective rate and burst (AIMD record)
    {ns}:fleet:{<fleet>}:processes            ZSET  live processes (heartbeats)
    {ns}:fleet:{<fleet>}:resets               HASH  admin resets per ``<kind>:<provider>``

The part in braces is a Redis Cluster hash tag: every key one script touches is in the same
slot. Names are the fleet's and the provider's only, never a credential.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from scrapy_apigw.exceptions import ConfigError

__all__ = ["ProviderKeys", "processes_key", "provider_keys", "resets_key"]

# Braces would break the hash tag; whitespace and control characters make keys hard to use.
_BAD = re.compile(r"[{}\s\x00-\x1f\x7f]")
_MAX_LENGTH = 100


@dataclass(frozen=True)
class ProviderKeys:
    """The Redis keys of one provider's fleet state (see the module docstring)."""

    bucket: str
    line: str
    window: str
    quota: str
    breaker: str
    probes: str
    adaptive: str


def provider_keys(namespace: str, fleet: str, provider: str) -> ProviderKeys:
    """Return the keys of *provider*'s state in *fleet*.

    Raises:
        ConfigError: a name is empty, longer than 100 characters, or holds a brace, white space
            or a control character.
    """
    _check("namespace (APIGW_CACHE_NAMESPACE)", namespace)
    _check("fleet name (APIGW_FLEET)", fleet)
    _check("provider name", provider)
    prefix = f"{namespace}:fleet:{{{fleet}:{provider}}}"
    return ProviderKeys(
        bucket=f"{prefix}:bucket",
        line=f"{prefix}:line",
        window=f"{prefix}:window",
        quota=f"{prefix}:quota",
        breaker=f"{prefix}:breaker",
        probes=f"{prefix}:probes",
        adaptive=f"{prefix}:adaptive",
    )


def processes_key(namespace: str, fleet: str) -> str:
    """Return the key of *fleet*'s heartbeats.

    Raises:
        ConfigError: as :func:`provider_keys`.
    """
    _check("namespace (APIGW_CACHE_NAMESPACE)", namespace)
    _check("fleet name (APIGW_FLEET)", fleet)
    return f"{namespace}:fleet:{{{fleet}}}:processes"


def resets_key(namespace: str, fleet: str) -> str:
    """Return the key of *fleet*'s admin reset counters (field ``breaker:<provider>`` or
    ``limits:<provider>`` -> resets so far), read by every heartbeat.

    Raises:
        ConfigError: as :func:`provider_keys`.
    """
    _check("namespace (APIGW_CACHE_NAMESPACE)", namespace)
    _check("fleet name (APIGW_FLEET)", fleet)
    return f"{namespace}:fleet:{{{fleet}}}:resets"


def _check(what: str, name: str) -> None:
    if not isinstance(name, str) or not 0 < len(name) <= _MAX_LENGTH or _BAD.search(name):
        raise ConfigError(
            f"the {what} must be 1 to {_MAX_LENGTH} characters without braces, white space or "
            f"control characters, got {name!r}"
        )
