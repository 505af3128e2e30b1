"""All ``APIGW_*`` settings, parsed once into a :class:`GatewaySettings` (unit-tested).

See ``docs/settings.md`` for the reference table.
"""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import functools
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scrapy.settings import BaseSettings

from scrapy_apigw import __version__
from scrapy_apigw import validate as v
from scrapy_apigw.cache.resilient import DEFAULT_STALE_TTL
from scrapy_apigw.core.confidence import DEFAULT_MIN_CONFIDENCE
from scrapy_apigw.core.useragent import user_agent_problem
from scrapy_apigw.deadletters.config import DeadLetterSettings
from scrapy_apigw.exceptions import ConfigError
from scrapy_apigw.providers.musicbrainz import SANDBOX_USER_AGENT
from scrapy_apigw.providers.registry import ProviderConfig, build_registry
from scrapy_apigw.providers.spec import SPEC_KEYS, ProviderSpec, load_specs, spec_from_settings
from scrapy_apigw.sandbox.config import DEFAULT_DECOYS, DEFAULT_MESSY_SITE
from scrapy_apigw.secrets import Secret
from scrapy_apigw.validate import read

logger = logging.getLogger(__name__)

__all__ = ["SANDBOX_USER_AGENT", "GatewaySettings", "known_settings", "settings_at_start"]

DEFAULT_WATERFALL = ("spotify", "musicbrainz", "discogs", "lastfm")
#: ``APIGW_ITEM_TIMEOUT`` default, seconds: a last resort well above the ~200 s an item can
#: spend queued behind 1 req/s providers with Scrapy's ``CONCURRENT_ITEMS = 100``.
DEFAULT_ITEM_TIMEOUT = 600.0
#: ``APIGW_SHUTDOWN_TIMEOUT`` default, seconds.
DEFAULT_SHUTDOWN_TIMEOUT = 5.0
#: ``APIGW_FLEET_HEARTBEAT`` default, seconds a process counts as live after its heartbeat.
DEFAULT_FLEET_HEARTBEAT = 15.0
#: ``APIGW_REFUSAL_TTL`` default, seconds (one day): how long a refusal is remembered.
DEFAULT_REFUSAL_TTL = 86400.0
#: Seconds a batch of single-ID lookups stays open after its first lookup (docs/design.md,
#: "Batching": at the quota floor lookups arrive at the slowest provider's pace, so the window
#: must span several of its calls for batches to fill).
DEFAULT_BATCH_WINDOW = 1.0
#: ``APIGW_PROGRESS_INTERVAL`` default, seconds between two progress lines.
DEFAULT_PROGRESS_INTERVAL = 30.0
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
        pipeline_enabled: ``APIGW_PIPELINE_ENABLED`` (default True): the add-on adds the pipeline.
        providers: the registry after ``APIGW_PROVIDERS`` overrides (and sandbox rewiring).
        specs: provider -> its declaration (:class:`~scrapy_apigw.providers.spec.ProviderSpec`):
            the package's providers, those of ``APIGW_PROVIDER_MODULES`` and those declared in
            ``APIGW_PROVIDERS``.
        options: provider -> its own settings, as its spec read them (``ProviderSpec.options``,
            e.g. AcousticBrainz's ``APIGW_ACOUSTICBRAINZ_DUMPS``).
        field_sources: ``APIGW_FIELD_SOURCES``: output field -> providers in priority order
            (the first that gave the field wins; providers not listed follow in waterfall
            order); a field not listed takes the waterfall order.
        credentials: provider -> field -> value; secret fields are :class:`Secret`.
        waterfall: provider order of the enrichment pipeline (``APIGW_WATERFALL``).
        input_fields: logical input name -> item field name (``APIGW_INPUT_FIELDS``).
        redis_url: ``APIGW_REDIS_URL``; None selects the embedded cache.
        cache_enabled: ``APIGW_CACHE_ENABLED`` (default True).
        cache_path: ``APIGW_CACHE_PATH``: embedded cache file (default under ``.scrapy/``).
        cache_namespace: ``APIGW_CACHE_NAMESPACE`` key prefix (default ``"apigw"``).
        cache_timeout: ``APIGW_CACHE_TIMEOUT`` seconds per cache command (default 1.0).
        user_agent: ``APIGW_USER_AGENT`` sent to providers other than MusicBrainz (and to
            MusicBrainz too when no MusicBrainz User-Agent is set and this one names a contact).
        sandbox: ``APIGW_SANDBOX``: route every provider to the provider sandbox.
        sandbox_url: ``APIGW_SANDBOX_URL``: an already running sandbox; None starts one in-process.
        sandbox_port: ``APIGW_SANDBOX_PORT`` for the in-process sandbox (0 = any free port).
        sandbox_speed: ``APIGW_SANDBOX_SPEED``: the sandbox's speed factor; client rates are
            multiplied and client time constants divided by it so both stay in proportion.
        sandbox_decoys: ``APIGW_SANDBOX_DECOYS`` (0..1, default
            :data:`~scrapy_apigw.sandbox.config.DEFAULT_DECOYS`, 0.3): share of the in-process
            sandbox's catalog tracks that get decoys (``SandboxConfig.decoys``); 0 serves the
            catalog alone. Not used with ``APIGW_SANDBOX_URL`` (that sandbox has its own).
        sandbox_messy_site: ``APIGW_SANDBOX_MESSY_SITE`` (0..1, default
            :data:`~scrapy_apigw.sandbox.config.DEFAULT_MESSY_SITE`, 0.3): share of the
            in-process sandbox's tracklist rows written the DJ-tracklist way
            (``SandboxConfig.messy_site``).
        item_timeout: ``APIGW_ITEM_TIMEOUT``: seconds one item's enrichment may take, from its
            arrival at the pipeline; then its pending calls are cancelled and it is emitted
            with what it has (0 = no deadline).
        shutdown_timeout: ``APIGW_SHUTDOWN_TIMEOUT``: once the engine starts closing, seconds
            the provider calls already in flight may still take before they are cancelled.
        shared_limits: ``APIGW_SHARED_LIMITS``: share every provider's rate, pauses and window
            quota with the fleet through Redis (default: on when ``APIGW_REDIS_URL`` is set).
        fleet: ``APIGW_FLEET``: processes naming the same fleet share limits (default: the
            cache namespace).
        fleet_heartbeat: ``APIGW_FLEET_HEARTBEAT``: seconds a process counts as live after its
            last heartbeat (it beats every third of that); also the pace of Redis probes while
            falling back to the local share.
        refusal_ttl: ``APIGW_REFUSAL_TTL``: seconds a refusal (a 403 refusing the app an
            endpoint, refused credentials) is remembered in the cache, so later crawls do not
            ask again (0 = remember for the crawl only).
        stale_ttl: ``APIGW_STALE_TTL``: seconds an answer is kept in the cache past its TTL,
            to be served (stale) when its provider fails (0 = never serve stale).
        batch_window: ``APIGW_BATCH_WINDOW``: seconds a batch of single-ID lookups (Spotify
            audio features and tracks, MusicBrainz ISRCs) collects after its first lookup
            before it is sent (sooner when full); 0 sends every lookup alone.
        progress_interval: ``APIGW_PROGRESS_INTERVAL``: seconds between two progress lines
            (items, queued calls per provider, ETA); 0 = no progress line.
        report_path: ``APIGW_REPORT_PATH``: file the coverage report is written to as JSON at
            the end of the crawl (``%(name)s``: the spider's name, ``%(time)s``: the UTC start
            time); None writes none.
        metrics_port: ``APIGW_METRICS_PORT``: the crawl serves ``/metrics`` (Prometheus) on
            this TCP port (0 = any free port, logged); None (default) serves nothing.
        metrics_host: ``APIGW_METRICS_HOST``: the address it listens on (default
            ``127.0.0.1``: this machine only).
        min_match_confidence: ``APIGW_MIN_MATCH_CONFIDENCE`` (0..1, default 0.8): a provider's
            best candidate below this confidence is "not found" (see
            :mod:`scrapy_apigw.core.confidence`).
        admin_token: ``APIGW_ADMIN_TOKEN`` (else the environment variable of that name): the
            bearer token every ``/admin`` request needs; None turns ``/admin`` off.
        deadletters: the ``APIGW_DEADLETTER_*`` settings (dead letters and their replay).
    """

    enabled: bool = True
    pipeline_enabled: bool = True
    providers: Mapping[str, ProviderConfig] = field(default_factory=dict)
    specs: Mapping[str, ProviderSpec] = field(default_factory=load_specs)
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    field_sources: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
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
    sandbox_decoys: float = DEFAULT_DECOYS
    sandbox_messy_site: float = DEFAULT_MESSY_SITE
    item_timeout: float = DEFAULT_ITEM_TIMEOUT
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
    shared_limits: bool = False
    fleet: str = "apigw"
    fleet_heartbeat: float = DEFAULT_FLEET_HEARTBEAT
    refusal_ttl: float = DEFAULT_REFUSAL_TTL
    stale_ttl: float = DEFAULT_STALE_TTL
    batch_window: float = DEFAULT_BATCH_WINDOW
    progress_interval: float = DEFAULT_PROGRESS_INTERVAL
    report_path: str | None = None
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    admin_token: Secret | None = None
    deadletters: DeadLetterSettings = field(default_factory=DeadLetterSettings)
    min_match_confidence: float = DEFAULT_MIN_CONFIDENCE

    def __post_init__(self) -> None:
        for name, value in (
            ("APIGW_ITEM_TIMEOUT", self.item_timeout),
            ("APIGW_SHUTDOWN_TIMEOUT", self.shutdown_timeout),
        ):
            if not 0 <= value < float("inf"):
                raise ConfigError(f"{name} must be a number of seconds >= 0, got {value!r}")
        if not 0 < self.fleet_heartbeat < float("inf"):
            raise ConfigError(
                "APIGW_FLEET_HEARTBEAT must be a number of seconds > 0, "
                f"got {self.fleet_heartbeat!r}"
            )
        if self.shared_limits and not self.redis_url:
            raise ConfigError("APIGW_SHARED_LIMITS is on but APIGW_REDIS_URL is not set")
        if self.shared_limits and self.redis_url:
            from scrapy_apigw.fleet.keys import processes_key

            try:
                processes_key(self.cache_namespace, self.fleet)
            except ConfigError as exc:
                raise ConfigError(f"APIGW_FLEET / APIGW_CACHE_NAMESPACE: {exc}") from None

    @classmethod
    def from_settings(
        cls, settings: BaseSettings, environ: Mapping[str, str] | None = None
    ) -> GatewaySettings:
        """Parse ``APIGW_*`` settings; credentials fall back to *environ* (default os.environ).

        Every ``APIGW_*`` value is checked here, once, at crawler start (see
        :mod:`scrapy_apigw.validate`); a new setting is one ``read(...)`` line.

        Raises:
            ConfigError: a malformed value; the one-line message names the setting (and the
                field) and the value, never a credential's value.
        """
        env = os.environ if environ is None else environ
        sandbox = read(settings, "APIGW_SANDBOX", v.boolean, False)
        specs, providers, options = _read_providers(settings)
        redis = read(settings, "APIGW_REDIS_URL", redis_url, None)
        namespace = read(settings, "APIGW_CACHE_NAMESPACE", v.text, "apigw")
        return cls(
            enabled=read(settings, "APIGW_ENABLED", v.boolean, True),
            pipeline_enabled=read(settings, "APIGW_PIPELINE_ENABLED", v.boolean, True),
            providers=providers,
            specs=specs,
            options=options,
            field_sources=_read_field_sources(settings, providers),
            credentials=_read_credentials(settings, env, sandbox, specs),
            waterfall=_read_waterfall(settings, providers),
            input_fields=_read_input_fields(settings),
            redis_url=redis,
            cache_enabled=read(settings, "APIGW_CACHE_ENABLED", v.boolean, True),
            cache_path=read(settings, "APIGW_CACHE_PATH", v.optional(v.text), None),
            cache_namespace=namespace,
            cache_timeout=read(settings, "APIGW_CACHE_TIMEOUT", v.number(above=0, unit="s"), 1.0),
            user_agent=read(settings, "APIGW_USER_AGENT", v.optional(v.text), None)
            or f"scrapy-apigw/{__version__}",
            sandbox=sandbox,
            sandbox_url=read(settings, "APIGW_SANDBOX_URL", v.optional(v.http_url), None),
            sandbox_port=read(settings, "APIGW_SANDBOX_PORT", v.whole(minimum=0, maximum=65535), 0),
            sandbox_speed=read(settings, "APIGW_SANDBOX_SPEED", v.number(above=0), 1.0),
            sandbox_decoys=read(
                settings, "APIGW_SANDBOX_DECOYS", v.number(minimum=0, maximum=1), DEFAULT_DECOYS
            ),
            sandbox_messy_site=read(
                settings,
                "APIGW_SANDBOX_MESSY_SITE",
                v.number(minimum=0, maximum=1),
                DEFAULT_MESSY_SITE,
            ),
            item_timeout=read(
                settings, "APIGW_ITEM_TIMEOUT", v.number(minimum=0, unit="s"), DEFAULT_ITEM_TIMEOUT
            ),
            shutdown_timeout=read(
                settings,
                "APIGW_SHUTDOWN_TIMEOUT",
                v.number(minimum=0, unit="s"),
                DEFAULT_SHUTDOWN_TIMEOUT,
            ),
            shared_limits=read(settings, "APIGW_SHARED_LIMITS", v.boolean, redis is not None),
            fleet=read(settings, "APIGW_FLEET", v.optional(v.text), None) or namespace,
            fleet_heartbeat=read(
                settings,
                "APIGW_FLEET_HEARTBEAT",
                v.number(above=0, unit="s"),
                DEFAULT_FLEET_HEARTBEAT,
            ),
            refusal_ttl=read(
                settings, "APIGW_REFUSAL_TTL", v.number(minimum=0, unit="s"), DEFAULT_REFUSAL_TTL
            ),
            stale_ttl=read(
                settings, "APIGW_STALE_TTL", v.number(minimum=0, unit="s"), DEFAULT_STALE_TTL
            ),
            batch_window=read(
                settings,
                "APIGW_BATCH_WINDOW",
                v.number(minimum=0, below=60, unit="s"),
                DEFAULT_BATCH_WINDOW,
            ),
            progress_interval=read(
                settings,
                "APIGW_PROGRESS_INTERVAL",
                v.number(minimum=0, unit="s"),
                DEFAULT_PROGRESS_INTERVAL,
            ),
            report_path=read(settings, "APIGW_REPORT_PATH", v.optional(v.text), None),
            metrics_port=read(
                settings, "APIGW_METRICS_PORT", v.optional(v.whole(minimum=0, maximum=65535)), None
            ),
            metrics_host=read(settings, "APIGW_METRICS_HOST", v.text, "127.0.0.1"),
            admin_token=_read_admin_token(settings, env),
            deadletters=DeadLetterSettings.from_settings(settings),
            min_match_confidence=read(
                settings,
                "APIGW_MIN_MATCH_CONFIDENCE",
                v.number(minimum=0, maximum=1),
                DEFAULT_MIN_CONFIDENCE,
            ),
        )

    def credential(self, provider: str, name: str) -> Any:
        """Return one credential field (a :class:`Secret` or a str), or None when missing."""
        return self.credentials.get(provider, {}).get(name)

    def credential_problem(self, provider: str) -> str | None:
        """Why a provider's credentials, though present, would be refused; None when fine.

        The provider's spec says (``ProviderSpec.credential_problem``); of the package's
        providers only MusicBrainz has such a rule: its User-Agent must name the application
        and a contact (:func:`scrapy_apigw.providers.musicbrainz.user_agent_refusal`). The
        message names the setting, never a secret.
        """
        spec = self.specs.get(provider)
        if spec is None or spec.credential_problem is None:
            return None
        return spec.credential_problem(self.credentials.get(provider, {}))

    def missing_credentials(self, provider: str) -> list[str]:
        """Names of the settings a provider still needs (empty when it can be called)."""
        spec = self.specs.get(provider)
        return [
            credential.setting
            for credential in (spec.credentials if spec is not None else ())
            if not self.credential(provider, credential.name)
        ]

    def routed_to_sandbox(self, sandbox_url: str) -> GatewaySettings:
        """Return a copy whose providers point at the sandbox at *sandbox_url*.

        Base and token URLs are rewritten (domains cleared, so real hosts stay untouched) and time
        constants scaled by ``sandbox_speed``: rates multiplied; windows, open timeouts, backoff,
        request timeouts and the batch window divided (Retry-After values the sandbox sends are
        used as given).
        """
        speed = self.sandbox_speed
        providers = {}
        for name, config in self.providers.items():
            spec = self.specs.get(name)
            if (
                spec is None
                or spec.sandbox_path is None
                or self.options.get(name, {}).get("base_url")
            ):
                # A provider the sandbox does not imitate (user-added), or given its own URL in
                # its options (an AcousticBrainz dumps mirror), stays untouched.
                providers[name] = config
                continue
            token = spec.sandbox_token_path
            providers[name] = dataclasses.replace(
                config,
                base_url=sandbox_url + spec.sandbox_path,
                token_url=sandbox_url + token if token else None,
                domains=(),
                rate=config.rate * speed,
                window=config.window / speed if config.window else None,
                open_timeout=config.open_timeout / speed,
                backoff_base=config.backoff_base / speed,
                backoff_cap=config.backoff_cap / speed,
            )
        return dataclasses.replace(
            self,
            providers=providers,
            sandbox_url=sandbox_url,
            batch_window=self.batch_window / speed,
        )


def settings_at_start(settings: BaseSettings) -> GatewaySettings | None:
    """Parse a starting crawler's settings (:meth:`GatewaySettings.from_settings`); None when
    ``APIGW_ENABLED`` is False (nothing else is read then).

    The add-on calls it from ``update_settings`` and :meth:`Gateway.for_crawler` from the
    components' ``from_crawler``, so a bad value stops the crawl before it starts, with one line.

    Raises:
        ConfigError: an invalid value. It is logged first as one ERROR line,
            ``apigw: invalid setting: <setting> = <value>: <what was expected>``; see
            :func:`_retrieve_when_done` for why no traceback follows under ``scrapy crawl``.
    """
    try:
        if not read(settings, "APIGW_ENABLED", v.boolean, True):
            return None
        _warn_unknown_settings(settings)
        return GatewaySettings.from_settings(settings)
    except ConfigError as error:
        logger.error("apigw: invalid setting: %s", error)
        _retrieve_when_done(error)
        raise


class _NameRecorder(BaseSettings):
    """Empty settings that remember every name looked up (however it is read: ``get``,
    ``getbool``..., all go through ``__getitem__``)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def __getitem__(self, opt_name: str) -> Any:
        self.names.add(opt_name)
        return super().__getitem__(opt_name)


@functools.cache
def known_settings() -> frozenset[str]:
    """Every ``APIGW_*`` setting this package reads, e.g. ``"APIGW_FLEET_HEARTBEAT"``.

    Not a second list kept by hand: the names :func:`settings_at_start` asks for when it
    parses empty settings (every ``read(...)`` runs then, each with its default). A setting
    read only under some condition must be read unconditionally to be known;
    ``tests/unit/test_unknown_settings.py`` checks that this set and ``docs/settings.md``
    name the same settings.
    """
    recorder = _NameRecorder()
    read(recorder, "APIGW_ENABLED", v.boolean, True)
    GatewaySettings.from_settings(recorder, environ={})
    return frozenset(name for name in recorder.names if name.startswith("APIGW_"))


def unknown_settings(settings: BaseSettings) -> list[tuple[str, str | None]]:
    """The ``APIGW_*`` settings in *settings* that this package does not read (a misspelt
    name is otherwise silently ignored), each with the closest known name or None.

    Returns:
        ``[(name, closest known name or None)]`` in name order, e.g.
        ``[("APIGW_FLEET_HEARTBEET", "APIGW_FLEET_HEARTBEAT")]``.
    """
    known = known_settings() | _declared_settings(settings)
    # Compared without the common prefix, which would make every name look alike.
    suffixes = {name.removeprefix("APIGW_"): name for name in known}
    result = []
    for name in sorted(n for n in settings if n.startswith("APIGW_") and n not in known):
        close = difflib.get_close_matches(name.removeprefix("APIGW_"), suffixes, n=1)
        result.append((name, suffixes[close[0]] if close else None))
    return result


def _declared_settings(settings: BaseSettings) -> frozenset[str]:
    """The credential settings of the providers *settings* declare (``APIGW_PROVIDER_MODULES``,
    ``APIGW_PROVIDERS``): known too. Empty when those are invalid (reported when parsed)."""
    try:
        specs, _, _ = _read_providers(settings)
    except ConfigError:
        return frozenset()
    return frozenset(c.setting for spec in specs.values() for c in spec.credentials)


def _warn_unknown_settings(settings: BaseSettings) -> None:
    # settings_at_start runs twice per crawler with the add-on (update_settings, then the
    # components' from_crawler) on the same object: warn once.
    if getattr(settings, "_apigw_names_checked", False):
        return
    settings._apigw_names_checked = True  # type: ignore[attr-defined]
    for name, closest in unknown_settings(settings):
        hint = f"did you mean {closest}?" if closest else "scrapy-apigw does not read it"
        logger.warning("apigw: unknown setting %s (%s)", name, hint)


def _retrieve_when_done(error: ConfigError) -> None:
    """Mark *error* as seen once the asyncio task running the crawl ends with it.

    ``scrapy crawl`` (``AsyncCrawlerProcess``) runs each crawl as an asyncio task, sets its exit
    code to 1 when the task fails, but never retrieves the exception: asyncio would then log
    ``Task exception was never retrieved`` with the whole traceback of an error already reported
    in one line. Whoever awaits the task (``AsyncCrawlerRunner`` users, tests) still gets it.
    """
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running event loop: nothing will log it twice
        return
    if task is None:
        return

    def retrieve(done: asyncio.Future[Any]) -> None:
        if done.cancelled():
            return
        exc = done.exception()
        if exc is not None and exc is not error:
            # Another failure: report it as asyncio would have.
            done.get_loop().call_exception_handler(
                {"message": "Task exception was never retrieved", "exception": exc, "future": done}
            )

    task.add_done_callback(retrieve)


def _read_providers(
    settings: BaseSettings,
) -> tuple[dict[str, ProviderSpec], dict[str, ProviderConfig], dict[str, Mapping[str, Any]]]:
    """The provider declarations, the registry and each provider's options.

    Specs: the package's, then ``APIGW_PROVIDER_MODULES``'s, then the entries of
    ``APIGW_PROVIDERS`` that declare a ``client``, ``credentials`` or ``auth``. The registry:
    the specs' defaults with ``APIGW_PROVIDERS`` applied, then each spec's ``configure``.
    """
    modules: list[str] = read(settings, "APIGW_PROVIDER_MODULES", v.text_list, [])
    specs = load_specs(modules)
    overrides: dict[Any, Any] = read(settings, "APIGW_PROVIDERS", v.mapping, {})
    providers = build_registry(overrides, defaults={n: s.config for n, s in specs.items()})
    for name, values in overrides.items():
        if isinstance(values, Mapping) and name in providers and SPEC_KEYS & set(values):
            specs[name] = spec_from_settings(name, providers[name], values, specs.get(name))
    options: dict[str, Mapping[str, Any]] = {}
    for name, spec in specs.items():
        if spec.options is not None:
            options[name] = spec.options(settings)
        if spec.configure is not None and name in providers:
            providers[name] = spec.configure(providers[name], options.get(name, {}))
    return specs, providers, options


def _read_field_sources(
    settings: BaseSettings, providers: Mapping[str, Any]
) -> dict[str, tuple[str, ...]]:
    """``APIGW_FIELD_SOURCES``: output field -> provider names (each a known provider)."""
    given: dict[Any, Any] = read(settings, "APIGW_FIELD_SOURCES", v.mapping, {})
    result: dict[str, tuple[str, ...]] = {}
    for name, sources in given.items():
        where = v.item("APIGW_FIELD_SOURCES", name)
        if not isinstance(name, str) or not name:
            raise v.invalid(where, sources, "a field name must be a non-empty string")
        order = tuple(dict.fromkeys(v.text_list(where, sources)))
        for provider in order:
            if provider not in providers:
                raise v.invalid(
                    where, list(order), f"unknown provider {provider!r}; known: {sorted(providers)}"
                )
        result[name] = order
    return result


def _read_credentials(
    settings: BaseSettings,
    env: Mapping[str, str],
    sandbox: bool,
    specs: Mapping[str, ProviderSpec] | None = None,
) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {}
    for provider, spec in (specs if specs is not None else load_specs()).items():
        values: dict[str, Any] = {}
        for credential in spec.credentials:
            value = read(settings, credential.setting, v.credential, None)
            if not value:
                # In sandbox mode real credentials from the environment are never sent anywhere.
                value = credential.sandbox if sandbox else env.get(credential.env)
            if not value:
                continue
            values[credential.name] = Secret(value) if credential.secret else value
        result[provider] = values
    if not sandbox and "musicbrainz" in result and not result["musicbrainz"]:
        # An APIGW_USER_AGENT that names an application and a contact suits MusicBrainz too.
        agent = read(settings, "APIGW_USER_AGENT", v.optional(v.text), None)
        if agent and user_agent_problem(agent) is None:
            result["musicbrainz"] = {"user_agent": agent}
    return result


def _read_admin_token(settings: BaseSettings, env: Mapping[str, str]) -> Secret | None:
    """``APIGW_ADMIN_TOKEN``, else the environment variable of the same name (the way to keep
    it out of Scrapyd's job arguments); None (``/admin`` off) when neither is set."""
    value = read(settings, "APIGW_ADMIN_TOKEN", v.credential, None) or env.get("APIGW_ADMIN_TOKEN")
    return Secret(value) if value else None


def _read_waterfall(settings: BaseSettings, providers: Mapping[str, Any]) -> tuple[str, ...]:
    waterfall = tuple(read(settings, "APIGW_WATERFALL", v.text_list, []) or DEFAULT_WATERFALL)
    for name in waterfall:
        if name not in providers:
            raise v.invalid(
                "APIGW_WATERFALL",
                list(waterfall),
                f"unknown provider {name!r}; known: {sorted(providers)}",
            )
    return waterfall


def _read_input_fields(settings: BaseSettings) -> dict[str, str]:
    given: dict[str, str] = read(settings, "APIGW_INPUT_FIELDS", v.text_map, {})
    for key, value in given.items():
        if key not in DEFAULT_INPUT_FIELDS:
            raise v.invalid(
                v.item("APIGW_INPUT_FIELDS", key),
                value,
                f"unknown input; known: {sorted(DEFAULT_INPUT_FIELDS)}",
            )
    return {**DEFAULT_INPUT_FIELDS, **given}


def redis_url(where: str, value: Any) -> str | None:
    """Reader of ``APIGW_REDIS_URL``: a URL :func:`~scrapy_apigw.cache.redis.parse_redis_url`
    accepts, or None (``""``) for the embedded cache. An error shows the URL without password."""
    from scrapy_apigw.cache.redis import parse_redis_url

    url = v.optional(v.text)(where, value)
    if url is None:
        return None
    try:
        parse_redis_url(url)
    except ConfigError as exc:
        raise v.invalid(where, v.redacted_url(url), str(exc)) from None
    return url
