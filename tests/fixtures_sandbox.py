"""Pytest fixtures running the provider sandbox as a subprocess, plus helpers for its tests.

- ``sandbox_process`` (session): ``python -m scrapy_apigw.sandbox --port 0 --speed <S>`` with
  ``S`` from the ``SANDBOX_SPEED`` environment variable (default 10). Yields a
  :class:`SandboxProcess`.
- ``sandbox`` (function): the same process, reset (log, faults, rate limits) before the test.

Admin calls use ``urllib`` only: nothing here imports ``twisted.internet.reactor``, which
pytest-twisted installs itself (``--reactor=asyncio``).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

# 10x the real limits: requests 100 ms apart at MusicBrainz pace, well above the delivery jitter
# of a loaded 2-core machine (at 25x, 40 ms apart, a busy CI box tripped a limit once).
DEFAULT_SPEED = 10.0
START_TIMEOUT = 20.0
TEST_USER_AGENT = "scrapy-apigw-tests/0.1 ( https://example.invalid/scrapy-apigw )"

# An opener without urllib's default "Python-urllib/3.x" User-Agent, so tests can send none.
_OPENER = urllib.request.build_opener()
_OPENER.addheaders = []


@dataclass
class HttpReply:
    """One HTTP answer: status, headers and body (any status, errors included)."""

    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8")


class SandboxProcess:
    """A running ``python -m scrapy_apigw.sandbox`` and its admin API.

    Attributes:
        url: base URL, ``http://127.0.0.1:<port>``.
        speed: the ``--speed`` it runs at.
        process: the ``subprocess.Popen``.
    """

    def __init__(self, process: subprocess.Popen[bytes], url: str, speed: float, stderr: Any):
        self.process = process
        self.url = url
        self.speed = speed
        self._stderr = stderr

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

        ``User-Agent`` defaults to :data:`TEST_USER_AGENT` (pass ``""`` to send none).
        """
        url = self.url + path
        if params:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
        all_headers = {"User-Agent": TEST_USER_AGENT, **(headers or {})}
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
        """``GET`` (see :meth:`request`)."""
        return self.request("GET", path, **kwargs)

    def _admin(self, method: str, path: str, payload: Any = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        reply = self.request(method, "/_sandbox/" + path, data=data, headers=headers)
        if reply.status != 200:
            raise RuntimeError(f"sandbox admin {method} {path}: {reply.status} {reply.text}")
        return reply.json()

    # -- admin --------------------------------------------------------------------------------

    def log(self, provider: str | None = None) -> list[dict[str, Any]]:
        """The request records (``GET /_sandbox/log``), optionally of one provider."""
        suffix = "?" + urllib.parse.urlencode({"provider": provider}) if provider else ""
        return list(self._admin("GET", "log" + suffix))

    def set_faults(self, provider: str, **faults: Any) -> dict[str, Any]:
        """Merge *faults* into *provider*'s faults (``POST /_sandbox/faults``)."""
        return dict(self._admin("POST", "faults", {"provider": provider, **faults}))

    def clear_faults(self, provider: str) -> None:
        """Remove *provider*'s faults."""
        self._admin("POST", "faults", {"provider": provider, "clear": True})

    def reset(self) -> None:
        """Clear log, faults and rate-limit state (``POST /_sandbox/reset``)."""
        self._admin("POST", "reset", {})

    def health(self) -> dict[str, Any]:
        """``GET /_sandbox/health``."""
        return dict(self._admin("GET", "health"))

    def catalog(self) -> dict[str, Any]:
        """``GET /_sandbox/catalog``: every track with its provider ids."""
        return dict(self._admin("GET", "catalog"))

    # -- lifecycle ----------------------------------------------------------------------------

    def stderr_tail(self, limit: int = 4000) -> str:
        """The end of the process's stderr, for failure messages."""
        self._stderr.flush()
        self._stderr.seek(0)
        return str(self._stderr.read().decode("utf-8", "replace"))[-limit:]

    def stop(self) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after 5 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()


def start_sandbox_process(
    speed: float = DEFAULT_SPEED, *args: str, timeout: float = START_TIMEOUT
) -> SandboxProcess:
    """Start ``python -m scrapy_apigw.sandbox --port 0 --speed <speed> *args``.

    Raises:
        RuntimeError: the process exited or printed no ``SANDBOX_URL=`` line within *timeout*.
    """
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by SandboxProcess.stop)
    command = [sys.executable, "-m", "scrapy_apigw.sandbox", "--port", "0", "--speed", str(speed)]
    process = subprocess.Popen(
        [*command, *args], stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL
    )
    lines: queue.Queue[bytes] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    handle = SandboxProcess(process, "", speed, stderr)
    try:
        line = lines.get(timeout=timeout).decode().strip()
    except queue.Empty:
        line = ""
    if not line.startswith("SANDBOX_URL="):
        tail = handle.stderr_tail()
        handle.stop()
        raise RuntimeError(f"sandbox did not start within {timeout}s (stdout {line!r}): {tail}")
    handle.url = line.split("=", 1)[1]
    return handle


@pytest.fixture(scope="session")
def sandbox_process() -> Iterator[SandboxProcess]:
    """One sandbox subprocess for the whole session (speed from ``SANDBOX_SPEED``, default 25)."""
    speed = float(os.environ.get("SANDBOX_SPEED") or DEFAULT_SPEED)
    handle = start_sandbox_process(speed)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def sandbox(sandbox_process: SandboxProcess) -> SandboxProcess:
    """The session sandbox, reset before the test (empty log, no faults, fresh limits)."""
    sandbox_process.reset()
    return sandbox_process


# -- helpers for the sandbox's own tests --------------------------------------------------------


def load_shared_fixture(shared: Path, relative: str) -> Any:
    """Load ``shared/fixtures/<relative>`` as JSON, or skip the test with the reason."""
    path = shared / "fixtures" / relative
    if not path.is_file():
        pytest.skip(f"recorded fixture {path} is absent (shared/ is not next to the repository)")
    return json.loads(path.read_text(encoding="utf-8"))


def shape_problems(
    ours: Any,
    real: Any,
    where: str = "$",
    optional: frozenset[str] = frozenset(),
    nullable: frozenset[str] = frozenset(),
) -> list[str]:
    """Differences in keys and JSON types between *ours* and a recorded *real* document.

    Every key of *real* must exist in *ours* with the same JSON type (``null`` in *real*
    accepts anything; int and float are both "number"; bool is not a number), recursively;
    lists are compared element-wise against the real list's first element. Keys named in
    *optional* (by bare key name) may be missing, keys named in *nullable* may be ``null`` in
    *ours* (e.g. Spotify's deprecated ``preview_url``). Extra keys in *ours* are allowed.
    """

    def kind(value: Any) -> str:
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "bool"
        if isinstance(value, int | float):
            return "number"
        return type(value).__name__

    problems: list[str] = []
    if real is None or (ours is None and where.rsplit(".", 1)[-1] in nullable):
        return problems
    if kind(ours) != kind(real):
        return [f"{where}: {kind(ours)} instead of {kind(real)}"]
    if isinstance(real, dict):
        for key, value in real.items():
            if key not in ours:
                if key not in optional:
                    problems.append(f"{where}.{key}: missing")
                continue
            problems.extend(shape_problems(ours[key], value, f"{where}.{key}", optional, nullable))
    elif isinstance(real, list) and real:
        for i, item in enumerate(ours):
            problems.extend(shape_problems(item, real[0], f"{where}[{i}]", optional, nullable))
    return problems
