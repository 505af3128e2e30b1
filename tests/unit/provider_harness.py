"""Test harness shared by the provider client unit tests (``test_provider_*.py``).

The clients never touch the network: they build :class:`ApiCall` objects and parse
:class:`ApiAnswer` objects. These tests answer the calls from real recorded provider bodies in
``../shared/fixtures`` through :class:`FakeFetch`, which plays the transport: it records each call,
routes it to a ``(status, body)`` pair, and decides the answer's kind with the client's own
``classify``, as the real transport does (:data:`ANSWER_KINDS`), raising ``ProviderUnavailable``
for the other outcomes, and drops from an ok answer what the provider declares its client never
reads (``ProviderSpec.unread_keys``), as the transport does too. The fake fetch never suspends,
so :func:`run` drives a client's coroutine to the end without an event loop.

Import it as ``from provider_harness import ...``: pytest puts ``tests/unit`` on ``sys.path``
(rootdir-relative ``prepend`` import mode, no ``__init__.py``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import pytest
from coroutines import finish

from scrapy_apigw.core.outcome import Outcome
from scrapy_apigw.core.payload import drop_keys
from scrapy_apigw.exceptions import ProviderUnavailable
from scrapy_apigw.providers.base import (
    ANSWER_KINDS,
    ApiAnswer,
    ApiCall,
    Fetch,
    ProviderClient,
    ProviderResult,
    TrackContext,
)
from scrapy_apigw.providers.clients import unread_keys_for

__all__ = ["FIXTURES", "FakeFetch", "Route", "enrich", "load", "routes"]

#: The recorded provider bodies, checked out next to this repository (``../shared/fixtures``).
FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"

#: Maps one call to the ``(HTTP status, decoded JSON body)`` the fake transport answers with.
Route = Callable[[ApiCall], tuple[int, Any]]


class Classifier(Protocol):
    """Anything that classifies an HTTP exchange as a provider client does."""

    def classify(self, status: int, data: Any) -> Outcome: ...


C = TypeVar("C", bound=Classifier)


def load(name: str) -> Any:
    """The recorded fixture *name* (relative to :data:`FIXTURES`), decoded; skip when absent."""
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"recorded fixture {name} absent ({FIXTURES} not checked out)")
    return json.loads(path.read_text(encoding="utf-8"))


class FakeFetch(Generic[C]):
    """Records calls; *route* maps a call to ``(status, body)``; classify decides the kind."""

    def __init__(self, client: C, route: Route) -> None:
        self.client = client
        self.route = route
        self.calls: list[ApiCall] = []

    async def __call__(self, call: ApiCall) -> ApiAnswer:
        self.calls.append(call)
        status, data = self.route(call)
        outcome = self.client.classify(status, data)
        if outcome not in ANSWER_KINDS:
            raise ProviderUnavailable(call.provider, f"{outcome.value} (HTTP {status})")
        kind = ANSWER_KINDS[outcome]
        if kind == "ok":
            # As the transport does: what the provider declares its client never reads is
            # gone before the client reads (a client that needed it would fail its tests).
            data = drop_keys(copy.deepcopy(data), unread_keys_for(call.provider))
        return ApiAnswer(kind, status, data)

    @property
    def paths(self) -> list[str]:
        """The path of each recorded call, in order."""
        return [c.path for c in self.calls]


def routes(table: dict[str, tuple[int, Any]]) -> Route:
    """Answer each call from *table* by its path; any other path fails the test."""

    def route(call: ApiCall) -> tuple[int, Any]:
        if call.path not in table:
            raise AssertionError(f"unexpected call {call}")
        return table[call.path]

    return route


def enrich(client: ProviderClient, track: TrackContext, fetch: Fetch) -> ProviderResult:
    """Run ``client.enrich(track, fetch)`` to the end (see :func:`run`)."""
    return finish(client.enrich(track, fetch))  # the fake fetch never suspends
