"""The enrichment waterfall: ask each provider in turn, merge what they answer, decide a status.

Order matters: Spotify gives the ISRC that MusicBrainz looks up, MusicBrainz the MBID, and so
on. A provider that fails does not stop the waterfall; its reason is kept for the item.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from scrapy_apigw.enrichment.fields import (
    STATUS_COMPLETED,
    STATUS_FAILED,
    STATUS_PARTIAL,
    STATUS_SKIPPED,
)
from scrapy_apigw.exceptions import ProviderUnavailable
from scrapy_apigw.providers.base import Fetch, ProviderClient, ProviderResult, TrackContext

logger = logging.getLogger(__name__)


@dataclass
class Enrichment:
    """The waterfall's verdict on one track.

    Attributes:
        status: ``completed`` / ``partial`` / ``failed`` / ``skipped`` (see fields.py).
        fields: output fields, first source wins for each field, in waterfall order.
        results: provider name -> its :class:`ProviderResult`.
    """

    status: str
    fields: dict[str, Any] = field(default_factory=dict)
    results: dict[str, ProviderResult] = field(default_factory=dict)

    def item_fields(self) -> dict[str, Any]:
        """Everything to write on the item, including the ``enrichment_*`` fields."""
        values = dict(self.fields)
        values["enrichment_sources"] = [n for n, r in self.results.items() if r.status == "ok"]
        values["enrichment_status"] = self.status
        errors = {n: r.reason or r.status for n, r in self.results.items() if r.status == "failed"}
        if errors:
            values["enrichment_errors"] = errors
        values["enriched_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return values


class Waterfall:
    """Runs the provider clients in order for one track.

    Args:
        clients: the enabled providers' clients, in waterfall order.
        fetch: the transport's fetch (cache, throttle, breaker, retries).
    """

    def __init__(self, clients: Sequence[ProviderClient], fetch: Fetch) -> None:
        self.clients = list(clients)
        self.fetch = fetch

    async def enrich(self, track: TrackContext) -> Enrichment:
        """Enrich *track*; never raises (a provider's failure becomes its ``failed`` result)."""
        if not track.has_query:
            return Enrichment(STATUS_SKIPPED)
        merged: dict[str, Any] = {}
        results: dict[str, ProviderResult] = {}
        for client in self.clients:
            result = await self._run(client, track)
            results[client.name] = result
            for name, value in result.fields.items():
                if value is not None and name not in merged:
                    merged[name] = value
        return Enrichment(status_of(results.values()), merged, results)

    async def _run(self, client: ProviderClient, track: TrackContext) -> ProviderResult:
        try:
            return await client.enrich(track, self.fetch)
        except ProviderUnavailable as exc:
            return ProviderResult("failed", reason=exc.reason)
        except Exception as exc:
            # A bug or an answer shape nobody expected must cost one provider result, not the
            # item: the item still reaches the feed, marked with the reason.
            logger.exception("apigw: %s client failed on a track", client.name)
            return ProviderResult("failed", reason=f"internal error: {type(exc).__name__}")


def status_of(results: Iterable[ProviderResult]) -> str:
    """``completed`` if every counted provider answered (ok/not_found), ``failed`` if all failed,
    else ``partial``; ``skipped`` when no provider counted (all were skipped)."""
    counted = [r for r in results if r.status != "skipped"]
    if not counted:
        return STATUS_SKIPPED
    failed = sum(r.status == "failed" for r in counted)
    if failed == 0:
        return STATUS_COMPLETED
    if failed == len(counted):
        return STATUS_FAILED
    return STATUS_PARTIAL
