"""Single-flight: one call per key in flight, shared answers and errors, callers leave alone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import pytest_twisted
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet.defer import CancelledError, Deferred

from scrapy_apigw.core.singleflight import Flight, SingleFlight

#: How a cancelled caller ends: asyncio's error under the asyncio reactor, Twisted's otherwise.
CANCELLED = (CancelledError, asyncio.CancelledError)


class Calls:
    """A call whose answer the test gives: each start is recorded with its pending Deferred."""

    def __init__(self) -> None:
        self.started: list[tuple[Flight[str], Deferred[str]]] = []
        self.cancelled = 0

    async def start(self, flight: Flight[str]) -> str:
        def cancelled(_: Deferred[str]) -> None:
            self.cancelled += 1

        pending: Deferred[str] = Deferred(cancelled)
        self.started.append((flight, pending))
        return await maybe_deferred_to_future(pending)


async def turn() -> None:
    """Let the tasks started so far run up to their next wait (any reactor)."""
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    for _ in range(3):
        await deferLater(reactor, 0)


async def caller(
    group: SingleFlight[str], calls: Calls, key: str, tag: Any = None
) -> Deferred[Any]:
    d: Deferred[Any] = deferred_from_coro(group.share(key, calls.start, tag))
    await turn()
    return d


async def settle(d: Deferred[Any]) -> Any:
    # The test body runs as a Deferred coroutine (pytest-twisted): it awaits Deferreds.
    return await d


@pytest_twisted.ensureDeferred
async def test_identical_calls_in_flight_share_one_call_and_its_answer() -> None:
    group: SingleFlight[str] = SingleFlight()
    calls = Calls()
    first = await caller(group, calls, "k", "a")
    second = await caller(group, calls, "k", "b")
    other = await caller(group, calls, "other", "c")
    assert len(calls.started) == 2  # one for "k", one for "other"
    assert calls.started[0][0].tags == ["a", "b"]
    calls.started[0][1].callback("answer")
    calls.started[1][1].callback("other answer")
    assert await settle(first) == ("answer", False)
    assert await settle(second) == ("answer", True)
    assert await settle(other) == ("other answer", False)
    assert not group.in_flight("k")


@pytest_twisted.ensureDeferred
async def test_a_failure_is_shared_by_every_caller() -> None:
    group: SingleFlight[str] = SingleFlight()
    calls = Calls()
    first, second = await caller(group, calls, "k"), await caller(group, calls, "k")
    error = ValueError("provider down")
    calls.started[0][1].errback(error)
    for d in (first, second):
        with pytest.raises(ValueError) as raised:
            await settle(d)
        assert raised.value is error
    assert len(calls.started) == 1


@pytest_twisted.ensureDeferred
async def test_a_cancelled_caller_leaves_without_cancelling_the_call_for_the_others() -> None:
    group: SingleFlight[str] = SingleFlight()
    calls = Calls()
    first, second = await caller(group, calls, "k", "a"), await caller(group, calls, "k", "b")
    first.cancel()  # the caller that started the call: its item ended
    await turn()
    with pytest.raises(CANCELLED):
        await settle(first)
    flight, pending = calls.started[0]
    assert flight.tags == ["b"]
    assert calls.cancelled == 0
    pending.callback("answer")
    assert await settle(second) == ("answer", True)


@pytest_twisted.ensureDeferred
async def test_the_call_is_cancelled_once_the_last_caller_has_left() -> None:
    group: SingleFlight[str] = SingleFlight()
    calls = Calls()
    first, second = await caller(group, calls, "k"), await caller(group, calls, "k")
    second.cancel()
    await turn()
    assert calls.cancelled == 0
    first.cancel()
    await turn()
    assert calls.cancelled == 1
    for d in (first, second):
        with pytest.raises(CANCELLED):
            await settle(d)
    assert not group.in_flight("k")
    # The key is free: a new caller starts a new call.
    third = await caller(group, calls, "k")
    assert len(calls.started) == 2
    calls.started[1][1].callback("again")
    assert await settle(third) == ("again", False)


@pytest_twisted.ensureDeferred
async def test_a_caller_after_the_call_finished_starts_a_new_one() -> None:
    group: SingleFlight[str] = SingleFlight()
    calls = Calls()
    first = await caller(group, calls, "k")
    calls.started[0][1].callback("one")
    assert await settle(first) == ("one", False)
    second = await caller(group, calls, "k")
    assert len(calls.started) == 2
    calls.started[1][1].callback("two")
    assert await settle(second) == ("two", False)
