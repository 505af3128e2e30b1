"""A provider as one declaration: :class:`ProviderSpec`, and how the registry finds them.

Each provider module under ``scrapy_apigw/providers/`` ends with ``PROVIDER = ProviderSpec(...)``:
its defaults (:class:`~scrapy_apigw.providers.registry.ProviderConfig`: hosts, rate, burst,
window, breaker, retry statuses, TTLs per data type), its credentials (:class:`Credential`:
setting names, environment variables, which are secret, what the sandbox accepts), how they go
on a request (``auth``), its client (request building, parsing, classification, shapes), its
batch rules and where the sandbox imitates it. Nothing else in the package names a provider.

The registry loads :data:`DEFAULT_PROVIDER_MODULES`, then the modules (or ``module:attribute``
paths to a :class:`ProviderSpec`) listed in ``APIGW_PROVIDER_MODULES``; a later spec of the
same name replaces an earlier one. A provider can also be declared in ``APIGW_PROVIDERS``
alone (see :func:`spec_from_settings`).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scrapy_apigw import validate as v
from scrapy_apigw.core.clock import Clock
from scrapy_apigw.validate import invalid

if TYPE_CHECKING:
    from scrapy_apigw.batching import BatchRule
    from scrapy_apigw.providers.auth import Auth
    from scrapy_apigw.providers.base import ProviderClient
    from scrapy_apigw.providers.registry import ProviderConfig

__all__ = [
    "DEFAULT_PROVIDER_MODULES",
    "SPEC_KEYS",
    "AuthContext",
    "ClientContext",
    "Credential",
    "ProviderSpec",
    "load_spec",
    "load_specs",
    "spec_from_settings",
]

#: The providers shipped with the package, in this order (the registry's order).
DEFAULT_PROVIDER_MODULES: tuple[str, ...] = (
    "scrapy_apigw.providers.spotify",
    "scrapy_apigw.providers.musicbrainz",
    "scrapy_apigw.providers.lastfm",
    "scrapy_apigw.providers.beatport",
    "scrapy_apigw.providers.discogs",
    "scrapy_apigw.providers.acousticbrainz",
)


@dataclass(frozen=True)
class Credential:
    """One credential a provider needs.

    Attributes:
        name: the field name the auth reads (``"client_id"``, ``"token"``).
        env: the environment variable it falls back to (``"SPOTIFY_CLIENT_ID"``); the setting
            is ``APIGW_<env>`` (PROVIDERS.md section 0).
        secret: True wraps the value in :class:`~scrapy_apigw.secrets.Secret` (never logged,
            never in stats, cache keys or feeds); False for an identity such as MusicBrainz's
            User-Agent.
        sandbox: the value the provider sandbox accepts, used in sandbox mode when the setting
            is not given (in sandbox mode the environment is never read); None: none.
    """

    name: str
    env: str
    secret: bool = True
    sandbox: str | None = None

    @property
    def setting(self) -> str:
        """The setting name, ``APIGW_<env>``."""
        return f"APIGW_{self.env}"


#: ``(headers, form body) -> (status, decoded JSON body)`` (see :mod:`scrapy_apigw.providers.auth`).
TokenPoster = Callable[[dict[str, str], bytes], Awaitable[tuple[int, Any]]]


@dataclass(frozen=True)
class AuthContext:
    """What an auth factory may use besides the credentials.

    Attributes:
        provider: the provider name.
        post: posts a form to the provider's ``token_url`` through the gateway (throttled and
            breaker-guarded like any call).
        clock: the gateway's monotonic clock, seconds.
    """

    provider: str
    post: TokenPoster
    clock: Clock


@dataclass(frozen=True)
class ClientContext:
    """What a client factory may use: the provider's options (``ProviderSpec.options`` read
    from the settings) and its configuration."""

    provider: str
    options: Mapping[str, Any]
    config: ProviderConfig


#: ``(credentials, context) -> Auth``; called only when every credential is present.
AuthFactory = Callable[[Mapping[str, Any], AuthContext], "Auth"]
#: ``(context) -> client``; one client per crawl (clients remember per-crawl facts).
ClientFactory = Callable[[ClientContext], "ProviderClient"]
#: ``(settings) -> options``: reads the provider's own settings (each one unconditionally, so
#: that :func:`scrapy_apigw.settings.known_settings` finds it).
OptionsReader = Callable[[Any], Mapping[str, Any]]


@dataclass(frozen=True)
class ProviderSpec:
    """Everything the package knows about one provider.

    Attributes:
        name: registry key (``"spotify"``).
        config: the provider's defaults.
        client: builds its waterfall client; None for a provider the middlewares only pace.
        credentials: what it needs (empty: nothing, e.g. AcousticBrainz).
        auth: builds its :class:`~scrapy_apigw.providers.auth.Auth` from the credentials;
            None sends none.
        credential_problem: ``(credentials) -> reason or None``: why present credentials would
            be refused (MusicBrainz: an anonymous User-Agent); the provider is then skipped.
        batch_rules: the batch rules of its endpoints (:mod:`scrapy_apigw.batching`).
        sandbox_path: where the sandbox imitates its API, below the sandbox's URL
            (``"/spotify/v1"``); None: the sandbox does not imitate it (its URL stays as is
            in sandbox mode).
        sandbox_token_path: the sandbox's token endpoint for it, if any.
        quota_header: the prefix of the headers announcing its quota (lower case,
            ``"x-discogs-ratelimit"``), or None.
        options: reads its own settings into the options its client gets.
        configure: ``(config, options) -> config``: adjusts the registry entry to the
            options (AcousticBrainz: a mirror URL becomes its ``base_url``).
        unread_keys: members of its answers' JSON objects that its client never reads,
            removed at any depth from each ok answer as it arrives, before it is read or
            cached (:func:`~scrapy_apigw.core.payload.drop_keys`): the cached answer is
            smaller and a cache hit parses less. Spotify's ``available_markets``.
    """

    name: str
    config: ProviderConfig
    client: ClientFactory | None = None
    credentials: tuple[Credential, ...] = ()
    auth: AuthFactory | None = None
    credential_problem: Callable[[Mapping[str, Any]], str | None] | None = None
    batch_rules: tuple[BatchRule, ...] = ()
    sandbox_path: str | None = None
    sandbox_token_path: str | None = None
    quota_header: str | None = None
    options: OptionsReader | None = None
    configure: Callable[[ProviderConfig, Mapping[str, Any]], ProviderConfig] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    unread_keys: frozenset[str] = frozenset()

    def build_client(self, options: Mapping[str, Any] | None = None,
                     config: ProviderConfig | None = None) -> ProviderClient | None:  # fmt: skip
        """A fresh client, or None when the spec has none."""
        if self.client is None:
            return None
        return self.client(ClientContext(self.name, options or {}, config or self.config))


def _import(path: str, where: str) -> Any:
    """The object at *path*: ``"package.module"`` or ``"package.module:attribute"``."""
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise invalid(where, path, f"cannot import {module_name!r}: {exc}") from None
    if not attribute:
        return module
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise invalid(where, path, f"{module_name!r} has no attribute {attribute!r}") from None


def load_spec(path: str, where: str = "APIGW_PROVIDER_MODULES") -> list[ProviderSpec]:
    """The specs at *path*: a module's ``PROVIDER`` (or ``PROVIDERS``, a list), or a
    ``module:attribute`` naming a :class:`ProviderSpec`, a list of them, or a callable
    returning either.

    Raises:
        ConfigError: *path* cannot be imported or names no spec; the message names *where*.
    """
    found = _import(path, where)
    if ":" not in path:
        found = getattr(found, "PROVIDERS", None) or getattr(found, "PROVIDER", None)
    elif callable(found) and not isinstance(found, ProviderSpec):
        found = found()
    specs = [found] if isinstance(found, ProviderSpec) else found
    if not isinstance(specs, list | tuple) or not specs:
        raise invalid(where, path, "expected a module with PROVIDER = ProviderSpec(...)")
    for spec in specs:
        if not isinstance(spec, ProviderSpec):
            raise invalid(where, path, f"not a ProviderSpec: {spec!r}")
    return list(specs)


_LOADED: dict[tuple[str, ...], dict[str, ProviderSpec]] = {}


def load_specs(modules: Sequence[str] = (), where: str = "APIGW_PROVIDER_MODULES") -> dict[
    str, ProviderSpec
]:  # fmt: skip
    """The specs of :data:`DEFAULT_PROVIDER_MODULES` then of *modules*, by name (a later spec
    replaces an earlier one of the same name). Cached per list of modules.

    Raises:
        ConfigError: a module cannot be imported or declares no spec.
    """
    key = tuple(modules)
    cached = _LOADED.get(key)
    if cached is not None:
        return dict(cached)
    specs: dict[str, ProviderSpec] = {}
    for path in (*DEFAULT_PROVIDER_MODULES, *modules):
        for spec in load_spec(path, where):
            specs[spec.name] = spec
    _LOADED[key] = specs
    return dict(specs)


#: Keys of an ``APIGW_PROVIDERS`` entry that declare a provider rather than tune its
#: :class:`~scrapy_apigw.providers.registry.ProviderConfig`.
SPEC_KEYS = frozenset({"client", "credentials", "auth"})


def _credentials(where: str, value: Any) -> tuple[Credential, ...]:
    """``{"token": "TIDAL_TOKEN"}`` or ``{"token": {"env": "TIDAL_TOKEN", "secret": True}}``."""
    result = []
    for name, entry in v.mapping(where, value).items():
        at = v.item(where, name)
        if isinstance(entry, str):
            entry = {"env": entry}
        if not isinstance(entry, Mapping) or not isinstance(entry.get("env"), str):
            raise invalid(at, entry, "expected an environment variable name or {'env': NAME}")
        env = entry["env"].strip()
        if not env or not env.replace("_", "").isalnum():
            raise invalid(at, entry["env"], "expected a name of letters, digits and _")
        result.append(Credential(str(name), env.upper(), v.boolean(at, entry.get("secret", True))))
    return tuple(result)


def _auth_factory(where: str, value: Any, names: Sequence[str]) -> AuthFactory | None:
    """``{"header": "Authorization", "template": "Bearer {token}"}`` or
    ``{"query": "api_key", "credential": "key"}`` (the template names credentials)."""
    from scrapy_apigw.providers.auth import QueryKeyAuth, TemplateHeaderAuth

    if value is None:
        return None
    entry = v.mapping(where, value)
    if "header" in entry:
        header = v.text(v.item(where, "header"), entry["header"])
        default = "{" + names[0] + "}" if names else ""
        template = v.text(v.item(where, "template"), entry.get("template", default))
        try:
            template.format(**{n: "" for n in names})
        except (KeyError, IndexError, ValueError) as exc:
            raise invalid(v.item(where, "template"), template, f"unknown field {exc}") from None

        def header_auth(creds: Mapping[str, Any], ctx: AuthContext) -> Auth:
            return TemplateHeaderAuth(header, template, creds)

        return header_auth
    if "query" in entry:
        param = v.text(v.item(where, "query"), entry["query"])
        first = names[0] if names else ""
        credential = v.text(v.item(where, "credential"), entry.get("credential", first))
        if credential not in names:
            raise invalid(v.item(where, "credential"), credential, f"known: {list(names)}")

        def query_auth(creds: Mapping[str, Any], ctx: AuthContext) -> Auth:
            return QueryKeyAuth(param, creds[credential])

        return query_auth
    raise invalid(where, value, "expected {'header': ..., 'template': ...} or {'query': ...}")


def _client_factory(where: str, path: Any) -> ClientFactory:
    """A client class (or factory) by ``module:attribute`` path; called with no argument, or
    with the :class:`ClientContext` when it takes one."""
    target = _import(v.text(where, path), where) if isinstance(path, str) else path
    if not callable(target):
        raise invalid(where, path, "expected a class or callable")

    def build(ctx: ClientContext) -> ProviderClient:
        try:
            return target(ctx)
        except TypeError:
            return target()

    return build


def spec_from_settings(
    name: str, config: ProviderConfig, values: Mapping[str, Any], base: ProviderSpec | None,
    setting: str = "APIGW_PROVIDERS",
) -> ProviderSpec:  # fmt: skip
    """The spec of an ``APIGW_PROVIDERS[name]`` entry: *base* (or a new spec) with the
    entry's ``client`` (``"module:Class"``), ``credentials`` and ``auth`` (see
    :func:`_credentials`, :func:`_auth_factory`) and its *config*.

    Raises:
        ConfigError: an invalid declaration; the message names the setting and the field.
    """
    import dataclasses

    where = v.item(setting, name)
    spec = base or ProviderSpec(name=name, config=config)
    changes: dict[str, Any] = {"config": config}
    if "client" in values:
        changes["client"] = _client_factory(v.item(where, "client"), values["client"])
    if "credentials" in values:
        changes["credentials"] = _credentials(v.item(where, "credentials"), values["credentials"])
    if "auth" in values:
        names = [c.name for c in changes.get("credentials", spec.credentials)]
        changes["auth"] = _auth_factory(v.item(where, "auth"), values["auth"], names)
    return dataclasses.replace(spec, **changes)
