"""The Twisted side of the sandbox: an HTTP server around a :class:`Dispatcher`.

Use it in-process, inside a running reactor (an ``async def`` test under pytest-twisted, or a
Scrapy component)::

    sandbox = Sandbox(SandboxConfig(speed=20))
    url = await sandbox.start()          # "http://127.0.0.1:<port>"
    ...
    await sandbox.stop()

``twisted.internet.reactor`` is imported inside ``start()``/``stop()`` only (the ``Site`` too,
as building one imports the reactor), so importing this module or creating a ``Sandbox`` never
installs a reactor. Latency faults use ``reactor.callLater``; nothing here blocks.
"""

from __future__ import annotations

import asyncio
from typing import Any
from weakref import WeakSet

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from scrapy_apigw.sandbox.catalog import Catalog
from scrapy_apigw.sandbox.config import SandboxConfig
from scrapy_apigw.sandbox.dispatch import Dispatcher
from scrapy_apigw.sandbox.http import Reply

__all__ = ["Sandbox"]


def _reactor() -> Any:
    """The installed reactor, imported lazily (typed loosely: zope interfaces confuse mypy)."""
    from twisted.internet import reactor

    return reactor


async def _wait(d: Deferred[Any]) -> Any:
    """Await a Deferred from a coroutine driven by Twisted or by an asyncio task alike."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    if task is not None:
        return await d.asFuture(asyncio.get_running_loop())
    return await d


def _write_head(request: Request, reply: Reply) -> None:
    reason = reply.reason.encode("latin-1") if reply.reason else None
    request.setResponseCode(reply.status, reason)
    request.setHeader(b"content-type", reply.content_type.encode("latin-1"))
    for name, value in reply.headers:
        request.responseHeaders.addRawHeader(name.encode("latin-1"), value.encode("latin-1"))


class _Root(Resource):
    """One leaf resource answering every path through the dispatcher."""

    isLeaf = True

    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__()
        self._sandbox = sandbox

    def render(self, request: Request) -> bytes | int:
        return self._sandbox._render(request)


class _Site(Site):
    """A ``Site`` that remembers its connections so ``stop()`` can close them."""

    noisy = False

    def __init__(self, resource: Resource) -> None:
        super().__init__(resource, logPath=None)
        self.connections: WeakSet[Protocol] = WeakSet()

    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        if protocol is not None:
            self.connections.add(protocol)
        return protocol

    def log(self, request: Any) -> None:
        """No access log: the sandbox keeps its own request log."""


class Sandbox:
    """The provider sandbox as an HTTP server in the running reactor.

    Args:
        config: settings; the defaults listen on 127.0.0.1, a free port, speed 1.
        catalog: an already loaded catalog (default: load ``config.catalog_path``).

    Attributes:
        url: base URL once started (``""`` before).
        dispatcher: the request handling core (providers, faults, log).
    """

    def __init__(self, config: SandboxConfig | None = None, catalog: Catalog | None = None) -> None:
        self.config = config if config is not None else SandboxConfig()
        self.dispatcher = Dispatcher(self.config, catalog)
        self.url = ""
        self._site: _Site | None = None  # built in start(): Site() imports the reactor
        self._port: Any = None  # IListeningPort
        self._delayed: set[Any] = set()  # IDelayedCall

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> str:
        """Listen on ``config.host:config.port`` and return the base URL."""
        if self._port is not None:
            return self.url
        if self._site is None:
            self._site = _Site(_Root(self))
        self._port = _reactor().listenTCP(self.config.port, self._site, interface=self.config.host)
        address = self._port.getHost()
        host = getattr(address, "host", self.config.host)
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        self.url = f"http://{host}:{getattr(address, 'port', self.config.port)}"
        return self.url

    async def stop(self) -> None:
        """Stop listening, drop open connections and cancel delayed answers."""
        for call in list(self._delayed):
            if call.active():
                call.cancel()
        self._delayed.clear()
        for protocol in list(self._site.connections if self._site is not None else ()):
            # Site wraps each HTTPChannel in a protocol proxy that holds it as ``_channel``.
            channel = getattr(protocol, "_channel", protocol)
            transport = getattr(channel, "transport", None)
            if transport is not None and getattr(channel, "connected", True):
                transport.abortConnection()
        if self._port is not None:
            port, self._port = self._port, None
            result = port.stopListening()
            if isinstance(result, Deferred):
                await _wait(result)

    # -- control ------------------------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        """The served catalog."""
        return self.dispatcher.catalog

    @property
    def log(self) -> list[dict[str, Any]]:
        """Copies of the request records so far."""
        return self.dispatcher.log.records()

    def set_faults(self, provider: str, **faults: Any) -> dict[str, Any]:
        """Merge *faults* into *provider*'s faults (keys as ``POST /_sandbox/faults``)."""
        self.dispatcher.faults.set(provider, **faults)
        return self.dispatcher.faults.snapshot()[provider]

    def clear_faults(self, provider: str) -> None:
        """Remove every fault of *provider*."""
        self.dispatcher.faults.clear(provider)

    def reset(self) -> None:
        """Clear the log, the faults and the rate-limit state."""
        self.dispatcher.reset()

    # -- HTTP ---------------------------------------------------------------------------------

    def _render(self, request: Request) -> bytes | int:
        headers = {
            name.decode("latin-1").lower(): values[0].decode("latin-1")
            for name, values in request.requestHeaders.getAllRawHeaders()
            if values
        }
        uri = request.uri.decode("latin-1")
        raw_path, _, raw_query = uri.partition("?")
        if "://" in raw_path:  # absolute-form request target
            raw_path = "/" + raw_path.split("://", 1)[1].partition("/")[2]
        body = request.content.read() if request.content is not None else b""
        base_url = f"http://{headers['host']}" if headers.get("host") else self.url
        reply, delay = self.dispatcher.handle(
            request.method.decode("latin-1"), raw_path, raw_query, headers, body, base_url
        )
        if delay <= 0:
            _write_head(request, reply)
            return reply.body
        call = _reactor().callLater(delay, self._finish, request, reply)
        self._delayed.add(call)

        def cancel(failure: Any) -> None:  # the client went away before the delayed answer
            if call.active():
                call.cancel()

        request.notifyFinish().addErrback(cancel)
        return NOT_DONE_YET

    def _finish(self, request: Request, reply: Reply) -> None:
        self._delayed = {c for c in self._delayed if c.active()}
        _write_head(request, reply)
        request.setHeader(b"content-length", str(len(reply.body)).encode())
        if request.method != b"HEAD":
            request.write(reply.body)
        request.finish()
