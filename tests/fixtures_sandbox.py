"""Pytest fixtures running the provider sandbox as a subprocess, plus helpers for its tests.

- ``sandbox_process`` (session): ``python -m scrapy_apigw.sandbox --port 0 --speed <S>`` with
  ``S`` from the ``SANDBOX_SPEED`` environment variable (default 10). Yields a
  :class:`SandboxProcess`.
- ``sandbox`` (function): the same process, reset (log, faults, rate limits) before the test.

The process handle (:class:`SandboxProcess`, :class:`HttpReply`, :func:`start_sandbox_process`)
lives in :mod:`scrapy_apigw.sandbox.process` and is re-exported here for the tests. It uses
``urllib`` only: nothing here imports ``twisted.internet.reactor``, which pytest-twisted installs
itself (``--reactor=asyncio``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scrapy_apigw.sandbox.process import (
    DEFAULT_USER_AGENT,
    HttpReply,
    SandboxProcess,
    start_sandbox_process,
)

__all__ = [
    "DEFAULT_SPEED",
    "TEST_USER_AGENT",
    "HttpReply",
    "SandboxProcess",
    "load_shared_fixture",
    "sandbox",
    "sandbox_process",
    "shape_problems",
    "start_sandbox_process",
]

# 10x the real limits: requests 100 ms apart at MusicBrainz pace, well above the delivery jitter
# of a loaded 2-core machine (at 25x, 40 ms apart, a busy CI box tripped a limit once).
DEFAULT_SPEED = 10.0
#: The ``User-Agent`` that ``SandboxProcess.request`` sends by default.
TEST_USER_AGENT = DEFAULT_USER_AGENT


@pytest.fixture(scope="session")
def sandbox_process() -> Iterator[SandboxProcess]:
    """One sandbox subprocess for the whole session (speed from ``SANDBOX_SPEED``, default 10)."""
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
