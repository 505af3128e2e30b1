"""The dead-letter queue the pipeline writes to: a store, its fallback, and the rules.

- An item ending ``failed`` or ``partial`` leaves a record (:meth:`DeadLetterQueue.settle`):
  its inputs as scraped, which providers failed and why, the attempt count (grown by one per
  attempt of the same track) and the last attempt time (the injected wall clock).
- An item ending ``completed`` removes the record of its track, if any (a replay that
  succeeded, or the same track scraped again and enriched this time). The keys the stores hold
  are read once at open (up to :data:`HELD_KEYS_MAX`), and kept up to date with the records
  this process writes and replays, so that a completed item whose track has no record costs
  no round trip: a warm crawl completes about a thousand items a second, and the stores of a
  crawl that ever failed an item are never empty. A record another process writes during
  this crawl is not seen by it: the same track completed here leaves that record, and the
  next replay takes it (and removes it once enriched).
- The record is never lost: when the primary store (Redis) fails, it goes to the local file
  (one warning, stat ``apigw/deadletters/fallback``), and so do the records of the next
  :data:`PRIMARY_RETRY_AFTER` seconds (no item waits for a dead Redis each time); when the file
  fails too, the record is logged as an ERROR line holding its JSON (stat
  ``apigw/deadletters/unsaved``). Nothing here raises into the pipeline.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from scrapy_apigw.deadletters.record import DeadLetter, item_inputs, track_key
from scrapy_apigw.deadletters.schedule import ReplaySchedule
from scrapy_apigw.enrichment.fields import STATUS_COMPLETED, STATUS_FAILED, STATUS_PARTIAL

if TYPE_CHECKING:
    from scrapy_apigw.enrichment.waterfall import Enrichment
    from scrapy_apigw.settings import GatewaySettings

__all__ = [
    "HELD_KEYS_MAX",
    "PRIMARY_RETRY_AFTER",
    "DeadLetterQueue",
    "DeadLetterStore",
    "open_deadletters",
]

logger = logging.getLogger(__name__)

#: Seconds the fallback file takes the records after the primary store failed one (as the
#: cache skips a failing backend for 5 s).
PRIMARY_RETRY_AFTER = 5.0
#: Records the stores may hold for their keys to be read at open (about 100 bytes of memory
#: each); above it every completed item asks the stores to remove its record, as when the
#: keys could not be read.
HELD_KEYS_MAX = 100_000


class _Skipped(Exception):
    """The primary store failed a moment ago: the record goes straight to the fallback."""


class DeadLetterStore(Protocol):
    """What a backend provides (:mod:`.store_redis`, :mod:`.store_file`)."""

    name: str

    def describe(self) -> str: ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def put(self, record: DeadLetter) -> DeadLetter: ...

    async def remove(self, key: str) -> bool: ...

    async def get(self, key: str) -> DeadLetter | None: ...

    async def count(self) -> int: ...

    async def track_keys(self) -> list[str]: ...

    def scan(self, page: int = 500) -> AsyncIterator[DeadLetter]: ...


class DeadLetterQueue:
    """Writes, removes and lists dead letters (see the module docstring).

    Args:
        primary: the store (Redis stream, or the file when there is no Redis).
        fallback: the file taking the records the primary could not (None when the primary is
            the file itself).
        input_fields: logical input -> item field (``APIGW_INPUT_FIELDS``), for the track key.
        clock: wall clock, epoch seconds (``time.time``); injectable for tests.
        inc: ``inc(stat, value)`` of the crawler's stats (keys ``apigw/deadletters/...``).
    """

    def __init__(
        self,
        primary: DeadLetterStore,
        fallback: DeadLetterStore | None = None,
        *,
        input_fields: Mapping[str, str],
        clock: Callable[[], float] = time.time,
        inc: Callable[[str, int], None] | None = None,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.input_fields = dict(input_fields)
        self.clock = clock
        self._inc = inc
        self._fallback_open = False
        self._fallback_warned = False
        self._primary_skipped_until = float("-inf")
        #: the track keys the stores hold, as far as this process knows (read at open, plus
        #: the records written and replayed since); None: unknown, every completed item asks
        #: the stores to remove its record
        self._held: set[str] | None = None

    def inc(self, key: str, value: int = 1) -> None:
        """Increment the stat ``apigw/deadletters/<key>``."""
        if self._inc is not None:
            self._inc(f"apigw/deadletters/{key}", value)

    async def open(self) -> None:
        """Open the stores. A fallback file left by an earlier outage is opened too (its
        records are replayed). Never raises: a store that cannot open is logged and its
        records go to the fallback, or to the log."""
        try:
            await self.primary.open()
        except Exception as exc:
            logger.warning("apigw: dead letters: %s: %s", self.primary.describe(), exc)
        stores = [self.primary]
        if self.fallback is not None and self._fallback_exists():
            await self._open_fallback()
            stores.append(self.fallback)
        self._held = await self._held_keys(stores)
        logger.info("apigw: dead letters: %s", self.describe())

    async def close(self) -> None:
        """Close the stores. Never raises."""
        for store in (self.primary, self.fallback if self._fallback_open else None):
            if store is not None:
                try:
                    await store.close()
                except Exception as exc:  # pragma: no cover - closing is best effort
                    logger.debug("apigw: dead letters: closing %s: %s", store.describe(), exc)

    def describe(self) -> str:
        """The stores, log-safe (no password)."""
        text = self.primary.describe()
        if self.fallback is not None:
            text += f" (fallback {self.fallback.describe()})"
        return text

    def inputs_of(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The inputs to keep of an item arriving at the pipeline (call before enriching)."""
        return item_inputs(fields)

    async def settle(self, inputs: Mapping[str, Any], enrichment: Enrichment) -> None:
        """After an item's enrichment: record it (failed, partial), remove its record
        (completed), or nothing (skipped). Never raises."""
        status = enrichment.status
        if status in (STATUS_FAILED, STATUS_PARTIAL):
            errors = {
                name: result.reason or result.status
                for name, result in enrichment.results.items()
                if result.status == "failed"
            }
            await self.record(inputs, status, errors)
        elif status == STATUS_COMPLETED and (self._held is None or self._held):
            key = track_key(inputs, self.input_fields)
            if self._held is None or key in self._held:
                await self.remove(key)

    async def record(
        self, inputs: Mapping[str, Any], status: str, errors: Mapping[str, str]
    ) -> DeadLetter:
        """Write the dead letter of one attempt at *now*; return it as stored (its attempts
        counted with the earlier ones). Never raises."""
        now = self.clock()
        record = DeadLetter(
            key=track_key(inputs, self.input_fields),
            inputs=dict(inputs),
            status=status,
            errors=dict(errors),
            attempts=1,
            last_attempt=now,
            first_attempt=now,
        )
        if self._held is not None:
            self._held.add(record.key)
        try:
            if self.fallback is not None and now < self._primary_skipped_until:
                raise _Skipped(f"{self.primary.describe()} failed less than 5 s ago")
            stored = await self.primary.put(record)
        except Exception as exc:
            if not isinstance(exc, _Skipped):
                self._primary_skipped_until = now + PRIMARY_RETRY_AFTER
            saved = await self._to_fallback(record, exc)
            if saved is None:
                return record
            stored = saved
        self.inc("written")
        self.inc(f"written/{status}")
        return stored

    async def remove(self, key: str) -> bool:
        """Remove the record of *key* from every store; True if one was there. Never raises."""
        removed = failed = False
        for store in (self.primary, self.fallback if self._fallback_open else None):
            if store is None:
                continue
            try:
                removed = await store.remove(key) or removed
            except Exception as exc:
                failed = True
                self.inc("errors")
                logger.debug("apigw: dead letters: removing from %s: %s", store.describe(), exc)
        if removed:
            self.inc("removed")
        if self._held is not None and not failed:  # else the record may still be there
            self._held.discard(key)
        return removed

    async def get(self, key: str) -> DeadLetter | None:
        """The record of *key* in the primary store, else in the fallback. Never raises."""
        for store in (self.primary, self.fallback if self._fallback_open else None):
            if store is None:
                continue
            try:
                found = await store.get(key)
            except Exception as exc:
                logger.debug("apigw: dead letters: reading %s: %s", store.describe(), exc)
                continue
            if found is not None:
                return found
        return None

    async def due(self, schedule: ReplaySchedule) -> AsyncIterator[DeadLetter]:
        """The records due under *schedule* at the queue's clock, read lazily from the
        primary store then the fallback (stats ``apigw/deadletters/due`` and ``.../not_due``).
        A store that fails mid-way is logged and the scan goes on with the next."""
        now = self.clock()
        for store in (self.primary, self.fallback if self._fallback_open else None):
            if store is None:
                continue
            try:
                async for record in store.scan():
                    if schedule.is_due(record, now):
                        self.inc("due")
                        if self._held is not None:  # written by another process, maybe
                            self._held.add(record.key)
                        yield record
                    else:
                        self.inc("not_due")
            except Exception as exc:
                logger.error(
                    "apigw: dead letters: reading %s for the replay failed: %s",
                    store.describe(),
                    exc,
                )

    async def _to_fallback(self, record: DeadLetter, error: Exception) -> DeadLetter | None:
        if self.fallback is not None:
            if not self._fallback_warned:
                self._fallback_warned = True
                logger.warning(
                    "apigw: dead letters: %s failed (%s); writing them to %s instead (they are "
                    "replayed from there too)",
                    self.primary.describe(),
                    error,
                    self.fallback.describe(),
                )
            try:
                await self._open_fallback()
                stored = await self.fallback.put(record)
                self.inc("fallback")
                return stored
            except Exception as exc:
                error = exc
        self.inc("unsaved")
        logger.error(
            "apigw: dead letters: could not store a record (%s); here it is: %s",
            error,
            record.to_json(),
        )
        return None

    async def _open_fallback(self) -> None:
        if self.fallback is not None and not self._fallback_open:
            await self.fallback.open()
            self._fallback_open = True

    def _fallback_exists(self) -> bool:
        path = getattr(self.fallback, "path", None)
        return path is not None and os.path.exists(path)

    @staticmethod
    async def _held_keys(stores: list[DeadLetterStore]) -> set[str] | None:
        """The keys *stores* hold; None when one cannot say, or they hold more than
        :data:`HELD_KEYS_MAX` records."""
        held: set[str] = set()
        for store in stores:
            try:
                if await store.count() + len(held) > HELD_KEYS_MAX:
                    return None
                held.update(await store.track_keys())
            except Exception:
                return None
        return held


async def open_deadletters(
    settings: GatewaySettings,
    inc: Callable[[str, int], None] | None = None,
    clock: Callable[[], float] = time.time,
) -> DeadLetterQueue | None:
    """The crawl's dead-letter queue, opened; None with ``APIGW_DEADLETTER_ENABLED = False``.

    A Redis stream (``APIGW_REDIS_URL``, namespace ``APIGW_CACHE_NAMESPACE``) with the file as
    fallback, else the file alone (``APIGW_DEADLETTER_PATH``, default next to the embedded
    cache).

    Raises:
        ConfigError: an invalid Redis URL (already checked at crawler start).
    """
    config = settings.deadletters
    if not config.enabled:
        return None
    from scrapy_apigw.deadletters.store_file import FileDeadLetterStore, default_deadletter_path

    file_store = FileDeadLetterStore(config.path or default_deadletter_path())
    primary: DeadLetterStore = file_store
    fallback: DeadLetterStore | None = None
    if settings.redis_url:
        from scrapy_apigw.deadletters.store_redis import RedisDeadLetterStore

        primary = RedisDeadLetterStore(
            settings.redis_url,
            namespace=settings.cache_namespace,
            timeout=settings.cache_timeout,
        )
        fallback = file_store
    queue = DeadLetterQueue(
        primary, fallback, input_fields=settings.input_fields, clock=clock, inc=inc
    )
    await queue.open()
    return queue
