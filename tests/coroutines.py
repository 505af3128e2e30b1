"""Driving coroutines in synchronous tests."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any


def finish(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run *coro* to its end and return its value; it must never suspend (nothing to wait for:
    no provider call, no shared limits). Raises AssertionError if it suspends."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise AssertionError("the coroutine suspended")
