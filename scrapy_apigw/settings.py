"""All ``APIGW_*`` settings, parsed once into a :class:`GatewaySettings` (unit-tested).

See ``docs/settings.md`` for the reference table.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scrapy.settings import BaseSettings

from scrapy_apigw import __version__
from scrapy_apigw.exceptions import ConfigError
from scrapy_apigw.providers.registry import ProviderConfig, build_registry
from scrapy_apigw.secrets import Secret

logger = logging.getLogger(__name__)

#: Credential fields per provider and the environment variable each falls back to.
#: The setting is the environment name prefixed with ``APIGW_`` (PROVIDERS.md section 0).
CREDENTIALS: dict[str, dict[str, str]] = {
    "spotify": {"client_id": "SPOTIFY_CLIENT_ID", "client_secret": "SPOTIFY_CLIENT_SECRET"},
    "musicbrainz": {"user_agent": "MUSICBRAINZ_USER_AGENT"},
    "discogs": {"token": "DISCOGS_TOKEN"},
    "lastfm": {"api_key": "LASTFM_API_KEY"},
    "beatport": {"api_key": "BEATPORT_API_KEY"},
}

SANDBOX_USER_AGENT = f"scrapy-apigw-sandbox/{__version__} ( sandbox@example.invalid )"

DEFAULT_WATERFALL = ("spotify", "musicbrainz", "discogs", "lastfm")
DEFAULT_INPUT_FIELDS = {
    "artist": "artist",
    "title": "title",
    "spotify_id": "spotify_id",
    "isrc": "isrc",
}


@dataclass(frozen=True)
class GatewaySettings:
    """The parsed ``APIGW_*`` settings of one crawler.

    Attributes:
        enabled: ``APIGW_ENABLED`` (default True).
        providers: the registry after ``APIGW_PROVIDERS`` overrides (and sandbox rewiring).
        credentials: provider -> field -> value; secret fields are :class:`Secret`.
        waterfall: provider order of the enrichment pipeline (``APIGW_WATERFALL``).
        input_fields: logical input name -> item field name (``APIGW_INPUT_FIELDS``).
        redis_url: ``APIGW_REDIS_URL``; None selects the embedded cache.
        cache_enabled: ``APIGW_CACHE_ENABLED`` (default True).
        cache_path: ``APIGW_CACHE_PATH``: embedded cache file (default under ``.scrapy/``).
        cache_namespace: ``APIGW_CACHE_NAMESPACE`` key prefix (default ``"apigw"``).
        cache_timeout: ``APIGW_CACHE_TIMEOUT`` seconds per cache command (default 1.0).
        user_agent: ``APIGW_USER_AGENT`` sent to providers other than MusicBrainz.
        sandbox: ``APIGW_SANDBOX``: route every provider to the provider sandbox.
        sandbox_url: ``APIGW_SANDBOX_URL``: an already running sandbox; None starts one in-process.
        sandbox_port: ``APIGW_SANDBOX_PORT`` for the in-process sandbox (0 = any free port).
        sandbox_speed: ``APIGW_SANDBOX_SPEED``: the sandbox's speed factor; client rates are
            multiplied and client time constants divided by it so both stay in proportion.
    """

    enabled: bool = True
    providers: Mapping[str, ProviderConfig] = field(default_factory=dict)
    credentials: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    waterfall: tuple[str, ...] = DEFAULT_WATERFALL
    input_fields: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_INPUT_FIELDS))
    redis_url: str | None = None
    cache_enabled: bool = True
    cache_path: str | None = None
    cache_namespace: str = "apigw"
    cache_timeout: float = 1.0
    user_agent: str = f"scrapy-apigw/{__version__}"
    sandbox: bool = False
    sandbox_url: str | None = None
    sandbox_port: int = 0
    sandbox_speed: float = 1.0

    @classmethod
    def from_settings(
        cls, settings: BaseSettings, environ: Mapping[str, str] | None = None
    ) -> GatewaySettings:
        """Parse ``APIGW_*`` settings; credentials fall back to *environ* (default os.environ).

        Raises:
            ConfigError: a malformed value (unknown provider field, bad rate, bad input map...).
        """
        env = os.environ if environ is None else environ
        sandbox = settings.getbool("APIGW_SANDBOX", False)
        speed = settings.getfloat("APIGW_SANDBOX_SPEED", 1.0)
        if speed <= 0:
            raise ConfigError("APIGW_SANDBOX_SPEED must be > 0")
        overrides = settings.getdict("APIGW_PROVIDERS")
        providers = build_registry(overrides)
        credentials = _read_credentials(settings, env, sandbox)
        waterfall = tuple(settings.getlist("APIGW_WATERFALL") or DEFAULT_WATERFALL)
        unknown = [p for p in waterfall if p not in providers]
        if unknown:
            raise ConfigError(f"APIGW_WATERFALL names unknown provider(s) {unknown}")
        input_fields = {**DEFAULT_INPUT_FIELDS, **settings.getdict("APIGW_INPUT_FIELDS")}
        bad = set(input_fields) - set(DEFAULT_INPUT_FIELDS)
        if bad:
            raise ConfigError(
                f"APIGW_INPUT_FIELDS keys must be among {sorted(DEFAULT_INPUT_FIELDS)}, "
                f"got {sorted(bad)}"
            )
        return cls(
            enabled=settings.getbool("APIGW_ENABLED", True),
            providers=providers,
            credentials=credentials,
            waterfall=waterfall,
            input_fields=input_fields,
            redis_url=settings.get("APIGW_REDIS_URL") or None,
            cache_enabled=settings.getbool("APIGW_CACHE_ENABLED", True),
            cache_path=settings.get("APIGW_CACHE_PATH") or None,
            cache_namespace=settings.get("APIGW_CACHE_NAMESPACE", "apigw"),
            cache_timeout=settings.getfloat("APIGW_CACHE_TIMEOUT", 1.0),
            user_agent=settings.get("APIGW_USER_AGENT") or f"scrapy-apigw/{__version__}",
            sandbox=sandbox,
            sandbox_url=(settings.get("APIGW_SANDBOX_URL") or "").rstrip("/") or None,
            sandbox_port=settings.getint("APIGW_SANDBOX_PORT", 0),
            sandbox_speed=speed,
        )

    def credential(self, provider: str, name: str) -> Any:
        """Return one credential field (a :class:`Secret` or a str), or None when missing."""
        return self.credentials.get(provider, {}).get(name)

    def missing_credentials(self, provider: str) -> list[str]:
        """Names of the settings a provider still needs (empty when it can be called)."""
        return [
            f"APIGW_{env_name}"
            for name, env_name in CREDENTIALS.get(provider, {}).items()
            if not self.credential(provider, name)
        ]

    def routed_to_sandbox(self, sandbox_url: str) -> GatewaySettings:
        """Return a copy whose providers point at the sandbox at *sandbox_url*.

        Base and token URLs are rewritten (domains cleared, so real hosts stay untouched) and time
        constants scaled by ``sandbox_speed``: rates multiplied; windows, open timeouts, backoff
        and request timeouts divided (Retry-After values the sandbox sends are used as given).
        """
        from scrapy_apigw.sandbox.config import BASE_PATHS

        speed = self.sandbox_speed
        providers = {}
        for name, config in self.providers.items():
            if name not in BASE_PATHS:
                # A provider the sandbox does not imitate (beatport, user-added) stays untouched.
                providers[name] = config
                continue
            token = BASE_PATHS.get(f"{name}_token")
            providers[name] = dataclasses.replace(
                config,
                base_url=sandbox_url + BASE_PATHS[name],
                token_url=sandbox_url + token if token else None,
                domains=(),
                rate=config.rate * speed,
                window=config.window / speed if config.window else None,
                open_timeout=config.open_timeout / speed,
                backoff_base=config.backoff_base / speed,
                backoff_cap=config.backoff_cap / speed,
            )
        return dataclasses.replace(self, providers=providers, sandbox_url=sandbox_url)


def _sandbox_credentials() -> dict[str, dict[str, str]]:
    """Credentials the sandbox accepts (they open nothing real)."""
    from scrapy_apigw.sandbox import config

    return {
        "spotify": {
            "client_id": config.DEFAULT_SPOTIFY_CLIENT_ID,
            "client_secret": config.DEFAULT_SPOTIFY_CLIENT_SECRET,
        },
        "musicbrainz": {"user_agent": SANDBOX_USER_AGENT},
        "discogs": {"token": config.DEFAULT_DISCOGS_TOKEN},
        "lastfm": {"api_key": config.DEFAULT_LASTFM_API_KEY},
    }


def _read_credentials(
    settings: BaseSettings, env: Mapping[str, str], sandbox: bool
) -> dict[str, dict[str, Any]]:
    defaults = _sandbox_credentials() if sandbox else {}
    result: dict[str, dict[str, Any]] = {}
    for provider, fields in CREDENTIALS.items():
        values: dict[str, Any] = {}
        for name, env_name in fields.items():
            value = settings.get(f"APIGW_{env_name}")
            if not value:
                # In sandbox mode real credentials from the environment are never sent anywhere.
                value = defaults.get(provider, {}).get(name) if sandbox else env.get(env_name)
            if not value:
                continue
            # The MusicBrainz User-Agent is an identity, not a secret; everything else is.
            values[name] = str(value) if name == "user_agent" else Secret(str(value))
        result[provider] = values
    return result
