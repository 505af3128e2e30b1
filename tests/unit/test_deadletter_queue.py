"""The dead-letter queue's fallback rules with in-memory stores and a fake clock (no I/O)."""

from __future__ import annotations

import logging
from collections import Counter

from coroutines import finish
from test_deadletter_schedule import MemoryStore

from scrapy_apigw.core.clock import FakeClock
from scrapy_apigw.deadletters.queue import DeadLetterQueue
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
