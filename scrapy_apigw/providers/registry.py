"""The provider registry: per-provider limits, breaker thresholds, retry policy and cache TTLs.

Defaults come from ``shared/design/PROVIDERS.md`` section 0 (the product's design documents).
Users override any field, or add a provider, with one setting::

    APIGW_PROVIDERS = {"musicbrainz": {"rate": 0.5, "base_url": "https://mb.example.org/ws/2"}}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from scrapy_apigw.exceptions import ConfigError

DAY = 86400.0


@dataclass(frozen=True)
class ProviderConfig:
    """Everything the gateway knows about one provider.

    Attributes:
        name: registry key, e.g. ``"spotify"``.
        base_url: API root without trailing slash; a URL starting with it belongs to the provider.
        token_url: OAuth token endpoint (Spotify, Beatport), also owned by the provider.
        domains: hosts owned by the provider (a request to ``https://<domain>/...`` belongs to it).
        rate: sustained rate of the token bucket, requests per second.
        burst: bucket capacity, requests.
        window_limit, window: optional sliding-window quota (requests per ``window`` seconds) kept
            on top of the bucket, e.g. Discogs' 60 per 60 s moving window.
        failure_threshold: failures that open the circuit.
        open_timeout: seconds the circuit stays OPEN before a half-open probe.
        success_threshold: half-open successes that close the circuit.
        max_retries: retries after the first attempt.
        backoff_base, backoff_cap: first backoff delay and its cap, seconds (doubling).
        jitter: relative jitter, ``0.2`` means ±20 %.
        retry_statuses: HTTP statuses retried (with backoff, or the Retry-After hint).
        rate_limit_statuses: statuses that mean "too fast" for this provider (MusicBrainz: 503).
        max_retry_after: longest Retry-After (seconds) a call waits for; above it the call fails at
            once while the provider stays paused for the whole hint.
        timeout: seconds for one HTTP exchange (headers and body).
        cache_ttl: seconds to cache an answer, by data type (``"search"``, ``"track"``...).
        not_found_ttl: seconds to cache a "not found" answer.
        enabled: ``False`` removes the provider from the waterfall and the middlewares.
    """

    name: str
    base_url: str
    token_url: str | None = None
    domains: tuple[str, ...] = ()
    rate: float = 1.0
    burst: int = 1
    window_limit: int | None = None
    window: float | None = None
    failure_threshold: int = 5
    open_timeout: float = 60.0
    success_threshold: int = 2
    max_retries: int = 5
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    jitter: float = 0.2
    retry_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    rate_limit_statuses: frozenset[int] = frozenset({429})
    max_retry_after: float = 600.0
    timeout: float = 30.0
    cache_ttl: Mapping[str, float] = field(default_factory=dict)
    not_found_ttl: float = DAY
    enabled: bool = True

    def __post_init__(self) -> None:
        problems = []
        if self.rate <= 0:
            problems.append("rate must be > 0 req/s")
        if self.burst < 1:
            problems.append("burst must be >= 1")
        if (self.window_limit is None) != (self.window is None):
            problems.append("window_limit and window go together")
        if self.window_limit is not None and self.window_limit < 1:
            problems.append("window_limit must be >= 1")
        if self.failure_threshold < 1 or self.success_threshold < 1:
            problems.append("breaker thresholds must be >= 1")
        if self.max_retries < 0 or self.backoff_base < 0 or self.backoff_cap < 0:
            problems.append("retry numbers must be >= 0")
        if not 0 <= self.jitter < 1:
            problems.append("jitter must be in [0, 1)")
        if not urlsplit(self.base_url).scheme.startswith("http"):
            problems.append(f"base_url must be an http(s) URL, got {self.base_url!r}")
        if problems:
            raise ConfigError(f"provider {self.name!r}: " + "; ".join(problems))

    def owns(self, url: str) -> bool:
        """Return True if *url* belongs to this provider (base/token URL prefix or domain)."""
        if url.startswith(self.base_url) or (self.token_url and url.startswith(self.token_url)):
            return True
        host = (urlsplit(url).hostname or "").lower()
        return bool(host) and host in self.domains

    def ttl(self, data_type: str) -> float:
        """Cache TTL in seconds for *data_type*; 0 means "do not cache"."""
        return float(self.cache_ttl.get(data_type, 0.0))

    def with_overrides(self, overrides: Mapping[str, Any]) -> ProviderConfig:
        """Return a copy with *overrides* applied.

        Raises:
            ConfigError: an unknown field or an invalid value.
        """
        known = {f.name for f in dataclasses.fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(
                f"provider {self.name!r}: unknown field(s) {sorted(unknown)}; "
                f"known: {sorted(known)}"
            )
        values = dict(overrides)
        for key in ("retry_statuses", "rate_limit_statuses"):
            if key in values:
                values[key] = frozenset(int(s) for s in values[key])
        if "domains" in values:
            values["domains"] = tuple(str(d).lower() for d in values["domains"])
        if "base_url" in values:
            values["base_url"] = str(values["base_url"]).rstrip("/")
        if "cache_ttl" in values:
            values["cache_ttl"] = {**self.cache_ttl, **values["cache_ttl"]}
        return dataclasses.replace(self, **values)


DEFAULT_PROVIDERS: dict[str, ProviderConfig] = {
    "spotify": ProviderConfig(
        name="spotify",
        base_url="https://api.spotify.com/v1",
        token_url="https://accounts.spotify.com/api/token",
        domains=("api.spotify.com", "accounts.spotify.com"),
        rate=10,
        burst=20,
        failure_threshold=10,
        open_timeout=120,
        success_threshold=2,
        cache_ttl={"track": 30 * DAY, "search": 7 * DAY, "audio_features": 90 * DAY},
    ),
    "musicbrainz": ProviderConfig(
        name="musicbrainz",
        base_url="https://musicbrainz.org/ws/2",
        domains=("musicbrainz.org",),
        rate=1,
        burst=1,
        failure_threshold=3,
        open_timeout=60,
        success_threshold=2,
        # MusicBrainz signals "too fast" with 503, not 429 (musicbrainz.org/doc/.../Rate_Limiting).
        rate_limit_statuses=frozenset({503}),
        cache_ttl={"isrc": 90 * DAY, "search": 30 * DAY, "recording": 90 * DAY},
    ),
    "lastfm": ProviderConfig(
        name="lastfm",
        base_url="https://ws.audioscrobbler.com/2.0",
        domains=("ws.audioscrobbler.com",),
        rate=5,
        burst=5,
        failure_threshold=5,
        open_timeout=60,
        success_threshold=2,
        cache_ttl={"tags": 14 * DAY, "info": 14 * DAY},
    ),
    "beatport": ProviderConfig(
        name="beatport",
        base_url="https://api.beatport.com/v4",
        token_url="https://api.beatport.com/v4/auth/o/token/",
        domains=("api.beatport.com",),
        rate=2,
        burst=2,
        failure_threshold=5,
        open_timeout=90,
        success_threshold=2,
        cache_ttl={"track": 60 * DAY, "search": 60 * DAY},
    ),
    "discogs": ProviderConfig(
        name="discogs",
        base_url="https://api.discogs.com",
        domains=("api.discogs.com",),
        rate=1,
        burst=1,
        # 60 requests per moving 60 s window (authenticated); X-Discogs-Ratelimit may lower it.
        window_limit=60,
        window=60.0,
        failure_threshold=5,
        open_timeout=60,
        success_threshold=2,
        cache_ttl={"release": 60 * DAY, "search": 30 * DAY},
    ),
    "acousticbrainz": ProviderConfig(
        name="acousticbrainz",
        base_url="https://acousticbrainz.org/api/v1",
        domains=("acousticbrainz.org",),
        rate=5,
        burst=5,
        failure_threshold=5,
        open_timeout=60,
        success_threshold=2,
        cache_ttl={"features": 90 * DAY},
    ),
}


def build_registry(
    overrides: Mapping[str, Mapping[str, Any] | None] | None = None,
) -> dict[str, ProviderConfig]:
    """Merge user *overrides* (the ``APIGW_PROVIDERS`` setting) into the defaults.

    A key naming an unknown provider adds one (``base_url`` is then required). A value of
    ``None`` removes a provider.

    Raises:
        ConfigError: an override is not a mapping, names an unknown field, or is invalid.
    """
    registry = dict(DEFAULT_PROVIDERS)
    for name, values in (overrides or {}).items():
        if values is None:
            registry.pop(name, None)
            continue
        if not isinstance(values, Mapping):
            raise ConfigError(f"APIGW_PROVIDERS[{name!r}] must be a dict, got {type(values)}")
        if name in registry:
            registry[name] = registry[name].with_overrides(values)
        else:
            if "base_url" not in values:
                raise ConfigError(f"new provider {name!r} needs a base_url")
            base = ProviderConfig(name=name, base_url=str(values["base_url"]).rstrip("/"))
            registry[name] = base.with_overrides(values)
    return registry


def provider_for_url(registry: Mapping[str, ProviderConfig], url: str) -> ProviderConfig | None:
    """Return the enabled provider owning *url*, the longest ``base_url`` prefix winning."""
    matches = [p for p in registry.values() if p.enabled and p.owns(url)]
    if not matches:
        return None
    return max(matches, key=lambda p: len(p.base_url) if url.startswith(p.base_url) else 0)
