"""Which client serves which provider, and how each provider's answers are classified."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scrapy_apigw.batching import BatchRule
from scrapy_apigw.core.outcome import Outcome, classify_status
from scrapy_apigw.providers import musicbrainz, spotify
from scrapy_apigw.providers.base import ApiCall, ProviderClient
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


#: Provider name -> the batch rules its module declares (see :mod:`scrapy_apigw.batching`).
BATCH_RULES: dict[str, tuple[BatchRule, ...]] = {
    "spotify": spotify.BATCH_RULES,
    "musicbrainz": musicbrainz.BATCH_RULES,
}


def batch_rules_for(name: str) -> tuple[BatchRule, ...]:
    """The batch rules of provider *name* (none for a provider without batch endpoints)."""
    return BATCH_RULES.get(name, ())


def build_client(name: str) -> ProviderClient | None:
    """A fresh client for provider *name* (one per crawl: clients remember per-crawl facts)."""
    factory = CLIENT_CLASSES.get(name)
    return factory() if factory else None


def classifier_for(config: ProviderConfig) -> Callable[[int, Any], Outcome]:
    """The ``(status, decoded body) -> Outcome`` function for *config*'s provider.

    Providers with a client use its classification (Last.fm errors in 200 bodies, MusicBrainz
    503 rate limits); others use HTTP semantics plus their ``rate_limit_statuses``. The gateway
    applies ``retry_statuses`` and ``rate_limit_statuses`` on top, for every provider
    (:meth:`scrapy_apigw.gateway.ProviderState.classify`).
    """
    client = build_client(config.name)
    if client is not None:
        return client.classify
    statuses = config.rate_limit_statuses

    def classify(status: int, data: Any) -> Outcome:
        return classify_status(status, statuses)

    return classify


def shape_checker_for(config: ProviderConfig) -> Callable[[ApiCall, Any], str | None] | None:
    """The ``(call, decoded 2xx body) -> missing or None`` check of *config*'s provider
    (its client's ``check_shape``), or None for a provider without a client."""
    client = build_client(config.name)
    return client.check_shape if client is not None else None
