"""Which client serves which provider, and how each provider's answers are classified.

Read from the providers' declarations (:class:`~scrapy_apigw.providers.spec.ProviderSpec`):
*specs* is a crawl's (``GatewaySettings.specs``), else the package's own providers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from scrapy_apigw.batching import BatchRule
from scrapy_apigw.core.outcome import Outcome, classify_status
from scrapy_apigw.providers.base import ApiCall, ProviderClient
from scrapy_apigw.providers.registry import ProviderConfig
from scrapy_apigw.providers.spec import ProviderSpec, load_specs

__all__ = ["batch_rules_for", "build_client", "classifier_for", "shape_checker_for"]


def _spec(name: str, specs: Mapping[str, ProviderSpec] | None) -> ProviderSpec | None:
    return (specs if specs is not None else load_specs()).get(name)


def batch_rules_for(
    name: str, specs: Mapping[str, ProviderSpec] | None = None
) -> tuple[BatchRule, ...]:
    """The batch rules of provider *name* (none for a provider without batch endpoints)."""
    spec = _spec(name, specs)
    return spec.batch_rules if spec is not None else ()


def unread_keys_for(name: str, specs: Mapping[str, ProviderSpec] | None = None) -> frozenset[str]:
    """The answer members provider *name*'s client never reads (see
    :attr:`~scrapy_apigw.providers.spec.ProviderSpec.unread_keys`); none for an unknown one."""
    spec = _spec(name, specs)
    return spec.unread_keys if spec is not None else frozenset()


def build_client(
    name: str,
    specs: Mapping[str, ProviderSpec] | None = None,
    options: Mapping[str, Any] | None = None,
    config: ProviderConfig | None = None,
) -> ProviderClient | None:
    """A fresh client for provider *name* (one per crawl: clients remember per-crawl facts),
    or None for a provider without one."""
    spec = _spec(name, specs)
    return spec.build_client(options, config) if spec is not None else None


def classifier_for(
    config: ProviderConfig, specs: Mapping[str, ProviderSpec] | None = None
) -> Callable[[int, Any], Outcome]:
    """The ``(status, decoded body) -> Outcome`` function for *config*'s provider.

    Providers with a client use its classification (Last.fm errors in 200 bodies, MusicBrainz
    503 rate limits); others use HTTP semantics plus their ``rate_limit_statuses``. The gateway
    applies ``retry_statuses`` and ``rate_limit_statuses`` on top, for every provider
    (:meth:`scrapy_apigw.gateway.ProviderState.classify`).
    """
    client = build_client(config.name, specs, config=config)
    if client is not None:
        return client.classify
    statuses = config.rate_limit_statuses

    def classify(status: int, data: Any) -> Outcome:
        return classify_status(status, statuses)

    return classify


def shape_checker_for(
    config: ProviderConfig, specs: Mapping[str, ProviderSpec] | None = None
) -> Callable[[ApiCall, Any], str | None] | None:
    """The ``(call, decoded 2xx body) -> missing or None`` check of *config*'s provider
    (its client's ``check_shape``), or None for a provider without a client."""
    client = build_client(config.name, specs, config=config)
    return client.check_shape if client is not None else None


def __getattr__(name: str) -> Any:
    # ``CLIENT_CLASSES`` (provider name -> a no-argument client factory) as before the provider
    # modules declared their clients; read from the declarations on use.
    if name == "CLIENT_CLASSES":
        return {
            spec.name: spec.build_client
            for spec in load_specs().values()
            if spec.client is not None
        }
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
