"""Provider registry and one module per provider (defaults, credentials, client, classification).

See :mod:`scrapy_apigw.providers.spec` for what a provider module declares.
"""

from typing import Any

from scrapy_apigw.providers.registry import ProviderConfig, build_registry, provider_for_url

__all__ = ["DEFAULT_PROVIDERS", "ProviderConfig", "build_registry", "provider_for_url"]


def __getattr__(name: str) -> Any:
    # Built from the provider modules on first use (they import this package).
    if name == "DEFAULT_PROVIDERS":
        from scrapy_apigw.providers.registry import default_providers

        return default_providers()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
