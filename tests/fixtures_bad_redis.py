"""Servers that a Redis client must survive: real sockets on 127.0.0.1, no Redis inside.

- :class:`BadServer` accepts TCP connections and then never answers (``reply=None``), or
  answers every chunk it receives with fixed bytes that are not RESP (``reply=b"..."``). With a
  ``tls`` certificate it completes the TLS handshake first and then goes silent: it reads and
  discards what comes, never answering a command nor the client's TLS ``close_notify``, so a
  client waiting for a clean TLS shutdown waits forever.
- :class:`SlowProxy` passes a real Redis's replies on only ``delay`` seconds late (a slow or
  overloaded server; the delay can change at any time).
- :func:`tls_certificate` makes a CA and a server certificate for ``localhost``/127.0.0.1.
- :func:`redis_leftovers` lists what a Redis client left behind in the reactor (connections to a
  port, reconnection timers); :func:`client_connections` only the connections.

Each server runs in a thread with blocking sockets, so it answers (or fails to) whatever the
reactor is doing. Like :mod:`fixtures_redis`, this module must not import txredisapi or the
reactor at module level (pytest-twisted installs the reactor after conftest imports).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import queue
import selectors
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BadServer",
    "SlowProxy",
    "TlsFiles",
    "client_connections",
    "redis_leftovers",
    "tls_certificate",
    "wait_until",
]


@dataclass(frozen=True)
class TlsFiles:
    """PEM files made by :func:`tls_certificate`: the CA to trust, the server's chain and key."""

    ca: Path
    cert: Path
    key: Path


def tls_certificate(directory: Path) -> TlsFiles:
    """Write a fresh CA and a server certificate (``localhost``, 127.0.0.1) under *directory*."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def certificate(subject: str, key: Any, issuer: Any = None, issuer_key: Any = None) -> Any:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer or name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
        )
        if issuer is None:
            builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
        else:
            san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(san), False)
        return builder.sign(issuer_key or key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = certificate("apigw test CA", ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = certificate("localhost", server_key, ca.subject, ca_key)
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


class _Connection:
    def __init__(self, sock: socket.socket, tls: ssl.SSLContext | None) -> None:
        self.sock = sock
        self.tls: ssl.SSLObject | None = None
        if tls is not None:
            self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            self.tls = tls.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.handshake_done = tls is None

    def received(self, data: bytes, reply: bytes | None) -> None:
        if not self.handshake_done:
            assert self.tls is not None
            self.incoming.write(data)
            try:
                self.tls.do_handshake()
                self.handshake_done = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError:
                pass  # a client that gave up; it closes the socket next
            self.sock.sendall(self.outgoing.read())
            return
        # After the handshake a TLS connection's bytes are never decrypted: no command is
        # answered and the client's close_notify gets no reply.
        if reply is not None and self.tls is None:
            self.sock.sendall(reply)


class BadServer:
    """A TCP listener on 127.0.0.1 that accepts and then never speaks Redis.

    Args:
        reply: ``None`` to never answer; else bytes sent back for every chunk received.
        tls: certificate files: complete a TLS handshake first (then never answer).

    Attributes:
        port: the listening port.
        accepted: connections accepted so far.
    """

    def __init__(self, reply: bytes | None = None, tls: TlsFiles | None = None) -> None:
        self.reply = reply
        self._tls: ssl.SSLContext | None = None
        if tls is not None:
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(tls.cert, tls.key)
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port: int = self._listener.getsockname()[1]
        self.accepted = 0
        self._open: dict[socket.socket, _Connection] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"bad-server-{self.port}")
        self._thread.daemon = True
        self._thread.start()

    @property
    def open_connections(self) -> int:
        """Connections accepted and not yet closed by the client."""
        with self._lock:
            return len(self._open)

    @property
    def handshakes(self) -> int:
        """Connections (still open) whose TLS handshake completed."""
        with self._lock:
            return sum(c.handshake_done for c in self._open.values())

    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ)
        while not self._stopping.is_set():
            for key, _ in selector.select(0.05):
                if key.fileobj is self._listener:
                    sock, _ = self._listener.accept()
                    with self._lock:
                        self.accepted += 1
                        self._open[sock] = _Connection(sock, self._tls)
                    selector.register(sock, selectors.EVENT_READ)
                    continue
                sock = key.fileobj  # type: ignore[assignment]
                try:
                    data = sock.recv(65536)
                    if data:
                        self._open[sock].received(data, self.reply)
                except OSError:
                    data = b""
                if not data:
                    selector.unregister(sock)
                    sock.close()
                    with self._lock:
                        del self._open[sock]
        selector.close()

    def stop(self) -> None:
        """Stop listening and close every connection."""
        self._stopping.set()
        self._thread.join(timeout=5)
        self._listener.close()
        with self._lock:
            for sock in self._open:
                sock.close()
            self._open.clear()


class SlowProxy:
    """A TCP proxy on 127.0.0.1 to a real Redis that holds every reply for :attr:`delay`
    seconds before passing it on (commands go through at once; order is kept).

    Args:
        upstream_port: the Redis server's port on 127.0.0.1.
        delay: seconds each reply is held after it came from Redis; change :attr:`delay` at any
            time (it applies to the replies already held too: at 0 they all go at once).

    Attributes:
        port: the listening port; ``url`` the Redis URL of the proxy.
    """

    def __init__(self, upstream_port: int, delay: float = 0.0) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._start(self._accept)

    def _start(self, target: Any, *args: Any) -> None:
        threading.Thread(target=target, args=args, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), 2.0)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            held: queue.Queue[tuple[float, bytes] | None] = queue.Queue()
            self._start(self._pump, client, upstream, None)
            self._start(self._pump, upstream, client, held)
            self._start(self._release, held, client, upstream)

    def _pump(
        self, source: socket.socket, sink: socket.socket, held: queue.Queue[Any] | None
    ) -> None:
        try:
            while data := source.recv(65536):
                if held is None:
                    sink.sendall(data)
                else:
                    held.put((time.monotonic(), data))
        except OSError:
            pass
        if held is not None:
            held.put(None)
        else:
            self._close(source, sink)

    def _release(
        self, held: queue.Queue[Any], client: socket.socket, upstream: socket.socket
    ) -> None:
        while (entry := held.get()) is not None:
            arrived, data = entry
            while (late := arrived + self.delay - time.monotonic()) > 0:
                time.sleep(min(late, 0.01))
            try:
                client.sendall(data)
            except OSError:
                break
        self._close(client, upstream)

    def _close(self, *sockets: socket.socket) -> None:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def stop(self) -> None:
        """Stop listening and close every connection."""
        self._stopping.set()
        self._listener.close()
        with self._lock:
            self._close(*self._sockets)
            self._sockets.clear()


def client_connections(port: int) -> list[Any]:
    """The reactor's connections (readers or writers) to *port* on the other side."""
    from twisted.internet import reactor

    found = []
    for selectable in {*reactor.getReaders(), *reactor.getWriters()}:  # type: ignore[attr-defined]
        try:
            peer = selectable.getPeer()
        except Exception:
            continue
        if getattr(peer, "port", None) == port:
            found.append(selectable)
    return found


def redis_leftovers(port: int) -> list[str]:
    """What the reactor still holds for a Redis client of *port*: its connections, connection
    attempts, reconnection timers (Twisted's ClientService) and txredisapi's timers. Empty after
    a clean close."""
    from twisted.internet import reactor

    found = [f"connection {c!r}" for c in client_connections(port)]
    for call in reactor.getDelayedCalls():  # type: ignore[attr-defined]
        func = call.func
        module = getattr(func, "__module__", None) or ""
        text = repr(call)
        # txredisapi's own timers; ClientService's reconnection (an automat state machine);
        # HostnameEndpoint's connection attempts.
        if (
            module.startswith("txredisapi")
            or "_Client._reconnect" in text
            or "HostnameEndpoint" in text
        ):
            found.append(f"timer {text}")
    return found


async def wait_until(condition: Any, timeout: float, what: str) -> None:
    """Return as soon as ``condition()`` is true (checked every 10 ms); fail after *timeout* s."""
    import time

    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await deferLater(reactor, 0.01, lambda: None)
