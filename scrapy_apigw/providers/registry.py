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

from scrapy_apigw import validate as v
from scrapy_apigw.exceptions import ConfigError
from scrapy_apigw.validate import invalid

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
        retry_statuses: HTTP error statuses retried (with backoff, or the Retry-After hint); a
            failure with another status is not retried. Network errors and malformed 2xx
            answers are always retried (:func:`scrapy_apigw.core.outcome.is_retried`).
        rate_limit_statuses: statuses that mean "too fast" for this provider, on top of 429 and
            the client's own signals (MusicBrainz's 503 rate-limit body, Last.fm error 29)
            (:func:`scrapy_apigw.core.outcome.apply_status_lists`).
        max_retry_after: longest Retry-After (seconds) a call waits for; above it the provider is
            unavailable for the whole hint: its calls fail at once (RateLimitedError).
        max_rate_limit_streak: rate-limited answers in a row (each after the previous pause had
            ended) that make the provider unavailable for the last pause; 0 turns the rule off.
        max_rate_limit_wait: seconds of rate-limit pauses in a row (the last one included) that
            make the provider unavailable for the last pause; 0 turns the rule off.
        adaptive: lower the effective rate and burst on rate limits and raise them again up to
            ``rate`` and ``burst`` (AIMD, :mod:`scrapy_apigw.core.adaptive`), and take the quota
            the provider announces in its headers as a ceiling; ``False`` paces at the
            configured values only.
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
    max_rate_limit_streak: int = 5
    max_rate_limit_wait: float = 60.0
    adaptive: bool = True
    timeout: float = 30.0
    cache_ttl: Mapping[str, float] = field(default_factory=dict)
    not_found_ttl: float = DAY
    enabled: bool = True

    def __post_init__(self) -> None:
        # Direct constructions (the defaults, user code) meet the same rules as overrides.
        where = f"ProviderConfig({self.name!r})"
        for name, reader in FIELD_READERS.items():
            reader(f"{where}.{name}", getattr(self, name))
        _check_window(where, self.window_limit, self.window)

    def owns(self, url: str) -> bool:
        """Return True if *url* belongs to this provider (base/token URL prefix or domain)."""
        if url.startswith(self.base_url) or (self.token_url and url.startswith(self.token_url)):
            return True
        host = (urlsplit(url).hostname or "").lower()
        return bool(host) and host in self.domains

    def ttl(self, data_type: str) -> float:
        """Cache TTL in seconds for *data_type*; 0 means "do not cache"."""
        return float(self.cache_ttl.get(data_type, 0.0))

    def with_overrides(
        self, overrides: Mapping[str, Any], setting: str = "APIGW_PROVIDERS"
    ) -> ProviderConfig:
        """Return a copy with *overrides* (field -> value, values as :data:`FIELD_READERS` read
        them: numbers may be numeric strings) applied; ``cache_ttl`` is merged into the current.

        Raises:
            ConfigError: an unknown field or an invalid value; the message names
                ``<setting>["<provider>"]["<field>"]`` and the value.
        """
        where = v.item(setting, self.name)
        values: dict[str, Any] = {}
        for key, value in overrides.items():
            reader = FIELD_READERS.get(key)
            if reader is None:
                raise invalid(
                    v.item(where, key), value, f"unknown field; known: {sorted(FIELD_READERS)}"
                )
            values[key] = reader(v.item(where, key), value)
        if "cache_ttl" in values:
            values["cache_ttl"] = {**self.cache_ttl, **values["cache_ttl"]}
        _check_window(
            where, values.get("window_limit", self.window_limit), values.get("window", self.window)
        )
        return dataclasses.replace(self, **values)


def _hosts(where: str, value: Any) -> tuple[str, ...]:
    return tuple(host.lower() for host in v.text_list(where, value))


def _ttls(where: str, value: Any) -> dict[str, float]:
    seconds = v.number(minimum=0, unit="s")
    return {
        str(kind): seconds(v.item(where, kind), ttl)
        for kind, ttl in v.mapping(where, value).items()
    }


def _check_window(where: str, window_limit: int | None, window: float | None) -> None:
    if (window_limit is None) != (window is None):
        raise ConfigError(
            f"{where}: 'window_limit' and 'window' go together, got "
            f"window_limit={window_limit!r}, window={window!r}"
        )


#: How each field of ``APIGW_PROVIDERS["<provider>"]`` is read and checked: one reader per
#: :class:`ProviderConfig` field (``name`` is the key). A new field needs its line here.
FIELD_READERS: dict[str, v.Reader[Any]] = {
    "base_url": v.http_url,
    "token_url": v.optional(v.http_url),
    "domains": _hosts,
    "rate": v.number(above=0, unit="req/s"),
    "burst": v.whole(minimum=1, unit="requests"),
    "window_limit": v.optional(v.whole(minimum=1, unit="requests")),
    "window": v.optional(v.number(above=0, unit="s")),
    "failure_threshold": v.whole(minimum=1),
    "open_timeout": v.number(minimum=0, unit="s"),
    "success_threshold": v.whole(minimum=1),
    "max_retries": v.whole(minimum=0),
    "backoff_base": v.number(minimum=0, unit="s"),
    "backoff_cap": v.number(minimum=0, unit="s"),
    "jitter": v.number(minimum=0, below=1),
    "retry_statuses": v.statuses,
    "rate_limit_statuses": v.statuses,
    "max_retry_after": v.number(above=0, unit="s"),
    "max_rate_limit_streak": v.whole(minimum=0, unit="answers (0: off)"),
    "max_rate_limit_wait": v.number(minimum=0, unit="s (0: off)"),
    "adaptive": v.boolean,
    "timeout": v.number(above=0, unit="s"),
    "cache_ttl": _ttls,
    "not_found_ttl": v.number(minimum=0, unit="s"),
    "enabled": v.boolean,
}


def default_providers() -> dict[str, ProviderConfig]:
    """The defaults of every provider shipped with the package, by name: each provider
    module's ``PROVIDER.config`` (:mod:`scrapy_apigw.providers.spec`)."""
    from scrapy_apigw.providers.spec import load_specs

    return {name: spec.config for name, spec in load_specs().items()}


def __getattr__(name: str) -> Any:
    # ``DEFAULT_PROVIDERS`` is read from the provider modules on first use: they import this
    # module for ProviderConfig, so it cannot be built while this module loads.
    if name == "DEFAULT_PROVIDERS":
        return default_providers()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_registry(
    overrides: Mapping[str, Mapping[str, Any] | None] | None = None,
    setting: str = "APIGW_PROVIDERS",
    defaults: Mapping[str, ProviderConfig] | None = None,
) -> dict[str, ProviderConfig]:
    """Merge user *overrides* (the ``APIGW_PROVIDERS`` setting) into *defaults* (default:
    :func:`default_providers`).

    A key naming an unknown provider adds one (``base_url`` is then required). A value of
    ``None`` removes a provider. The keys that declare a provider (``client``,
    ``credentials``, ``auth``: :data:`scrapy_apigw.providers.spec.SPEC_KEYS`) are not
    :class:`ProviderConfig` fields and are left out here (see
    :func:`scrapy_apigw.providers.spec.spec_from_settings`).

    Raises:
        ConfigError: *overrides* or one of its values is not a dict (or its JSON), or names an
            unknown field, or has an invalid value; the message names the setting, the provider,
            the field and the value.
    """
    from scrapy_apigw.providers.spec import SPEC_KEYS

    registry = dict(default_providers() if defaults is None else defaults)
    for name, values in v.mapping(setting, overrides or {}).items():
        where = v.item(setting, name)
        if values is None:
            registry.pop(name, None)
            continue
        if not isinstance(name, str) or not name:
            raise invalid(where, values, "a provider name must be a non-empty string")
        if not isinstance(values, Mapping):
            raise invalid(where, values, "expected a dict of field -> value, or None to remove it")
        values = {key: value for key, value in values.items() if key not in SPEC_KEYS}
        if name in registry:
            registry[name] = registry[name].with_overrides(values, setting)
        else:
            if "base_url" not in values:
                raise invalid(where, values, "a new provider needs a 'base_url'")
            base_url = v.http_url(v.item(where, "base_url"), values["base_url"])
            registry[name] = ProviderConfig(name=name, base_url=base_url).with_overrides(
                values, setting
            )
    return registry


def provider_for_url(registry: Mapping[str, ProviderConfig], url: str) -> ProviderConfig | None:
    """Return the enabled provider owning *url*, the longest ``base_url`` prefix winning."""
    matches = [p for p in registry.values() if p.enabled and p.owns(url)]
    if not matches:
        return None
    return max(matches, key=lambda p: len(p.base_url) if url.startswith(p.base_url) else 0)
