"""The Deferred/coroutine conversions: Scrapy's contract, under whichever reactor runs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import pytest_twisted
from scrapy.utils.reactor import is_asyncio_reactor_installed
from twisted.internet.defer import Deferred, succeed

from scrapy_apigw.deferreds import (
    deferred_from_coro,
    fail,
    maybe_deferred_to_future,
    new_waiter,
    settle,
    settled,
    start_task,
)


def later(value: object) -> Deferred[object]:
    """A Deferred fired with *value* on the next reactor turn."""
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    return deferLater(reactor, 0, lambda: value)


def running_reactor() -> Any:
    """The installed reactor (typed loosely: its zope interfaces confuse mypy)."""
    from twisted.internet import reactor

    return reactor


# The test bodies run as Deferred coroutines (pytest-twisted): what is tested runs in a
# coroutine started by deferred_from_coro, as the gateway's code runs in a crawl, and the body
# awaits its Deferred.


@pytest_twisted.ensureDeferred
async def test_a_deferred_is_awaited_with_its_result() -> None:
    async def work() -> object:
        return await maybe_deferred_to_future(later("answer"))

    assert await deferred_from_coro(work()) == "answer"


@pytest_twisted.ensureDeferred
async def test_a_failed_deferred_raises_its_error_where_awaited() -> None:
    async def work() -> str:
        failed: Deferred[None] = Deferred()
        failed.errback(ValueError("boom"))
        try:
            await maybe_deferred_to_future(failed)
        except ValueError as exc:
            return f"raised {exc}"
        return "did not raise"

    assert await deferred_from_coro(work()) == "raised boom"


@pytest_twisted.ensureDeferred
async def test_under_the_asyncio_reactor_a_future_of_the_running_loop_is_awaited() -> None:
    async def work() -> tuple[type, bool, object]:
        awaited = maybe_deferred_to_future(succeed(1))
        on_running_loop = (
            isinstance(awaited, asyncio.Future) and awaited.get_loop() is asyncio.get_running_loop()
        )
        return type(awaited), on_running_loop, await awaited

    kind, on_running_loop, value = await deferred_from_coro(work())
    assert value == 1
    if is_asyncio_reactor_installed():
        assert issubclass(kind, asyncio.Future) and on_running_loop
    else:  # Twisted's default reactor awaits Deferreds themselves
        assert issubclass(kind, Deferred)


@pytest_twisted.ensureDeferred
async def test_a_coroutine_becomes_a_deferred_of_its_result() -> None:
    async def work() -> str:
        return str(await maybe_deferred_to_future(later("done")))

    d = deferred_from_coro(work())
    assert isinstance(d, Deferred)
    assert await d == "done"


@pytest_twisted.ensureDeferred
async def test_a_coroutine_error_fails_its_deferred() -> None:
    async def work() -> None:
        await maybe_deferred_to_future(later(None))
        raise KeyError("missing")

    with pytest.raises(KeyError, match="missing"):
        await deferred_from_coro(work())


def test_a_deferred_given_is_returned_as_is() -> None:
    d: Deferred[int] = succeed(3)
    assert deferred_from_coro(d) is d


def test_outside_the_running_loop_scrapys_conversion_decides() -> None:
    # No running loop here: the same object Scrapy's maybe_deferred_to_future gives (the
    # Deferred itself under the default reactor, a Future under the asyncio one).
    from scrapy.utils.defer import maybe_deferred_to_future as scrapys

    d: Deferred[int] = succeed(4)
    ours, theirs = maybe_deferred_to_future(d), scrapys(succeed(4))
    assert type(ours) is type(theirs)
    if isinstance(ours, asyncio.Future):
        ours.cancel()
        assert isinstance(theirs, asyncio.Future)
        theirs.cancel()


@pytest_twisted.ensureDeferred
async def test_a_waiter_is_awaited_as_is_and_settled_later() -> None:
    reactor = running_reactor()

    async def work() -> tuple[type, bool, bool, object]:
        waiter = new_waiter()
        before = settled(waiter)
        reactor.callLater(0, settle, waiter, "late")
        value = await waiter
        return type(waiter), before, settled(waiter), value

    kind, before, after, value = await deferred_from_coro(work())
    assert (before, after, value) == (False, True, "late")
    # A Future of the running loop under asyncio, a Deferred under the default reactor.
    expected = asyncio.Future if is_asyncio_reactor_installed() else Deferred
    assert issubclass(kind, expected)


@pytest_twisted.ensureDeferred
async def test_a_failed_waiter_raises_its_error_where_awaited() -> None:
    reactor = running_reactor()

    async def work() -> str:
        waiter = new_waiter()
        reactor.callLater(0, fail, waiter, ValueError("no reply"))
        try:
            await waiter
        except ValueError as exc:
            return f"raised {exc}"
        return "did not raise"

    assert await deferred_from_coro(work()) == "raised no reply"


@pytest_twisted.ensureDeferred
async def test_a_cancelled_waiter_counts_as_settled() -> None:
    async def work() -> bool:
        waiter = new_waiter()
        waiter.cancel()
        if isinstance(waiter, Deferred):
            waiter.addErrback(lambda _: None)
        return settled(waiter)

    assert await deferred_from_coro(work()) is True


@pytest_twisted.ensureDeferred
async def test_a_started_task_runs_concurrently_and_is_awaited_or_cancelled() -> None:
    steps: list[str] = []

    async def step(name: str) -> str:
        steps.append(f"{name} started")
        await maybe_deferred_to_future(later(None))
        steps.append(f"{name} done")
        return name

    async def work() -> tuple[str, bool]:
        first, second = start_task(step("first")), start_task(step("second"))
        second.cancel()
        if isinstance(second, Deferred):
            second.addErrback(lambda _: None)
        answer = await first
        await maybe_deferred_to_future(later(None))  # the cancelled one's turn has passed
        return answer, settled(second)

    answer, cancelled = await deferred_from_coro(work())
    assert answer == "first" and cancelled
    # The cancelled one never finished (under asyncio it never started: it was cancelled
    # before the loop's next turn; the default reactor runs it up to its first await at once).
    assert steps[0] == "first started"
    assert "first done" in steps and "second done" not in steps


@pytest_twisted.ensureDeferred
async def test_a_deferred_or_future_given_to_start_task_is_awaited_too() -> None:
    async def work() -> object:
        return await start_task(later("from a deferred"))

    assert await deferred_from_coro(work()) == "from a deferred"
