"""Which client serves which provider, and how each provider's answers are classified."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scrapy_apigw.core.outcome import Outcome, classify_status
from scrapy_apigw.providers.base import ProviderClient
from scrapy_apigw.providers.discogs import DiscogsClient
from scrapy_apigw.providers.lastfm import LastFmClient
from scrapy_apigw.providers.musicbrainz import MusicBrainzClient
from scrapy_apigw.providers.registry import ProviderConfig
from scrapy_apigw.providers.spotify import SpotifyClient

#: Provider name -> client class. Beatport (partner-only access) and AcousticBrainz (shut down
#: in 2022-23) have registry entries for the middlewares but no enrichment client yet.
CLIENT_CLASSES: dict[str, Callable[[], ProviderClient]] = {
    "spotify": SpotifyClient,
    "musicbrainz": MusicBrainzClient,
    "discogs": DiscogsClient,
    "lastfm": LastFmClient,
}


def build_client(name: str) -> ProviderClient | None:
    """A fresh client for provider *name* (one per crawl: clients remember per-crawl facts)."""
    factory = CLIENT_CLASSES.get(name)
    return factory() if factory else None


def classifier_for(config: ProviderConfig) -> Callable[[int, Any], Outcome]:
    """The ``(status, decoded body) -> Outcome`` function for *config*'s provider.

    Providers with a client use its classification (Last.fm errors in 200 bodies, MusicBrainz
    503 rate limits); others use HTTP semantics plus their ``rate_limit_statuses``.
    """
    client = build_client(config.name)
    if client is not None:
        return client.classify
    statuses = config.rate_limit_statuses

    def classify(status: int, data: Any) -> Outcome:
        return classify_status(status, statuses)

    return classify
