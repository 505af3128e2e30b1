"""A real Prometheus server for the tests, and the monitoring files they check.

The distribution's ``prometheus`` package installs ``/usr/bin/prometheus`` and
``/usr/bin/promtool`` (``.ci/run`` installs it when absent). :func:`start_prometheus` runs the
server on a free port of 127.0.0.1 with its storage in a temporary directory, scraping the given
targets every second and evaluating the given rule files every second. Everything here talks
HTTP with ``urllib``: nothing imports the reactor or ``prometheus_client``.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"
ALERTS = MONITORING / "prometheus" / "alerts.yml"
ALERTS_TEST = MONITORING / "prometheus" / "alerts_test.yml"
SCRAPE_CONFIG = MONITORING / "prometheus" / "prometheus.yml"
DASHBOARDS = sorted((MONITORING / "grafana").glob("*.json"))

T = TypeVar("T")


def missing_binaries() -> str | None:
    """Why the Prometheus tests cannot run here (``None`` when they can)."""
    absent = [name for name in ("prometheus", "promtool") if shutil.which(name) is None]
    if absent:
        return (
            f"{' and '.join(absent)} not installed (Debian/Ubuntu: apt-get install prometheus; "
            ".ci/run installs it)"
        )
    return None


def free_port() -> int:
    """A TCP port of 127.0.0.1 free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rules_with_short_for(source: Path, target: Path, for_: str = "2s") -> Path:
    """Write *source*'s rules to *target* with every ``for:`` shortened to *for_*."""
    text, count = re.subn(r"(?m)^(\s+)for: \S+$", rf"\g<1>for: {for_}", source.read_text())
    assert count, f"no for: in {source}"
    target.write_text(text)
    return target


def dashboard_targets() -> Iterator[tuple[str, str, str]]:
    """``(dashboard file name, panel title, expr)`` of every target of every dashboard panel."""
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text("utf-8"))["panels"]:
            for target in panel.get("targets", []):
                yield path.name, panel["title"], target["expr"]


def concrete_promql(expr: str, window: str = "5m", range_: str = "1h") -> str:
    """*expr* with Grafana's variables replaced as Grafana would: every provider selected,
    ``$__rate_interval`` and ``$__range`` as the given durations."""
    return (
        expr.replace("$__rate_interval", window)
        .replace("$__range", range_)
        .replace("$provider", ".*")
    )


def check_metrics(exposition: str) -> str:
    """``promtool check metrics`` on a text exposition: its complaints ("" when clean)."""
    result = subprocess.run(
        ["promtool", "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        timeout=60,
    )
    problems = (result.stdout + result.stderr).strip()
    assert (result.returncode == 0) == (not problems), (result.returncode, problems)
    return problems


class PrometheusServer:
    """A running ``prometheus`` process: its URL and a small client of its HTTP API."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log

    def api(self, path: str, **params: str) -> Any:
        """GET ``/api/v1/<path>`` and return its ``data`` (raises on an API error)."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as reply:
            body = json.load(reply)
        if body.get("status") != "success":
            raise AssertionError(f"Prometheus API {path} {params}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query: the vector's samples (``[{"metric": {...}, "value": [t, v]}]``)."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", (expr, data)
        return list(data["result"])

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts pending or firing now (``/api/v1/alerts``)."""
        return list(self.api("alerts")["alerts"])

    def metric_names(self) -> set[str]:
        """Every series name Prometheus has stored."""
        return set(self.api("label/__name__/values"))

    def targets_up(self) -> list[dict[str, Any]]:
        """The active scrape targets whose last scrape succeeded."""
        return [t for t in self.api("targets")["activeTargets"] if t["health"] == "up"]

    def wait_for(self, probe: Callable[[], T | None], timeout: float, what: str) -> T:
        """Poll *probe* every 0.2 s until it returns something truthy; fail after *timeout* s
        saying *what* was awaited (the server's log tail too if it died)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"prometheus exited: {self.log.read_text()[-3000:]}")
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Terminate the server (kill it if it does not exit within 10 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def prometheus_config(targets: list[str], rule_files: list[Path], interval: str = "1s") -> str:
    """A ``prometheus.yml`` scraping *targets* (``host:port``) as job ``apigw`` every
    *interval*, and evaluating *rule_files* as often."""
    return json.dumps(  # JSON is YAML
        {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(path) for path in rule_files],
            "scrape_configs": [
                {
                    "job_name": "apigw",
                    "scrape_interval": interval,
                    "scrape_timeout": interval,
                    "static_configs": [{"targets": targets}],
                }
            ],
        },
        indent=2,
    )


def start_prometheus(
    directory: Path, targets: list[str], rule_files: list[Path], ready_timeout: float = 60.0
) -> PrometheusServer:
    """Start ``prometheus`` on a free port with its config, storage and log in *directory*;
    return once ``/-/ready`` answers 200."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "prometheus.yml"
    config.write_text(prometheus_config(targets, rule_files))
    check = subprocess.run(
        ["promtool", "check", "config", str(config)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    for _attempt in range(3):  # the free port may be taken before prometheus binds it
        port = free_port()
        log = directory / f"prometheus-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={config}",
                    f"--storage.tsdb.path={directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=1d",
                    "--log.level=info",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = PrometheusServer(process, f"http://127.0.0.1:{port}", log)
        if _wait_ready(server, ready_timeout):
            return server
        server.stop()
        if "address already in use" not in log.read_text():
            break
    raise AssertionError(f"prometheus did not start: {log.read_text()[-3000:]}")


def _wait_ready(server: PrometheusServer, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as reply:
                if reply.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False
