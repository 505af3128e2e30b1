"""The enrichment waterfall: ask each provider in turn, merge what they answer, decide a status.

Order matters: Spotify gives the ISRC that MusicBrainz looks up, MusicBrainz the MBID, and so
on. A provider that fails does not stop the waterfall; its reason is kept for the item.

A client's *early calls* (its optional ``early_calls(track)``: calls built from the input alone,
such as Discogs' search by artist and title) do not need earlier providers' answers, so the
waterfall starts them when the item arrives, concurrently with the first provider, and hands
each answer to the client when its turn comes (:class:`EarlyCalls`). At a provider that sets the
crawl's pace (Discogs at 1 req/s) the call then waits in that provider's queue from the item's
arrival instead of after Spotify's and MusicBrainz' answers, so the queue is not left empty at the
start of a crawl. What the client decides from earlier answers (Discogs: whether to read the
release) still waits for them; the calls made are the same.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from twisted.internet.defer import Deferred

from scrapy_apigw.core.confidence import DEFAULT_MIN_CONFIDENCE
from scrapy_apigw.deferreds import Waiter, start_task
from scrapy_apigw.enrichment.crosscheck import cross_check
from scrapy_apigw.enrichment.fields import (
    STATUS_COMPLETED,
    STATUS_FAILED,
    STATUS_PARTIAL,
    STATUS_SKIPPED,
)
from scrapy_apigw.exceptions import ProviderUnavailable
from scrapy_apigw.providers.base import (
    ApiAnswer,
    ApiCall,
    Fetch,
    ProviderClient,
    ProviderResult,
    TrackContext,
)

if TYPE_CHECKING:
    from scrapy_apigw.enrichment.run import ItemRun

logger = logging.getLogger(__name__)


@dataclass
class Enrichment:
    """The waterfall's verdict on one track.

    Attributes:
        status: ``completed`` / ``partial`` / ``failed`` / ``skipped`` (see fields.py).
        fields: output fields, first source wins for each field, in waterfall order.
        results: provider name -> its :class:`ProviderResult`.
        conflicts: the providers' disagreements (:func:`~scrapy_apigw.enrichment.crosscheck.
            cross_check`), ``enrichment_conflicts`` on the item.
        matches: provider -> how it matched (``{"confidence", "by"}``), ``enrichment_match``.
    """

    status: str
    fields: dict[str, Any] = field(default_factory=dict)
    results: dict[str, ProviderResult] = field(default_factory=dict)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    matches: dict[str, dict[str, Any]] = field(default_factory=dict)

    def item_fields(self) -> dict[str, Any]:
        """Everything to write on the item, including the ``enrichment_*`` fields."""
        values = dict(self.fields)
        values["enrichment_sources"] = [n for n, r in self.results.items() if r.status == "ok"]
        values["enrichment_status"] = self.status
        errors = {n: r.reason or r.status for n, r in self.results.items() if r.status == "failed"}
        if errors:
            values["enrichment_errors"] = errors
        stale = [n for n, r in self.results.items() if r.stale and r.status != "failed"]
        if stale:
            values["enrichment_stale"] = stale
        if self.matches:
            values["enrichment_match"] = self.matches
        if self.conflicts:
            values["enrichment_conflicts"] = self.conflicts
        values["enriched_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return values


class Waterfall:
    """Runs the provider clients in order for one track.

    Args:
        clients: the enabled providers' clients, in waterfall order.
        fetch: the transport's fetch (cache, throttle, breaker, retries): ``fetch(call)``, and
            ``fetch(call, run=run)`` when :meth:`enrich` is given a run.
        min_confidence: ``APIGW_MIN_MATCH_CONFIDENCE`` (0..1): the clients take no candidate
            below it.
        field_sources: ``APIGW_FIELD_SOURCES``: output field -> providers in priority order
            (see :func:`merge_fields`); empty: every field from the first provider of the
            waterfall that gave it.
    """

    def __init__(
        self,
        clients: Sequence[ProviderClient],
        fetch: Callable[..., Awaitable[ApiAnswer]],
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        field_sources: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.clients = list(clients)
        self.fetch = fetch
        self.min_confidence = min_confidence
        self.field_sources = dict(field_sources or {})

    async def enrich(self, track: TrackContext, run: ItemRun | None = None) -> Enrichment:
        """Enrich *track*; never raises (a provider's failure becomes its ``failed`` result).

        With *run*, each provider's result is written into ``run.results`` as it finishes (so
        an item ended early keeps them), calls carry the run, and no provider is asked once the
        run has ended.
        """
        if not track.has_query:
            return Enrichment(STATUS_SKIPPED)
        track.min_confidence = self.min_confidence
        results: dict[str, ProviderResult] = run.results if run is not None else {}
        fetch = cast(
            Fetch,
            self.fetch if run is None or self.fetch is None else partial(self.fetch, run=run),
        )
        early = EarlyCalls(fetch)
        try:
            if run is None or not run.ended:
                for client in self.clients[1:]:  # the first one asks at once anyway
                    early.start(client, track)
            for client in self.clients:
                if run is not None and run.ended:
                    break
                result = results[client.name] = await self._run(client, track, early.fetch, run)
                for name, value in result.fields.items():
                    if value is not None:
                        track.found.add(name)
                        track.found_values.setdefault(name, {})[client.name] = value
        finally:
            early.cancel()
        return self.verdict(results, run.reason if run is not None else None)

    def verdict(
        self, results: Mapping[str, ProviderResult], unfinished: str | None = None
    ) -> Enrichment:
        """The :class:`Enrichment` of *results* (provider name -> result): fields merged in
        waterfall order, first source winning, and the status.

        Providers are cross-checked first (:func:`~scrapy_apigw.enrichment.crosscheck.
        cross_check`): a text-search result that disagrees with an identifier lookup is
        withheld (it counts as ``not_found``, its fields are not merged; its match stays in
        ``matches`` with ``"withheld"``), and every disagreement is listed in ``conflicts``.

        Args:
            results: the results the providers gave, possibly not all of them.
            unfinished: when given, the reason of every client without a result (``failed``),
                e.g. ``"interrupted"``; else clients without one are left out.
        """
        final: dict[str, ProviderResult] = {}
        conflicts, withheld = cross_check(
            {c.name: results[c.name] for c in self.clients if c.name in results}
        )
        matches: dict[str, dict[str, Any]] = {}
        for client in self.clients:
            result = results.get(client.name)
            if result is None:
                if unfinished is None:
                    continue
                result = ProviderResult("failed", reason=unfinished)
            if result.status == "ok" and result.match:
                matches[client.name] = dict(result.match)
            if client.name in withheld:
                matches[client.name]["withheld"] = True
                result = ProviderResult(
                    "not_found",
                    reason=withheld[client.name],
                    stale=result.stale,
                    calls_saved=result.calls_saved,
                    match=result.match,
                    evidence=result.evidence,
                )
            final[client.name] = result
        merged = merge_fields(final, self.field_sources)
        return Enrichment(status_of(final.values()), merged, final, conflicts, matches)

    async def _run(
        self, client: ProviderClient, track: TrackContext, fetch: Fetch, run: ItemRun | None
    ) -> ProviderResult:
        stale = False

        async def noting_stale(call: ApiCall) -> ApiAnswer:
            # A stale answer (the provider failed, an expired entry stood in) marks the result.
            nonlocal stale
            answer = await fetch(call)
            stale = stale or answer.stale
            return answer

        try:
            result = await client.enrich(track, noting_stale)
            if stale:
                result.stale = True
            return result
        except ProviderUnavailable as exc:
            return ProviderResult("failed", reason=exc.reason)
        except Exception as exc:
            if run is not None and run.ended:
                # The run's cancellation, as a non-asyncio reactor delivers it: not a bug.
                return ProviderResult("failed", reason=run.reason)
            # A bug or an answer shape nobody expected must cost one provider result, not the
            # item: the item still reaches the feed, marked with the reason.
            logger.exception("apigw: %s client failed on a track", client.name)
            return ProviderResult("failed", reason=f"internal error: {type(exc).__name__}")


#: Fields that come as a group from one source: ``camelot_key`` is the Camelot code of ``key``,
#: so it takes ``key``'s priority unless ``APIGW_FIELD_SOURCES`` names its own.
FOLLOWS = {"camelot_key": "key"}


def merge_fields(
    results: Mapping[str, ProviderResult], field_sources: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """The output fields of *results* (provider -> result, in waterfall order).

    Each field comes from the first provider that gave it (a value other than None) in its
    priority order: the providers *field_sources* lists for it (``APIGW_FIELD_SOURCES``, e.g.
    ``{"bpm": ["beatport", "spotify"]}``), then the others in waterfall order. Without an
    entry, the waterfall order alone (first source wins): the order before the setting
    existed. ``camelot_key`` follows ``key`` (:data:`FOLLOWS`).
    """
    merged: dict[str, Any] = {}
    for result in results.values():
        for name, value in result.fields.items():
            if value is not None and name not in merged:
                merged[name] = value
    for name in {*field_sources, *(f for f, lead in FOLLOWS.items() if lead in field_sources)}:
        order = field_sources.get(name) or field_sources.get(FOLLOWS.get(name, ""), ())
        for provider in (*order, *(p for p in results if p not in order)):
            found = results.get(provider)
            value = found.fields.get(name) if found is not None else None
            if value is not None:
                merged[name] = value
                break
    return merged


class EarlyCalls:
    """The early calls of one item's waterfall: started at once, answered to their client later.

    A client may define ``early_calls(track) -> Sequence[ApiCall]``: calls it will make, built
    from the input fields only (never from what earlier providers find), whatever they answer.
    :meth:`start` sends them through *fetch* now (each is throttled, cached, retried, shared in
    flight as any call); :meth:`fetch` answers the same call with that outcome, the answer or
    the exception (each early call once; any other call, or the same one again, goes to *fetch*).
    :meth:`cancel` cancels the early calls no client took (the item ended first) and swallows
    their outcome.

    Args:
        fetch: the item's fetch (the transport's, with the item's run).
    """

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self._started: dict[ApiCall, Waiter[ApiAnswer]] = {}

    def __len__(self) -> int:
        """Early calls started and not taken yet."""
        return len(self._started)

    def start(self, client: ProviderClient, track: TrackContext) -> None:
        """Start *client*'s early calls for *track* (none if it defines no ``early_calls``)."""
        early_calls = getattr(client, "early_calls", None)
        if early_calls is None:
            return
        for call in early_calls(track):
            if call not in self._started:
                # A Task where asyncio runs (awaited as is, no Deferred around it), else a
                # Deferred: deferreds.start_task.
                self._started[call] = start_task(self._fetch(call))

    async def fetch(self, call: ApiCall) -> ApiAnswer:
        """The answer to *call*: its early call's outcome if one was started, else a fetch."""
        started = self._started.pop(call, None)
        if started is None:
            return await self._fetch(call)
        return await started

    def cancel(self) -> None:
        """Cancel the early calls not taken; their outcome (an error included) is dropped."""
        started, self._started = self._started, {}
        for task in started.values():
            if isinstance(task, Deferred):
                task.addErrback(lambda _: None)
            else:
                # Read its outcome, whatever it is: asyncio logs a Task's unread exception.
                task.add_done_callback(_consume)
            task.cancel()


def _consume(task: Any) -> None:
    if not task.cancelled():
        task.exception()


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
