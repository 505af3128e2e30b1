"""The provider sandbox as a subprocess, with a small blocking client for it.

For tests and benchmarks that want a real sandbox on a real port without running a Twisted
reactor themselves: :func:`start_sandbox_process` starts
``python -m scrapy_apigw.sandbox --port 0 --speed <speed>``, waits for its
``SANDBOX_URL=`` line and returns a :class:`SandboxProcess`, whose methods send plain HTTP
requests and admin calls (``/_sandbox/...``) with :mod:`urllib`::

    from scrapy_apigw.sandbox import start_sandbox_process

    with start_sandbox_process(10) as sandbox:  # rate limits and token TTL 10x faster
        settings = {"APIGW_SANDBOX": True, "APIGW_SANDBOX_URL": sandbox.url}
        ...  # crawl against sandbox.url
        sandbox.set_faults("spotify", outage=True)
        reply = sandbox.get("/musicbrainz/ws/2/isrc/GBAAA9900303", params={"fmt": "json"})
        assert reply.status == 200, reply.text
        calls = sandbox.log("musicbrainz")  # request records since the last reset
        sandbox.reset()  # empty log, no faults, fresh rate limits

Standard library only (:mod:`subprocess`, :mod:`urllib`, :mod:`threading`): importing this
module never imports ``twisted.internet.reactor``, so it is safe next to pytest-twisted or
Scrapy, which install their own reactor.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from types import TracebackType
from typing import IO, Any

__all__ = ["DEFAULT_USER_AGENT", "HttpReply", "SandboxProcess", "start_sandbox_process"]

#: ``User-Agent`` that :meth:`SandboxProcess.request` sends unless told otherwise (the sandbox's
#: MusicBrainz, like the real one, refuses requests without one).
DEFAULT_USER_AGENT = "scrapy-apigw-sandbox-client/0.1 ( https://example.invalid/scrapy-apigw )"

# An opener without urllib's default "Python-urllib/3.x" User-Agent, so callers can send none.
_OPENER = urllib.request.build_opener()
_OPENER.addheaders = []


@dataclass
class HttpReply:
    """One HTTP answer, whatever its status (errors included).

    Attributes:
        status: the HTTP status code.
        headers: the response headers (case-insensitive lookups: ``headers["Retry-After"]``).
        body: the raw response body.
    """

    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        """The body decoded as JSON (raises :class:`json.JSONDecodeError` if it is not)."""
        return json.loads(self.body)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (strict: raises on invalid bytes)."""
        return self.body.decode("utf-8")


class SandboxProcess:
    """A running ``python -m scrapy_apigw.sandbox`` and its admin API.

    Made by :func:`start_sandbox_process`; stop it with :meth:`stop`, or use it as a context
    manager. Every method blocks (plain :mod:`urllib`, no reactor).

    Attributes:
        process: the ``subprocess.Popen`` of the sandbox.
        url: base URL, ``http://127.0.0.1:<port>`` (no trailing slash).
        speed: the ``--speed`` it runs at (time compression of rate limits and token TTL).
        user_agent: ``User-Agent`` that :meth:`request` sends by default.
    """

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        url: str,
        speed: float,
        stderr: IO[bytes],
        *,
        stdout_reader: threading.Thread | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> None:
        """Wrap a started *process*.

        Args:
            process: the sandbox process, its stdout a pipe.
            url: its base URL.
            speed: its ``--speed``.
            stderr: the binary file its stderr goes to; closed by :meth:`stop`.
            stdout_reader: the thread draining its stdout, joined by :meth:`stop`.
            user_agent: default ``User-Agent`` of :meth:`request`.
        """
        self.process = process
        self.url = url
        self.speed = speed
        self.user_agent = user_agent
        self._stderr = stderr
        self._stdout_reader = stdout_reader

    # -- context manager ----------------------------------------------------------------------

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- HTTP ---------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        timeout: float = 10.0,
    ) -> HttpReply:
        """Send one request to ``url + path``; never raises for HTTP error statuses.

        Args:
            method: HTTP method, e.g. ``"GET"``.
            path: path (and optional query) after :attr:`url`, starting with ``/``.
            params: query parameters, URL-encoded and appended to *path*.
            headers: request headers; ``User-Agent`` defaults to :attr:`user_agent`, and a
                header given as ``""`` is not sent at all.
            data: request body.
            timeout: socket timeout, seconds.

        Raises:
            urllib.error.URLError: the sandbox could not be reached (e.g. it has stopped).
        """
        url = self.url + path
        if params:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
        all_headers = {"User-Agent": self.user_agent, **(headers or {})}
        req = urllib.request.Request(url, data=data, method=method)
        for name, value in all_headers.items():
            if value != "":
                req.add_header(name, value)
        try:
            with _OPENER.open(req, timeout=timeout) as resp:
                return HttpReply(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as err:
            return HttpReply(err.code, err.headers, err.read())

    def get(self, path: str, **kwargs: Any) -> HttpReply:
        """``GET`` *path* (keyword arguments as for :meth:`request`)."""
        return self.request("GET", path, **kwargs)

    def admin(self, method: str, path: str, payload: Any = None, *, timeout: float = 30.0) -> Any:
        """One admin call, ``<method> /_sandbox/<path>``, and its decoded JSON answer.

        Args:
            method: ``"GET"`` or ``"POST"``.
            path: the part after ``/_sandbox/``, query included (e.g. ``"log?provider=x"``).
            payload: JSON-serialisable body, sent as ``application/json`` (None: no body).
            timeout: socket timeout, seconds.

        Raises:
            RuntimeError: the sandbox answered with a status other than 200.
        """
        data = json.dumps(payload).encode() if payload is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        reply = self.request(
            method, "/_sandbox/" + path, data=data, headers=headers, timeout=timeout
        )
        if reply.status != 200:
            raise RuntimeError(f"sandbox admin {method} {path}: {reply.status} {reply.text}")
        return reply.json()

    # -- admin --------------------------------------------------------------------------------

    def log(self, provider: str | None = None) -> list[dict[str, Any]]:
        """The request records since the last reset (``GET /_sandbox/log``).

        Args:
            provider: only this provider's records (``"spotify"``, ``"site"``, ...); None: all.
        """
        suffix = "?" + urllib.parse.urlencode({"provider": provider}) if provider else ""
        return list(self.admin("GET", "log" + suffix))

    def set_faults(self, provider: str, **faults: Any) -> dict[str, Any]:
        """Merge *faults* into *provider*'s faults (``POST /_sandbox/faults``).

        Returns:
            The provider's faults after the change, as the sandbox reports them.
        """
        return dict(self.admin("POST", "faults", {"provider": provider, **faults}))

    def clear_faults(self, provider: str) -> None:
        """Remove every fault of *provider*."""
        self.admin("POST", "faults", {"provider": provider, "clear": True})

    def reset(self) -> None:
        """Clear the request log, faults and rate-limit state (``POST /_sandbox/reset``)."""
        self.admin("POST", "reset", {})

    def health(self) -> dict[str, Any]:
        """``GET /_sandbox/health``."""
        return dict(self.admin("GET", "health"))

    def hosts(self) -> dict[str, str]:
        """``GET /_sandbox/hosts``: provider -> ``http://127.0.0.1:<port>`` of its own port
        (started with ``--provider-ports``; empty otherwise)."""
        return dict(self.admin("GET", "hosts"))

    def catalog(self) -> dict[str, Any]:
        """``GET /_sandbox/catalog``: every track with its provider ids."""
        return dict(self.admin("GET", "catalog"))

    def truth(self) -> list[dict[str, Any]]:
        """``GET /_sandbox/truth``: the ground truth of every row of the tracklist site."""
        return list(self.admin("GET", "truth")["rows"])

    # -- lifecycle ----------------------------------------------------------------------------

    def stderr_tail(self, limit: int = 4000) -> str:
        """The last *limit* characters of the process's stderr ("" once stopped)."""
        if self._stderr.closed:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")[-limit:]

    def stop(self) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after 5 s) and close its files.

        Safe to call more than once.
        """
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self._stdout_reader is not None:
            self._stdout_reader.join(timeout=5)  # EOF now that the process is gone
        if self.process.stdout is not None and (
            self._stdout_reader is None or not self._stdout_reader.is_alive()
        ):
            self.process.stdout.close()
        self._stderr.close()


def start_sandbox_process(
    speed: float = 1.0,
    *args: str,
    timeout: float = 20.0,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
) -> SandboxProcess:
    """Start ``python -m scrapy_apigw.sandbox --port 0 --speed <speed> *args``.

    Uses the running interpreter (``sys.executable``) and waits until the sandbox listens.

    Args:
        speed: time compression of rate limits and token TTL (1: real time; 10: ten times
            faster).
        args: further command-line options, e.g. ``"--token-ttl", "20"``.
        timeout: how long to wait for the ``SANDBOX_URL=`` line, seconds.
        cwd, env: working directory and environment of the process (default: this process's),
            e.g. another checkout's sandbox: ``cwd=checkout, env={..., "PYTHONPATH": checkout}``.

    Returns:
        The running sandbox; the caller stops it (:meth:`SandboxProcess.stop` or ``with``).

    Raises:
        RuntimeError: the process exited or printed no ``SANDBOX_URL=`` line within *timeout*
            (the message holds the end of its stderr).
    """
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by SandboxProcess.stop)
    command = [sys.executable, "-m", "scrapy_apigw.sandbox", "--port", "0", "--speed", str(speed)]
    process = subprocess.Popen(
        [*command, *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env=None if env is None else dict(env),
    )
    assert process.stdout is not None
    stdout = process.stdout
    lines: queue.Queue[bytes] = queue.Queue()

    def pump() -> None:  # keep draining stdout so the sandbox never blocks writing to it
        for line in stdout:
            lines.put(line)
        lines.put(b"")

    reader = threading.Thread(target=pump, name="sandbox-stdout", daemon=True)
    reader.start()
    handle = SandboxProcess(process, "", speed, stderr, stdout_reader=reader)
    try:
        line = lines.get(timeout=timeout).decode("utf-8", "replace").strip()
    except queue.Empty:
        line = ""
    if not line.startswith("SANDBOX_URL="):
        tail = handle.stderr_tail()
        handle.stop()
        raise RuntimeError(f"sandbox did not start within {timeout}s (stdout {line!r}): {tail}")
    handle.url = line.split("=", 1)[1]
    return handle
