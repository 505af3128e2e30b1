"""A Redis connection pool (txredisapi) in which every operation has a time bound and every
failure says what went wrong.

Why not txredisapi's pool as it comes (txredisapi 1.6, Twisted 26):

- a command waits for a connection forever while Redis is down (``replyTimeout`` starts once a
  connection is usable), and a caller's own timeout cancels txredisapi's reply timer, so a
  connection whose server went silent is never dropped;
- ``rediss://`` to a plain Redis, or to a TLS server that stops answering: the TLS handshake, and
  closing a TLS connection (Twisted waits for the peer's ``close_notify``), wait forever, so
  ``disconnect()`` never returns and the crawl hangs at close;
- a timed-out ``AUTH``/``SELECT`` (a frozen server at connect time) stops reconnecting for good,
  like a refused password; and bytes that are not RESP end in an "Unhandled Error" traceback or
  a reply that never comes.

So :class:`RedisClient` builds txredisapi's ``RedisFactory`` itself with a protocol that bounds
the TLS handshake and the login, reports why a connection attempt failed, and treats a non-RESP
answer as a protocol error; it bounds each command and ``close()``, aborting what does not close
in time. txredisapi and the reactor are imported lazily (see :mod:`.redis`).
"""

from __future__ import annotations

import enum
import functools
import logging
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.python.failure import Failure

from scrapy_apigw.cache.base import CacheError
from scrapy_apigw.deferreds import maybe_deferred_to_future

if TYPE_CHECKING:
    from scrapy_apigw.cache.redis import RedisAddress

__all__ = ["RedisClient", "RedisFailure", "RedisProblem"]

logger = logging.getLogger(__name__)

_RESP_TYPES = "+-:$*"  # RESP2 reply types; txredisapi never asks for RESP3 (HELLO 3)


class RedisProblem(enum.Enum):
    """What kind of failure a :class:`RedisFailure` is."""

    #: No connection: refused, unreachable, DNS failure, TCP connect timeout, connection lost.
    UNREACHABLE = "unreachable"
    #: The ``rediss://`` TLS handshake failed or got no answer (a plain Redis, a bad certificate).
    TLS = "tls"
    #: Redis refused ``AUTH`` (wrong password or user) or ``SELECT`` (no such database).
    LOGIN = "login"
    #: The server answered bytes that are not the Redis protocol (RESP): not a Redis server.
    PROTOCOL = "protocol"
    #: Connected, but no reply within the time bound (server frozen, overloaded or silent).
    TIMEOUT = "timeout"
    #: Redis answered the command with an error reply (``-ERR``, ``WRONGTYPE``, ``NOSCRIPT``...).
    REPLY = "reply"


class RedisFailure(CacheError):
    """A Redis operation failed; the message is log-safe (no password, no value).

    Attributes:
        problem: the kind of failure. A command that failed for want of a connection carries the
            problem of the last connection attempt (e.g. ``TLS``) and names it in its message.
    """

    def __init__(self, problem: RedisProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem


def _where(address: RedisAddress) -> str:
    host = f"[{address.host}]" if ":" in address.host else address.host
    return f"{host}:{address.port}"


def _tls_failure(address: RedisAddress, reason: str) -> RedisFailure:
    if "certificate" in reason.lower() or "verification" in reason.lower():
        hint = "the server's certificate is not trusted"
    else:
        hint = "is the server speaking TLS?"
    return RedisFailure(
        RedisProblem.TLS, f"rediss:// handshake with {_where(address)} failed: {hint} ({reason})"
    )


def _reason(failure: Failure) -> str:
    """A short text for why a connection ended: the OpenSSL reasons, else the error message."""
    from OpenSSL import SSL

    value = failure.value
    if isinstance(value, SSL.Error) and value.args and isinstance(value.args[0], list):
        reasons = [str(entry[-1]) for entry in value.args[0] if entry]
        if reasons:
            return ", ".join(reasons)
    return failure.getErrorMessage() or type(value).__name__


def _encode_command(args: tuple[Any, ...], charset: str | None, errors: str) -> bytes | None:
    """*args* as one RESP command (an array of bulk strings), or None when an argument is not
    ``str``, ``bytes`` or ``int`` (txredisapi's own encoder then decides).

    The same bytes as txredisapi's ``_build_command`` for these types (``str`` encoded with the
    connection's *charset* and *errors*, ``int`` in decimal), in one ``join`` instead of two
    encoder calls and four ``bytearray.extend`` per argument: the fleet's acquire sends 16
    arguments on every request.

    Raises:
        UnicodeEncodeError: a ``str`` that *charset* cannot encode (the caller falls back).
    """
    if charset is None:
        return None
    parts = [b"*%d\r\n" % len(args)]
    append = parts.append
    for arg in args:
        kind = type(arg)
        if kind is str:
            data = arg.encode(charset, errors)
        elif kind is bytes:
            data = arg
        elif kind is int:
            data = b"%d" % arg
        else:
            return None
        append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


@functools.cache
def _pool_classes() -> tuple[type, type, type]:
    """Build the txredisapi subclasses on first use: txredisapi imports the reactor."""
    import txredisapi
    from twisted.internet import reactor, tcp
    from twisted.internet.error import ConnectingCancelledError
    from twisted.internet.interfaces import IHandshakeListener, IStreamClientEndpoint
    from twisted.internet.protocol import connectionDone
    from zope.interface import implementer

    @implementer(IHandshakeListener)
    class BoundedProtocol(txredisapi.BaseRedisProtocol):
        """txredisapi's protocol with a bounded, diagnosed connection set-up.

        The pure-Python base protocol is used even when hiredis is installed, so replies are
        parsed (and non-RESP bytes detected) the same way everywhere.
        """

        factory: Any
        password: str | None
        username: str | None
        dbid: int | None
        _tls: defer.Deferred[None] | None = None
        failure: RedisFailure | None = None  # why this connection failed, once reported

        #: Send each command from :meth:`execute_command` itself, not on the reactor's next
        #: turn (class attributes, so a benchmark can compare both in one process).
        write_now = True
        #: Encode commands with :func:`_encode_command` instead of txredisapi's encoder.
        fast_encode = True

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._rest: list[bytes] = []  # bytes after a bulk reply, parsed next (setLineMode)

        def _build_command(self, *args: Any, **kwargs: Any) -> bytes:
            if self.fast_encode:
                try:
                    command = _encode_command(args, self.charset, self.errors)
                except UnicodeEncodeError:
                    command = None  # txredisapi raises its own InvalidData for it
                if command is not None:
                    return command
            built: bytes = super()._build_command(*args, **kwargs)
            return built

        def execute_command(self, *args: Any, **kwargs: Any) -> Any:
            result = super().execute_command(*args, **kwargs)
            transport = self.transport
            if self.write_now and not self.pipelining and isinstance(transport, tcp.Connection):
                # Twisted only buffers a write until the reactor's next turn finds the socket
                # writable (always, on a connection with nothing queued): one more turn of the
                # event loop per command, behind whatever else is ready to run. Write now, as
                # the reactor would then. An error (the connection broke) leaves the bytes
                # buffered and the writer registered: the reactor's own doWrite meets the same
                # error and drops the connection as usual. Not under TLS, whose transport is
                # not a socket.
                transport.doWrite()
            return result

        def connectionMade(self) -> None:
            # Commands are small writes, often several in flight on one connection (an MGET, a
            # fleet script, a heartbeat): Nagle's algorithm would hold each one back until the
            # previous is acknowledged. redis-py and hiredis turn it off too.
            no_delay = getattr(self.transport, "setTcpNoDelay", None)
            if no_delay is not None:
                no_delay(True)
            # The base class would log in at once and stop reconnecting on any login failure;
            # here each step is bounded and only a refusal stops reconnecting.
            defer.Deferred.fromCoroutine(self._set_up()).addErrback(self._set_up_crashed)

        async def _set_up(self) -> None:
            client: RedisClient = self.factory.client
            try:
                if self.factory.tls:
                    await self._tls_handshake(client)
                if self.password is not None:
                    await self._login(client, "AUTH", self.auth(self.password, self.username))
                if self.dbid is not None:
                    await self._login(client, f"SELECT {self.dbid}", self.select(self.dbid))
            except RedisFailure as failure:
                if self.failure is None:  # else a protocol error has been reported already
                    self._failed(failure)
                if failure.problem is RedisProblem.LOGIN:
                    self.factory.stopTrying()  # a refused password will not get better
                if self.connected:
                    self.transport.abortConnection()
                return
            # Logged in: the base class now only marks the connection usable.
            self.password = self.dbid = None
            super().connectionMade()
            client._attempt_succeeded()

        def _set_up_crashed(self, failure: Failure) -> None:
            # A bug, not a server problem: say so, and drop the connection (it is made again).
            logger.error("Redis connection set-up failed: %s", failure.getTraceback())
            if self.connected:
                self.transport.abortConnection()

        async def _tls_handshake(self, client: RedisClient) -> None:
            self._tls = defer.Deferred()
            self._tls.addTimeout(client.timeout, reactor)
            try:
                await self._tls
            except defer.TimeoutError:
                raise _tls_failure(
                    client.address, f"no TLS answer within {client.timeout:g} s"
                ) from None
            except Exception:
                raise _tls_failure(client.address, _reason(Failure())) from None

        def handshakeCompleted(self) -> None:
            # Also called after a failed certificate check, which has begun aborting: then
            # connectionLost gives the reason.
            if self._tls is not None and not self._tls.called and not self.transport.disconnecting:
                self._tls.callback(None)

        async def _login(self, client: RedisClient, step: str, reply: Any) -> None:
            try:
                response = await reply  # bounded by replyTimeout; txredisapi aborts on expiry
                if isinstance(response, txredisapi.ResponseError):
                    raise response
            except txredisapi.ResponseError as exc:
                name = "auth" if step == "AUTH" else f"select database {self.dbid}"
                message = client.scrub(f"could not {name}: {exc}")
                raise RedisFailure(RedisProblem.LOGIN, message) from None
            except txredisapi.TimeoutError:
                raise RedisFailure(
                    RedisProblem.TIMEOUT, f"{step} got no reply within {client.timeout:g} s"
                ) from None
            except Exception as exc:  # the connection was lost (or aborted by _not_redis)
                raise RedisFailure(
                    RedisProblem.UNREACHABLE, f"{step} failed: {type(exc).__name__}: {exc}"
                ) from None

        def connectionLost(self, why: Failure = connectionDone) -> None:
            if self._tls is not None and not self._tls.called:
                self._tls.errback(why)
            super().connectionLost(why)

        def setLineMode(self, extra: bytes = b"") -> None:
            # txredisapi hands the bytes after each bulk reply back through
            # ``callLater(0, dataReceived)``, pausing the transport meanwhile: one reactor turn
            # and a reader removed and re-added per reply when several arrive in one read (a
            # pipelined burst, an MGET). Here they wait in ``_rest`` and :meth:`dataReceived`
            # goes on with them at once, in a loop (no recursion), in the same order.
            self.line_mode = 1
            if extra:
                self._rest.append(extra)

        def dataReceived(self, data: bytes, unpause: bool = False) -> Any:
            if self.failure is not None:
                return None  # being aborted: the rest is garbage too
            rest = self._rest
            try:
                why = super().dataReceived(data, unpause)
                while rest and not why and self.failure is None:
                    if self.transport is not None and self.transport.disconnecting:
                        break
                    why = super().dataReceived(rest.pop())
            except Exception as exc:  # e.g. UnicodeDecodeError on a binary "status line"
                self._not_redis(f"unreadable bytes: {exc}")
                why = None
            rest.clear()
            return why

        def lineReceived(self, line: str) -> Any:
            if self.failure is not None:
                return None
            if line and line[0] not in _RESP_TYPES:
                self._not_redis(f"a line starting with {line[:12]!r}")
                return None
            return super().lineReceived(line)

        def lineLengthExceeded(self, line: bytes) -> Any:
            self._not_redis(f"a line of more than {self.MAX_LENGTH} bytes")

        def _not_redis(self, what: str) -> None:
            if self.failure is not None:
                return
            where = _where(self.factory.client.address)
            self._failed(
                RedisFailure(
                    RedisProblem.PROTOCOL,
                    f"the server at {where} does not speak the Redis protocol (it sent {what})",
                )
            )
            self.transport.abortConnection()

        def _failed(self, failure: RedisFailure) -> None:
            self.failure = failure
            self.factory.client._attempt_failed(failure)

    class BoundedFactory(txredisapi.RedisFactory):
        protocol = BoundedProtocol

        def __init__(self, client: RedisClient, tls: bool, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.client = client
            self.tls = tls

    @implementer(IStreamClientEndpoint)
    class ReportingEndpoint:
        """Reports failed TCP connection attempts (which ClientService only retries)."""

        def __init__(self, endpoint: Any, client: RedisClient) -> None:
            self._endpoint = endpoint
            self._client = client

        def connect(self, factory: Any) -> defer.Deferred[Any]:
            d: defer.Deferred[Any] = self._endpoint.connect(factory)
            return d.addErrback(self._failed)

        def _failed(self, failure: Failure) -> Failure:
            factory = self._client._factory
            stopping = factory is None or factory.stopped  # closing, or a refused login
            if not stopping and not failure.check(defer.CancelledError, ConnectingCancelledError):
                where = _where(self._client.address)
                self._client._attempt_failed(
                    RedisFailure(
                        RedisProblem.UNREACHABLE,
                        f"could not connect to {where}: {failure.getErrorMessage()}",
                    )
                )
            return failure

    return BoundedFactory, BoundedProtocol, ReportingEndpoint


class RedisClient:
    """A pool of connections to one Redis server; every operation takes at most ``timeout`` s.

    Connections are made in the background and re-made with backoff after a failure (txredisapi:
    1 s, then growing to 10 s). Bounds, each ``timeout`` seconds:

    - connecting: the TCP connect, then the TLS handshake (``rediss://``), then ``AUTH``, then
      ``SELECT``, each step on its own (a failed step drops the attempt and a new one is made;
      only a refused ``AUTH``/``SELECT`` stops reconnecting);
    - each command, waiting for a connection included; a command sent but not answered in time
      also drops its connection (its server stopped answering), which is then re-made;
    - :meth:`close`: what has not closed by then is aborted.

    Why a connection attempt failed is kept (:attr:`problem`) and named by the failures of the
    commands that had no connection.

    Args:
        address: the server (see :func:`~.redis.parse_redis_url`).
        timeout: seconds, > 0.
        poolsize: connections, >= 1.
        trust_root: for ``rediss://``, a Twisted ``IOpenSSLTrustRoot``; ``None`` trusts the
            system's CAs. The certificate is verified for ``address.host``.
    """

    def __init__(
        self,
        address: RedisAddress,
        *,
        timeout: float,
        poolsize: int = 4,
        trust_root: Any = None,
    ) -> None:
        self.address = address
        self.timeout = float(timeout)
        self.poolsize = int(poolsize)
        self._trust_root = trust_root
        self._factory: Any = None
        self._waiting: list[defer.Deferred[None]] = []
        #: Why the last connection attempt (or connection) failed; ``None`` once a command got
        #: a reply.
        self.problem: RedisFailure | None = None

    @property
    def started(self) -> bool:
        """True between :meth:`start` and :meth:`close`."""
        return self._factory is not None

    def start(self) -> None:
        """Start connecting in the background; no-op if started."""
        if self._factory is not None:
            return
        from twisted.internet import reactor
        from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS

        factory_class, _, reporting_endpoint = _pool_classes()
        address = self.address
        endpoint: Any = HostnameEndpoint(reactor, address.host, address.port, timeout=self.timeout)
        if address.tls:
            from twisted.internet.ssl import optionsForClientTLS

            creator = optionsForClientTLS(address.host, trustRoot=self._trust_root)
            endpoint = wrapClientTLS(creator, endpoint)
        factory = factory_class(
            client=self,
            tls=address.tls,
            uuid=_where(address),
            dbid=address.db or None,  # db 0 needs no SELECT
            poolsize=self.poolsize,
            isLazy=True,
            charset=None,  # values are bytes in and out
            password=address.password.reveal() if address.password else None,
            username=address.username,
            replyTimeout=self.timeout,  # bounds AUTH and SELECT
            convertNumbers=False,  # a cached "123" stays bytes
        )
        factory.reconnect = True
        # Fired by txredisapi only for failures we report ourselves; never leave it unhandled.
        factory.deferred.addErrback(lambda _: None)
        self._factory = factory
        factory.startConnecting(reporting_endpoint(endpoint, self))

    async def connect(self) -> None:
        """Start if needed and return once a connection is usable.

        Returns at once if one is; else waits for the next connection attempt to end, at most
        one ``timeout`` per step of connecting (TCP, TLS, ``AUTH``, ``SELECT``).

        Raises:
            RedisFailure: that attempt failed (why: its :attr:`problem`), or none ended in time.
        """
        self.start()
        if self._factory.size:  # a connection is usable now
            return
        from twisted.internet import reactor

        steps = 1 + self.address.tls + (self.address.password is not None) + (self.address.db != 0)
        waiter: defer.Deferred[None] = defer.Deferred()
        self._waiting.append(waiter)
        waiter.addTimeout(steps * self.timeout, reactor)
        try:
            await maybe_deferred_to_future(waiter)
        except defer.TimeoutError:
            raise self._without_connection(
                "connect",
                RedisProblem.TIMEOUT,
                f"got no connection within {steps * self.timeout:g} s",
            ) from None
        finally:
            if waiter in self._waiting:
                self._waiting.remove(waiter)

    async def execute(self, command: str, *args: str | bytes | int | float) -> Any:
        """Send one command and return its reply (``bytes`` for bulk strings, ``str`` for status
        replies, ``int``, ``list`` or ``None``), within ``timeout`` seconds.

        Must be awaited from an asyncio Task under the asyncio reactor (as Scrapy runs pipelines
        and middlewares).

        Raises:
            RedisFailure: not started or closed, no connection, no reply in time (``TIMEOUT``, or
                the connection's :attr:`problem`), an error reply (``REPLY``), or a broken
                connection.
        """
        import txredisapi

        factory = self._factory
        if factory is None:
            raise RedisFailure(RedisProblem.UNREACHABLE, f"{command}: the Redis client is closed")
        from twisted.internet import reactor

        sent_on: list[Any] = []

        def send(connection: Any) -> Any:
            sent_on.append(connection)
            # Our own bound covers the wait for a connection too; one timer is enough.
            return connection.execute_command(command, *args, apply_timeout=False)

        d = factory.getConnection(peek=True)
        d.addCallback(send)
        d.addTimeout(self.timeout, reactor)
        try:
            reply = await maybe_deferred_to_future(d)
        except defer.TimeoutError:
            if sent_on:
                # Sent and never answered: the server stopped answering on this connection.
                sent_on[0].transport.abortConnection()
                raise RedisFailure(
                    RedisProblem.TIMEOUT, f"{command} got no reply within {self.timeout:g} s"
                ) from None
            raise self._without_connection(
                command, RedisProblem.TIMEOUT, f"got no reply within {self.timeout:g} s"
            ) from None
        except txredisapi.ResponseError as exc:
            self.problem = None  # Redis answered
            raise RedisFailure(RedisProblem.REPLY, self.scrub(f"{command} failed: {exc}")) from None
        except Exception as exc:
            cause = getattr(sent_on[0], "failure", None) if sent_on else None
            if cause is not None:  # the connection it was sent on broke, and we know why
                raise RedisFailure(cause.problem, f"{command} failed: {cause}") from None
            raise self._without_connection(
                command, RedisProblem.UNREACHABLE, f"failed: {type(exc).__name__}: {exc}"
            ) from None
        self.problem = None  # Redis answered
        return reply

    async def close(self) -> None:
        """Close every connection and stop reconnecting, within ``timeout`` seconds.

        Connections that do not close in time (a TLS peer that never answers ``close_notify``)
        are aborted. Safe to call twice or before :meth:`start`. Never raises.
        """
        factory, self._factory = self._factory, None
        for waiter in self._waiting:
            waiter.errback(RedisFailure(RedisProblem.UNREACHABLE, "the Redis client is closed"))
        self._waiting = []
        if factory is None:
            return
        from twisted.internet import reactor
        from twisted.internet.task import deferLater

        closed = factory.disconnect()
        closed.addTimeout(self.timeout, reactor)
        try:
            await maybe_deferred_to_future(closed)
            return
        except defer.TimeoutError:
            pass
        except Exception as exc:
            logger.debug("Closing Redis %s: %s", _where(self.address), exc)
        protocols = [slot.protocol for slot in factory.slots] + list(factory.pool)
        # A slot's protocol is a proxy of one in the pool: abort each connection once.
        transports = {id(t): t for p in protocols if (t := getattr(p, "transport", None))}
        for transport in transports.values():
            transport.abortConnection()
        logger.debug(
            "Redis %s: aborted %d connection(s) not closed within %g s",
            _where(self.address),
            len(transports),
            self.timeout,
        )
        # Aborted connections are let go on the next reactor turn.
        await maybe_deferred_to_future(deferLater(reactor, 0, lambda: None))

    def scrub(self, text: str) -> str:
        """Return *text* with the password replaced by ``***`` (Redis never echoes it; cheap)."""
        password = self.address.password
        if password:
            text = text.replace(password.reveal(), "***")
        return text

    def _without_connection(self, command: str, problem: RedisProblem, text: str) -> RedisFailure:
        cause = self.problem  # why the last connection attempt failed: the better explanation
        if cause is None:
            return RedisFailure(problem, self.scrub(f"{command} {text}"))
        return RedisFailure(cause.problem, f"{command} failed: {cause}")

    def _attempt_failed(self, failure: RedisFailure) -> None:
        logger.debug("Redis %s: %s", _where(self.address), failure)
        self.problem = failure
        self._wake(failure)

    def _attempt_succeeded(self) -> None:
        # The problem is kept until a command gets a reply: a connection with nothing to log in
        # is usable at once, even to a server that will answer garbage.
        self._wake(None)

    def _wake(self, failure: RedisFailure | None) -> None:
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            if waiter.called:
                continue
            if failure is None:
                waiter.callback(None)
            else:
                waiter.errback(failure)
