"""Helpers of the admin tests (imported by module name: pytest puts this directory on sys.path).

A private harness until the operations root (``ops/web.py: build_root``) is wired in: the
children of :func:`scrapy_apigw.ops.admin.ops_children` mounted in a ``twisted.web`` Site on a
free loopback port, spoken to with treq over real sockets.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any

import treq
from scrapy.settings import Settings
from scrapy.utils.defer import deferred_from_coro
from twisted.internet.defer import Deferred
from twisted.web.client import HTTPConnectionPool
from twisted.web.resource import Resource
from twisted.web.server import Site

from scrapy_apigw.settings import GatewaySettings

#: The admin token of the tests: it must never show in an answer or a log line.
TOKEN = "t0ken-5ecret-ad41e5a5"
AUTH = {b"Authorization": [f"Bearer {TOKEN}".encode()]}


def task(awaitable: Awaitable[Any], timeout: float = 20.0) -> Deferred[Any]:
    """Run *awaitable* as an asyncio Task (store and cache coroutines await asyncio Futures);
    fail after *timeout* s instead of hanging."""
    from twisted.internet import reactor

    d = deferred_from_coro(awaitable)
    d.addTimeout(timeout, reactor)
    return d


def gateway_settings(values: Mapping[str, Any]) -> GatewaySettings:
    """``APIGW_*`` *values* parsed as a crawl would (no environment)."""
    return GatewaySettings.from_settings(Settings(dict(values)), environ={})


@dataclass
class Answer:
    """One HTTP answer: status, headers (lower-case names), body and its JSON."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def text(self) -> str:
        return "\n".join(f"{k}: {v}" for k, v in self.headers.items()) + "\n" + self.body.decode()


class Server:
    """*children* under a root Resource, listening on 127.0.0.1:<free port>."""

    def __init__(self, children: Mapping[bytes, Resource]) -> None:
        from twisted.internet import reactor

        root = Resource()
        for name, child in children.items():
            root.putChild(name, child)
        self.port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"
        self.answers: list[Answer] = []

    async def call(
        self, method: str, path: str, token: str | None = TOKEN, **kwargs: Any
    ) -> Answer:
        """Send one request (with the bearer *token*, None: no Authorization) and return the
        answer (also kept in :attr:`answers`)."""
        from twisted.internet import reactor

        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers[b"Authorization"] = [f"Bearer {token}".encode()]
        pool = HTTPConnectionPool(reactor, persistent=False)
        d = treq.request(method, self.base + path, headers=headers, pool=pool, **kwargs)
        d.addTimeout(20, reactor)
        response = await d
        body = await treq.content(response)
        answer = Answer(
            response.code,
            {
                k.decode().lower(): b", ".join(v).decode()
                for k, v in response.headers.getAllRawHeaders()
            },
            body,
        )
        self.answers.append(answer)
        return answer

    async def close(self) -> None:
        await self.port.stopListening()
