"""The dead-letter replay schedule at exact fake-clock instants (pure logic, no I/O).

Design documents: failed tracks retried up to 3 times, partial ones re-enriched after 24 h.
"""

from __future__ import annotations

import pytest
from coroutines import finish

from scrapy_apigw.core.clock import FakeClock
from scrapy_apigw.deadletters.queue import DeadLetterQueue
from scrapy_apigw.deadletters.record import DeadLetter, track_key
from scrapy_apigw.deadletters.schedule import ReplaySchedule
from scrapy_apigw.settings import DEFAULT_INPUT_FIELDS

DAY = 86400.0


def letter(status: str, attempts: int, last: float) -> DeadLetter:
    return DeadLetter("k", {"artist": "A", "title": "T"}, status, {}, attempts, last, last)


@pytest.mark.parametrize(
    "attempts, due",
    [(1, True), (2, True), (3, False), (4, False)],
)
def test_failed_is_due_while_it_had_fewer_than_3_attempts(attempts, due):
    schedule = ReplaySchedule()
    record = letter("failed", attempts, last=1_000.0)
    # Whatever the time: at its last attempt, or a year later.
    assert schedule.is_due(record, 1_000.0) is due
    assert schedule.is_due(record, 1_000.0 + 365 * DAY) is due


@pytest.mark.parametrize(
    "now, due",
    [
        (1_000.0, False),
        (1_000.0 + DAY - 1, False),
        (1_000.0 + DAY, False),  # exactly 24 h: not yet ("more than 24 h")
        (1_000.0 + DAY + 0.001, True),
        (1_000.0 + 2 * DAY, True),
    ],
)
def test_partial_is_due_once_its_last_attempt_is_more_than_24_h_old(now, due):
    assert ReplaySchedule().is_due(letter("partial", 7, last=1_000.0), now) is due


def test_both_numbers_are_settings():
    schedule = ReplaySchedule(max_attempts=5, partial_after=60.0)
    assert schedule.is_due(letter("failed", 4, 0.0), 0.0)
    assert not schedule.is_due(letter("failed", 5, 0.0), 0.0)
    assert not schedule.is_due(letter("partial", 1, 100.0), 160.0)
    assert schedule.is_due(letter("partial", 1, 100.0), 160.5)
    assert schedule.due_at(letter("partial", 1, 100.0)) == 160.0
    assert schedule.due_at(letter("failed", 5, 100.0)) is None
    assert schedule.due_at(letter("failed", 4, 100.0)) == 100.0


def test_other_statuses_are_never_due():
    assert not ReplaySchedule().is_due(letter("completed", 1, 0.0), 10 * DAY)


class MemoryStore:
    """An in-memory store with the backends' merge rule (attempts added up, first kept)."""

    name = "memory"

    def __init__(self):
        self.records: dict[str, DeadLetter] = {}
        self.removes = 0  # remove() calls: round trips, in a real store

    def describe(self):
        return "memory"

    async def open(self):
        pass

    async def close(self):
        pass

    async def put(self, record):
        old = self.records.get(record.key)
        if old is not None:
            record.attempts += old.attempts
            record.first_attempt = old.first_attempt
        self.records[record.key] = record
        return record

    async def remove(self, key):
        self.removes += 1
        return self.records.pop(key, None) is not None

    async def get(self, key):
        return self.records.get(key)

    async def count(self):
        return len(self.records)

    async def track_keys(self):
        return list(self.records)

    async def scan(self, page=500):
        for record in list(self.records.values()):
            yield record


def due_titles(queue, schedule):
    async def collect():
        return [r.inputs["title"] async for r in queue.due(schedule)]

    return finish(collect())


def test_the_queue_stamps_attempts_with_its_clock_and_replays_on_schedule():
    clock = FakeClock(1_000.0)
    store = MemoryStore()
    queue = DeadLetterQueue(store, input_fields=DEFAULT_INPUT_FIELDS, clock=clock)
    schedule = ReplaySchedule(max_attempts=3, partial_after=DAY)
    failed = {"artist": "A", "title": "Failed"}
    partial = {"artist": "B", "title": "Partial"}

    finish(queue.record(failed, "failed", {"spotify": "HTTP 503"}))
    finish(queue.record(partial, "partial", {"musicbrainz": "HTTP 503"}))
    record = store.records[track_key(failed, DEFAULT_INPUT_FIELDS)]
    assert (record.attempts, record.last_attempt, record.first_attempt) == (1, 1_000.0, 1_000.0)
    assert record.errors == {"spotify": "HTTP 503"}
    assert due_titles(queue, schedule) == ["Failed"]

    clock.set(1_000.0 + DAY)  # the partial one: exactly 24 h, not due yet
    assert due_titles(queue, schedule) == ["Failed"]
    clock.advance(0.5)
    assert due_titles(queue, schedule) == ["Failed", "Partial"]

    # Failed twice more (the same track, whatever its other fields): 3 attempts, no more due.
    clock.set(90_000.0)
    finish(queue.record({**failed, "position": 4}, "failed", {"spotify": "timeout"}))
    clock.set(90_010.0)
    again = finish(queue.record(failed, "failed", {"spotify": "timeout"}))
    assert (again.attempts, again.last_attempt, again.first_attempt) == (3, 90_010.0, 1_000.0)
    assert due_titles(queue, schedule) == ["Partial"]

    # The partial one tried again at 90,010: due again 24 h later, not before.
    finish(queue.record(partial, "partial", {"musicbrainz": "HTTP 503"}))
    assert due_titles(queue, schedule) == []
    clock.set(90_010.0 + DAY + 1)
    assert due_titles(queue, schedule) == ["Partial"]
    assert store.records[track_key(partial, DEFAULT_INPUT_FIELDS)].attempts == 2


def test_the_track_key_ignores_case_spacing_and_other_fields():
    fields = DEFAULT_INPUT_FIELDS
    a = track_key({"artist": "Daft  Punk", "title": "One More Time", "position": 1}, fields)
    b = track_key({"artist": "daft punk", "title": "ONE MORE TIME", "tracklist": "x"}, fields)
    c = track_key({"artist": "Daft Punk", "title": "One More Time (Radio Edit)"}, fields)
    assert a == b != c
    assert len(a) == 40
