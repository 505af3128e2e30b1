"""The Deferred/coroutine conversions: Scrapy's contract, under whichever reactor runs."""

from __future__ import annotations

import asyncio

import pytest
import pytest_twisted
from scrapy.utils.reactor import is_asyncio_reactor_installed
from twisted.internet.defer import Deferred, succeed

from scrapy_apigw.deferreds import deferred_from_coro, maybe_deferred_to_future


def later(value: object) -> Deferred[object]:
    """A Deferred fired with *value* on the next reactor turn."""
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    return deferLater(reactor, 0, lambda: value)


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
