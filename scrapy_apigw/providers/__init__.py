"""Provider registry and one client per provider (request building, parsing, classification)."""

from scrapy_apigw.providers.registry import (
    DEFAULT_PROVIDERS,
    ProviderConfig,
    build_registry,
    provider_for_url,
)

__all__ = ["DEFAULT_PROVIDERS", "ProviderConfig", "build_registry", "provider_for_url"]
