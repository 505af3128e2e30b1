"""Reading Prometheus expositions in tests, and ``apigw serve`` run as a real subprocess."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

#: The repository root: ``apigw serve`` runs this checkout's code.
WORKTREE = Path(__file__).resolve().parents[1]
SERVING = re.compile(r"metrics at http://127\.0\.0\.1:(\d+)/metrics")


def parse_exposition(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``{(sample name, labels): value}`` of a Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


class Samples:
    def __init__(self, text: str) -> None:
        self.values = parse_exposition(text)

    def get(self, name: str, **labels: str) -> float:
        """The sample's value; 0 when absent (a labelled counter never incremented)."""
        return self.values.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """Sum over the samples of *name* whose labels include *labels*."""
        wanted = set(labels.items())
        return sum(v for (n, lab), v in self.values.items() if n == name and wanted <= lab)

    def has(self, name: str, **labels: str) -> bool:
        return (name, frozenset(labels.items())) in self.values


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        assert response.status == 200
        return str(response.read().decode("utf-8"))


class Serve:
    """``python -m scrapy_apigw.ops.cli serve`` (the ``apigw`` console script's code)."""

    def __init__(self, directory: Path, *args: str, env: dict[str, str] | None = None) -> None:
        environment = {**os.environ, "PYTHONPATH": str(WORKTREE)}
        # The caller's shell must not choose the directory, project or Redis: *env* may.
        for name in ("PROMETHEUS_MULTIPROC_DIR", "SCRAPY_SETTINGS_MODULE", "APIGW_REDIS_URL"):
            environment.pop(name, None)
        environment.update(env or {})
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "scrapy_apigw.ops.cli", "serve"),
                *("--port", "0", "--multiproc-dir", str(directory), *args),
            ],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line)

    def port(self, timeout: float = 120.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1.0)
            except queue.Empty:
                assert self.process.poll() is None, "".join(self.log)
                continue
            self.log.append(line)
            if match := SERVING.search(line):
                return int(match.group(1))
        raise AssertionError(f"apigw serve did not start: {''.join(self.log)}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
