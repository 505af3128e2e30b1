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

With ``SandboxConfig(provider_ports=True)`` every provider is also served on a port of its own
(``Sandbox.hosts``; ``GET /_sandbox/hosts``), as if it were its own host. That port is what the
``connection: "refused"`` fault acts on: the server stops listening there and drops the
connections it had, so a client's connection attempt gets a real ECONNREFUSED while every other
provider keeps answering. Clearing the fault listens again on the same port number. The other
connection faults (reset, reset mid-body, hang, trickle) act on single requests, on any port.
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
from scrapy_apigw.sandbox.dispatch import Delivery, Dispatcher
from scrapy_apigw.sandbox.http import Reply

#: Seconds between sending the first half of a ``reset_mid_body`` answer and the reset, so the
#: half is on the wire before the RST (an abort discards what is still buffered).
MID_BODY_RESET_DELAY = 0.1
#: A ``trickle`` sends the body in at most this many pieces, evenly spaced.
TRICKLE_PIECES = 50

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


def _url(address: Any, default_host: str, default_port: int) -> str:
    """``http://host:port`` of a listening port's address (wildcards as loopback)."""
    host = getattr(address, "host", default_host)
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{getattr(address, 'port', default_port)}"


def _abort(request: Request) -> None:
    """Reset the connection of *request* (RST: ``abortConnection`` sets ``SO_LINGER`` 0)."""
    transport = getattr(request.channel, "transport", None)
    if transport is not None:
        transport.abortConnection()


def _write_head(request: Request, reply: Reply) -> None:
    reason = reply.reason.encode("latin-1") if reply.reason else None
    request.setResponseCode(reply.status, reason)
    request.setHeader(b"content-type", reply.content_type.encode("latin-1"))
    for name, value in reply.headers:
        request.responseHeaders.addRawHeader(name.encode("latin-1"), value.encode("latin-1"))


class _Root(Resource):
    """One leaf resource answering every path through the dispatcher.

    Args:
        sandbox: the server.
        only: the provider whose own port this resource serves (``None``: the main port).
    """

    isLeaf = True

    def __init__(self, sandbox: Sandbox, only: str | None = None) -> None:
        super().__init__()
        self._sandbox = sandbox
        self._only = only

    def render(self, request: Request) -> bytes | int:
        return self._sandbox._render(request, self._only)


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

    def abort_connections(self) -> None:
        """Reset every open connection of this site."""
        for protocol in list(self.connections):
            # Site wraps each HTTPChannel in a protocol proxy that holds it as ``_channel``.
            channel = getattr(protocol, "_channel", protocol)
            transport = getattr(channel, "transport", None)
            if transport is not None and getattr(channel, "connected", True):
                transport.abortConnection()


class _ProviderPort:
    """The own port of one provider: its site, its port number and its listening port."""

    def __init__(self, site: _Site, number: int) -> None:
        self.site = site
        self.number = number
        self.listening: Any = None  # IListeningPort while listening


class Sandbox:
    """The provider sandbox as an HTTP server in the running reactor.

    Args:
        config: settings; the defaults listen on 127.0.0.1, a free port, speed 1.
        catalog: an already loaded catalog (default: load ``config.catalog_path``).

    Attributes:
        url: base URL once started (``""`` before).
        hosts: provider -> ``http://host:port`` of its own port (``config.provider_ports``;
            empty otherwise). The provider's paths keep their prefix there, e.g.
            ``hosts["discogs"] + "/discogs/releases/1"``.
        dispatcher: the request handling core (providers, faults, log).
    """

    def __init__(self, config: SandboxConfig | None = None, catalog: Catalog | None = None) -> None:
        self.config = config if config is not None else SandboxConfig()
        self.dispatcher = Dispatcher(self.config, catalog)
        self.url = ""
        self.hosts: dict[str, str] = {}
        self._site: _Site | None = None  # built in start(): Site() imports the reactor
        self._port: Any = None  # IListeningPort
        self._provider_ports: dict[str, _ProviderPort] = {}
        self._delayed: set[Any] = set()  # IDelayedCall
        self._held: dict[Request, str] = {}  # "hang" requests -> their provider

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> str:
        """Listen on ``config.host:config.port`` (and the providers' own ports if configured);
        return the base URL."""
        if self._port is not None:
            return self.url
        reactor = _reactor()
        if self._site is None:
            self._site = _Site(_Root(self))
        self._port = reactor.listenTCP(self.config.port, self._site, interface=self.config.host)
        self.url = _url(self._port.getHost(), self.config.host, self.config.port)
        if self.config.provider_ports:
            for name in self.dispatcher.providers:
                own = self._provider_ports.get(name)
                if own is None:
                    own = self._provider_ports[name] = _ProviderPort(_Site(_Root(self, name)), 0)
                own.listening = reactor.listenTCP(own.number, own.site, interface=self.config.host)
                address = own.listening.getHost()
                own.number = getattr(address, "port", own.number)
                self.hosts[name] = _url(address, self.config.host, own.number)
            self.dispatcher.hosts = dict(self.hosts)
            await self._sync_faults()
        return self.url

    async def stop(self) -> None:
        """Stop listening, drop open connections (held ones too) and cancel delayed answers."""
        for call in list(self._delayed):
            if call.active():
                call.cancel()
        self._delayed.clear()
        self._held.clear()
        sites = [self._site] if self._site is not None else []
        sites += [own.site for own in self._provider_ports.values()]
        for site in sites:
            site.abort_connections()
        ports = [self._port] + [own.listening for own in self._provider_ports.values()]
        self._port = None
        for own in self._provider_ports.values():
            own.listening = None
        for port in ports:
            if port is not None:
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
        """Merge *faults* into *provider*'s faults (keys as ``POST /_sandbox/faults``).

        A ``refused`` port stops accepting at once and is closed within the current reactor
        turn (over HTTP, ``POST /_sandbox/faults`` answers only once it is closed).
        """
        self.dispatcher.faults.set(provider, **faults)
        self._sync_now()
        return self.dispatcher.faults.snapshot()[provider]

    def clear_faults(self, provider: str) -> None:
        """Remove every fault of *provider* (a refused port listens again)."""
        self.dispatcher.faults.clear(provider)
        self._sync_now()

    def reset(self) -> None:
        """Clear the log, the faults and the rate-limit state."""
        self.dispatcher.reset()
        self._sync_now()

    def _sync_now(self) -> None:
        from twisted.internet.defer import ensureDeferred

        ensureDeferred(self._sync_faults())

    async def _sync_faults(self) -> None:
        """Make the listening ports and held requests follow the current faults.

        A provider whose ``connection`` is ``"refused"`` stops listening on its own port and
        its open connections are reset; one that is no longer refused listens again on the same
        port number. Requests held by ``hang`` are reset once their provider no longer hangs.
        """
        faults = self.dispatcher.faults
        for request, provider in list(self._held.items()):
            if faults.get(provider).connection != "hang":
                del self._held[request]
                _abort(request)
        if self._port is None:
            return
        for name, own in self._provider_ports.items():
            refused = faults.get(name).connection == "refused"
            if refused and own.listening is not None:
                port, own.listening = own.listening, None
                result = port.stopListening()
                own.site.abort_connections()
                if isinstance(result, Deferred):
                    await _wait(result)
            elif not refused and own.listening is None:
                own.listening = _reactor().listenTCP(
                    own.number, own.site, interface=self.config.host
                )

    # -- HTTP ---------------------------------------------------------------------------------

    def _render(self, request: Request, only: str | None = None) -> bytes | int:
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
        delivery = self.dispatcher.handle(
            request.method.decode("latin-1"), raw_path, raw_query, headers, body, base_url, only
        )
        if delivery.provider is None and request.method == b"POST":
            # An admin call may have changed faults: answer once ports and held requests
            # follow them, so a client that sets "refused" then connects is refused.
            from twisted.internet.defer import ensureDeferred

            synced = ensureDeferred(self._sync_faults())
            synced.addBoth(lambda _: self._deliver(request, delivery))
            return NOT_DONE_YET
        if delivery.latency <= 0 and delivery.connection is None:
            _write_head(request, delivery.reply)
            return delivery.reply.body
        if delivery.latency > 0:
            self._later(request, delivery.latency, self._deliver, request, delivery)
        else:
            self._deliver(request, delivery)
        return NOT_DONE_YET

    def _later(self, request: Request, delay: float, func: Any, *args: Any) -> None:
        """Call ``func(*args)`` in *delay* s, unless the client goes away or the server stops."""
        call = _reactor().callLater(delay, func, *args)
        self._delayed.add(call)

        def cancel(failure: Any) -> None:  # the client went away before the delayed step
            if call.active():
                call.cancel()

        request.notifyFinish().addErrback(cancel)

    def _deliver(self, request: Request, delivery: Delivery) -> None:
        """Send *delivery* now, broken as its connection fault says."""
        self._delayed = {c for c in self._delayed if c.active()}
        if getattr(request, "_disconnected", False):  # the client gave up meanwhile
            return
        reply, connection = delivery.reply, delivery.connection
        if connection == "reset":
            _abort(request)
        elif connection == "hang":
            self._held[request] = delivery.provider or ""
            request.notifyFinish().addBoth(lambda _: self._held.pop(request, None))
        elif connection == "reset_mid_body":
            _write_head(request, reply)
            request.setHeader(b"content-length", str(len(reply.body)).encode())
            request.write(reply.body[: len(reply.body) // 2])
            self._later(request, MID_BODY_RESET_DELAY, _abort, request)
        elif connection == "trickle":
            _write_head(request, reply)
            request.setHeader(b"content-length", str(len(reply.body)).encode())
            request.write(b"")  # the status line and headers go at once
            pieces = max(1, min(TRICKLE_PIECES, len(reply.body)))
            size = -(-len(reply.body) // pieces)  # ceiling division
            step = delivery.trickle_seconds / pieces
            for n in range(pieces):
                piece = reply.body[n * size : (n + 1) * size]
                self._later(request, step * (n + 1), self._trickle, request, piece, n == pieces - 1)
        else:
            _write_head(request, reply)
            request.setHeader(b"content-length", str(len(reply.body)).encode())
            if request.method != b"HEAD":
                request.write(reply.body)
            request.finish()

    def _trickle(self, request: Request, piece: bytes, last: bool) -> None:
        if piece:
            request.write(piece)
        if last:
            request.finish()
