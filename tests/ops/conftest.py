"""Fixtures of the operations tests: a real Prometheus server (skipped, saying why, where the
distribution's ``prometheus`` package is not installed).

Never import prometheus_client, txredisapi or the reactor at module level here (see
tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_process import PrometheusServer, missing_binaries, start_prometheus


@pytest.fixture
def promtool() -> str:
    """``promtool``, or skip the test saying what to install."""
    reason = missing_binaries()
    if reason:
        pytest.skip(reason)
    return "promtool"


@pytest.fixture
def prometheus(
    promtool: str, tmp_path: Path
) -> Iterator[Callable[[list[str], list[Path]], PrometheusServer]]:
    """A factory: ``prometheus(targets, rule_files)`` starts a server scraping *targets*
    (``host:port``) every second with *rule_files* evaluated every second; it stops at the
    end of the test."""
    servers: list[PrometheusServer] = []

    def start(targets: list[str], rule_files: list[Path]) -> PrometheusServer:
        server = start_prometheus(tmp_path / f"prometheus-{len(servers)}", targets, rule_files)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
