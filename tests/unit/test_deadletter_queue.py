"""The dead-letter queue's fallback rules with in-memory stores and a fake clock (no I/O)."""

from __future__ import annotations

import logging
from collections import Counter

from coroutines import finish
from test_deadletter_schedule import MemoryStore

from scrapy_apigw.core.clock import FakeClock
from scrapy_apigw.deadletters import queue as deadletter_queue
from scrapy_apigw.deadletters.queue import DeadLetterQueue
from scrapy_apigw.deadletters.record import DeadLetter, track_key
from scrapy_apigw.deadletters.schedule import ReplaySchedule
from scrapy_apigw.enrichment.fields import STATUS_COMPLETED
from scrapy_apigw.enrichment.waterfall import Enrichment
from scrapy_apigw.settings import DEFAULT_INPUT_FIELDS


class BrokenStore(MemoryStore):
    """A store whose writes fail while ``down`` (counting the attempts)."""

    def __init__(self):
        super().__init__()
        self.down = True
        self.tries = 0

    def describe(self):
        return "broken"

    async def put(self, record):
        self.tries += 1
        if self.down:
            raise ConnectionError("refused")
        return await super().put(record)


def queue_with(primary, fallback, clock):
    stats: Counter[str] = Counter()
    queue = DeadLetterQueue(
        primary,
        fallback,
        input_fields=DEFAULT_INPUT_FIELDS,
        clock=clock,
        inc=lambda key, value: stats.update({key: value}),
    )
    return queue, stats


def test_a_failed_write_goes_to_the_fallback_and_so_do_the_next_5_s(caplog):
    clock = FakeClock(100.0)
    primary, fallback = BrokenStore(), MemoryStore()
    queue, stats = queue_with(primary, fallback, clock)
    with caplog.at_level(logging.WARNING, logger="scrapy_apigw.deadletters.queue"):
        finish(queue.record({"artist": "A", "title": "1"}, "failed", {"spotify": "x"}))
        clock.advance(4.9)
        finish(queue.record({"artist": "A", "title": "2"}, "partial", {"spotify": "x"}))
    assert primary.tries == 1  # the second did not wait for the failing store
    assert sorted(r.inputs["title"] for r in fallback.records.values()) == ["1", "2"]
    assert stats["apigw/deadletters/fallback"] == 2
    assert stats["apigw/deadletters/written"] == 2
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "writing them to memory instead" in warnings[0]

    primary.down = False
    clock.advance(0.2)  # 5.1 s after the failure: the primary is tried again
    finish(queue.record({"artist": "A", "title": "3"}, "failed", {"spotify": "x"}))
    assert primary.tries == 2
    assert [r.inputs["title"] for r in primary.records.values()] == ["3"]
    assert stats["apigw/deadletters/fallback"] == 2


def test_a_record_no_store_takes_is_logged_whole(caplog):
    fallback = BrokenStore()
    queue, stats = queue_with(BrokenStore(), fallback, FakeClock(7.0))
    with caplog.at_level(logging.ERROR, logger="scrapy_apigw.deadletters.queue"):
        finish(queue.record({"artist": "Ab", "title": "Cd"}, "failed", {"spotify": "HTTP 503"}))
    assert fallback.tries == 1
    assert stats["apigw/deadletters/unsaved"] == 1 and "apigw/deadletters/written" not in stats
    (error,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert '"inputs":{"artist":"Ab","title":"Cd"}' in error
    assert '"errors":{"spotify":"HTTP 503"}' in error and '"last_attempt":7.0' in error


def completed() -> Enrichment:
    return Enrichment(STATUS_COMPLETED)


def held(artist: str, title: str, at: float) -> DeadLetter:
    """A ``failed`` record of (*artist*, *title*), as another crawl left it."""
    inputs = {"artist": artist, "title": title}
    return DeadLetter(track_key(inputs, DEFAULT_INPUT_FIELDS), inputs, "failed", {}, 1, at, at)


def test_a_completed_track_without_a_record_costs_no_round_trip_while_others_are_held():
    primary = MemoryStore()
    finish(primary.put(held("Held", "One", 1.0)))
    queue, stats = queue_with(primary, None, FakeClock(10.0))
    finish(queue.open())
    for n in range(50):
        finish(queue.settle({"artist": "Other", "title": str(n)}, completed()))
    assert primary.removes == 0
    finish(queue.settle({"artist": "held", "title": " one "}, completed()))  # same track key
    assert primary.removes == 1 and primary.records == {}
    assert stats["apigw/deadletters/removed"] == 1
    # Removed: completing it again asks nothing.
    finish(queue.settle({"artist": "Held", "title": "One"}, completed()))
    assert primary.removes == 1


def test_a_record_written_in_this_crawl_is_removed_when_its_track_completes():
    primary = MemoryStore()
    queue, _ = queue_with(primary, None, FakeClock(10.0))
    finish(queue.open())
    finish(queue.record({"artist": "A", "title": "B"}, "partial", {"discogs": "HTTP 503"}))
    finish(queue.settle({"artist": "A", "title": "C"}, completed()))
    assert primary.removes == 0
    finish(queue.settle({"artist": "A", "title": "B"}, completed()))
    assert primary.removes == 1 and primary.records == {}


def test_a_record_another_process_wrote_after_open_is_removed_once_replayed():
    primary = MemoryStore()
    queue, _ = queue_with(primary, None, FakeClock(10.0))
    finish(queue.open())
    # Written by another process of the fleet after this one opened: not known here...
    finish(primary.put(held("Late", "Record", 5.0)))
    finish(queue.settle({"artist": "Late", "title": "Record"}, completed()))
    assert primary.removes == 0 and len(primary.records) == 1

    # ...until the replay reads it: its enrichment, completed, then removes it.
    async def replay() -> list[DeadLetter]:
        return [r async for r in queue.due(ReplaySchedule())]

    (record,) = finish(replay())
    finish(queue.settle(record.inputs, completed()))
    assert primary.removes == 1 and primary.records == {}


def test_when_the_keys_cannot_be_read_or_are_too_many_every_completed_track_asks(monkeypatch):
    class NoKeys(MemoryStore):
        async def track_keys(self):
            raise ConnectionError("refused")

    primary = NoKeys()
    queue, _ = queue_with(primary, None, FakeClock(10.0))
    finish(queue.open())
    for n in range(3):
        finish(queue.settle({"artist": "A", "title": str(n)}, completed()))
    assert primary.removes == 3

    monkeypatch.setattr(deadletter_queue, "HELD_KEYS_MAX", 2)
    many = MemoryStore()
    for n in range(3):
        finish(many.put(held("Held", str(n), 1.0)))
    queue, _ = queue_with(many, None, FakeClock(10.0))
    finish(queue.open())
    finish(queue.settle({"artist": "Other", "title": "X"}, completed()))
    assert many.removes == 1


def test_an_empty_store_at_open_asks_nothing_for_completed_tracks():
    primary = MemoryStore()
    queue, _ = queue_with(primary, None, FakeClock(10.0))
    finish(queue.open())
    finish(queue.settle({"artist": "A", "title": "B"}, completed()))
    assert primary.removes == 0


def test_a_removal_that_failed_is_asked_again_when_the_track_completes_again():
    class FlakyRemoves(MemoryStore):
        down = True

        async def remove(self, key):
            if self.down:
                self.removes += 1
                raise ConnectionError("refused")
            return await super().remove(key)

    primary = FlakyRemoves()
    finish(primary.put(held("Held", "One", 1.0)))
    queue, stats = queue_with(primary, None, FakeClock(10.0))
    finish(queue.open())
    finish(queue.settle({"artist": "Held", "title": "One"}, completed()))
    assert primary.removes == 1 and len(primary.records) == 1
    assert stats["apigw/deadletters/errors"] == 1
    primary.down = False
    finish(queue.settle({"artist": "Held", "title": "One"}, completed()))
    assert primary.removes == 2 and primary.records == {}
