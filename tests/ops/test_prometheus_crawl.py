"""A real Prometheus scrapes a crawl (``/metrics`` from inside it, APIGW_METRICS_PORT) with
Discogs in outage: CircuitBreakerOpen fires for discogs (read from ``/api/v1/alerts``, the test
copy of the rules with ``for: 2s``), and every dashboard panel's PromQL returns data.

The crawl runs as a subprocess (tests/ops/held_crawl.py) that stays open after its last item
until the test has read the alerts and queries: a target that disappears makes its series stale.
Before it, a short warm-up crawl fills the cache (the first tracklist) so that the crawl has
cache hits as well as misses. Besides Discogs' outage: Spotify answers its first request with a
429 (a retry that succeeds), and Last.fm fails its first two (a breaker that opens and
recovers: ``api_gateway_circuit_breaker_recoveries_total`` gets a series).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from known_metrics import series_names
from prometheus_process import (
    ALERTS,
    PrometheusServer,
    check_metrics,
    concrete_promql,
    dashboard_targets,
    free_port,
    rules_with_short_for,
)
from promql_names import promql_names

pytestmark = pytest.mark.crawl

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
#: Generous bounds for a loaded 2-core machine (each is a deadline polled for, not a sleep).
CRAWL_TIMEOUT = 150.0
ALERT_TIMEOUT = 90.0


def crawl_config(sandbox: Any, tmp_path: Path, name: str, limit: int, **extra: Any) -> Path:
    config = {
        "ADDONS": {"scrapy_apigw.Addon": 500},
        "APIGW_SANDBOX": True,
        "APIGW_SANDBOX_URL": sandbox.url,
        "APIGW_SANDBOX_SPEED": sandbox.speed,
        "APIGW_CACHE_PATH": str(tmp_path / "apigw-cache.sqlite3"),
        "FEEDS": {str(tmp_path / f"{name}.jsonl"): {"format": "jsonlines", "overwrite": True}},
        "FEED_EXPORT_ENCODING": "utf-8",
        "LOG_LEVEL": "INFO",
        "LOG_FILE": str(tmp_path / f"{name}.log"),
        "TELNETCONSOLE_ENABLED": False,
        "ROBOTSTXT_OBEY": False,
        "limit": limit,
        "idle_file": str(tmp_path / f"{name}.idle.json"),
        "release_file": str(tmp_path / f"{name}.release"),
        **extra,
    }
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(config))
    return path


class HeldCrawl:
    """The held_crawl.py subprocess of one crawl configuration."""

    def __init__(self, config: Path) -> None:
        self.settings = json.loads(config.read_text())
        self.idle_file = Path(self.settings["idle_file"])
        self.release_file = Path(self.settings["release_file"])
        self.start_file = Path(self.settings.get("start_file") or config.with_suffix(".start"))
        self.log = Path(self.settings["LOG_FILE"])
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "PYTHONPATH": path}
        env.pop("APIGW_REDIS_URL", None)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # one-process mode: /metrics of the crawl
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "held_crawl.py"), str(config)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def log_tail(self) -> str:
        return self.log.read_text()[-4000:] if self.log.exists() else "(no log)"

    def wait_idle(self, timeout: float) -> dict[str, Any]:
        """The crawl's stats once it has nothing left to do (it stays open)."""
        deadline = time.monotonic() + timeout
        while not self.idle_file.exists():
            if self.process.poll() is not None:
                raise AssertionError(f"crawl exited early: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"crawl not idle after {timeout} s: {self.log_tail()}")
            time.sleep(0.2)
        return dict(json.loads(self.idle_file.read_text()))

    def release(self, timeout: float = 60.0) -> int:
        """Let the spider close; its exit status."""
        self.release_file.write_text("")
        try:
            _out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            raise AssertionError(f"crawl did not close: {self.log_tail()}") from None
        assert self.process.returncode == 0, err[-3000:] + self.log_tail()
        return self.process.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def firing(server: PrometheusServer, alertname: str) -> list[dict[str, Any]]:
    return [
        alert
        for alert in server.alerts()
        if alert["labels"]["alertname"] == alertname and alert["state"] == "firing"
    ]


def summary(samples: list[dict[str, Any]]) -> str:
    """``{labels}=value, ...`` of an instant vector, for the issue note."""
    shown = []
    for sample in samples[:6]:
        labels = ",".join(f"{k}={v}" for k, v in sorted(sample["metric"].items()))
        shown.append(f"{{{labels}}}={float(sample['value'][1]):.3g}")
    more = f" (+{len(samples) - 6})" if len(samples) > 6 else ""
    return ", ".join(shown) + more


def test_outage_fires_circuit_breaker_open_and_every_panel_has_data(sandbox, prometheus, tmp_path):
    # 1. Warm-up: the first tracklist's answers go into the cache (no metrics port).
    warm = HeldCrawl(crawl_config(sandbox, tmp_path, "warm-up", limit=1))
    warm.release_file.write_text("")  # closes at once when done
    warm.wait_idle(CRAWL_TIMEOUT)
    warm.release()

    # 2. The faults, Prometheus, then the crawl it scrapes.
    sandbox.set_faults("discogs", outage=True)  # 503 on every request, until cleared
    sandbox.set_faults("spotify", rate_limit_next=1, retry_after="1")
    sandbox.set_faults("lastfm", outage=True, expire_after=2)
    port = free_port()
    server = prometheus(
        [f"127.0.0.1:{port}"], [rules_with_short_for(ALERTS, tmp_path / "alerts.yml", "2s")]
    )
    providers = {
        "lastfm": {
            "failure_threshold": 2,
            "open_timeout": 2,
            "success_threshold": 1,
            "max_retries": 1,
        },
    }
    crawl = HeldCrawl(
        crawl_config(
            sandbox,
            tmp_path,
            "crawl",
            limit=3,
            APIGW_METRICS_PORT=port,
            APIGW_PROVIDERS=providers,
            start_file=str(tmp_path / "crawl.start"),
        )
    )
    try:
        # Prometheus scrapes the crawl once before it sends anything (its gauges are set at
        # engine start), so that every counter's rise is seen.
        server.wait_for(
            lambda: server.query("count(api_gateway_circuit_breaker_state)"),
            CRAWL_TIMEOUT,
            "a first scrape of the crawl's /metrics",
        )
        crawl.start_file.write_text("")
        # 3. The alert, while the crawl runs or idles.
        alerts = server.wait_for(
            lambda: firing(server, "CircuitBreakerOpen"), ALERT_TIMEOUT, "CircuitBreakerOpen"
        )
        stats = crawl.wait_idle(CRAWL_TIMEOUT)
        assert stats["apigw/discogs/breaker/open"] >= 1
        assert stats["apigw/lastfm/breaker/closed"] >= 1, "Last.fm's breaker did not recover"
        # Prometheus has scraped the crawl's final counts.
        items = {k.rsplit("/", 1)[1]: v for k, v in stats.items() if k.startswith("apigw/items/")}
        items = {
            status: n for status, n in items.items() if status not in ("timed_out", "interrupted")
        }
        assert items.get("partial", 0) >= 20, stats
        server.wait_for(
            lambda: (
                {
                    s["metric"]["status"]: int(float(s["value"][1]))
                    for s in server.query("sum by (status) (tracks_enriched_total) > 0")
                }
                == items
            ),
            30,
            f"tracks_enriched_total == the crawl's apigw/items/* {items}",
        )
        alerts = server.wait_for(
            lambda: (
                [a for a in firing(server, "CircuitBreakerOpen")]
                if {a["labels"]["provider"] for a in firing(server, "CircuitBreakerOpen")}
                == {"discogs"}
                else None
            ),
            30,
            "CircuitBreakerOpen firing for discogs only (Last.fm recovered)",
        )
        assert [a["labels"] for a in alerts] == [
            {"alertname": "CircuitBreakerOpen", "provider": "discogs", "severity": "critical"}
        ]
        assert float(alerts[0]["value"]) in (1.0, 2.0)  # half-open or open
        opens = server.query('api_gateway_circuit_breaker_opens_total{provider="discogs"}')
        assert [float(s["value"][1]) for s in opens] == [stats["apigw/discogs/breaker/open"]]
        recoveries = server.query('api_gateway_circuit_breaker_recoveries_total{provider="lastfm"}')
        assert [float(s["value"][1]) for s in recoveries] == [stats["apigw/lastfm/breaker/closed"]]

        # 4. Every panel's query returns data; every metric it names exists in Prometheus.
        stored = server.metric_names()
        known = series_names()
        results, empty, missing = [], [], []
        for dashboard, title, expr in dashboard_targets():
            metrics, _labels = promql_names(expr)
            missing += [f"{dashboard} / {title}: {m}" for m in sorted(metrics - stored)]
            assert metrics <= set(known)
            samples = server.query(concrete_promql(expr, window="5m", range_="1h"))
            if not samples:
                empty.append(f"{dashboard} / {title}: {expr}")
            results.append(f"{dashboard} / {title}: {summary(samples)}")
        print("\nCircuitBreakerOpen:", alerts[0]["labels"], "value", alerts[0]["value"])
        print("\n".join(results))
        assert not missing, "metrics absent from Prometheus:\n" + "\n".join(missing)
        assert not empty, "panels without data:\n" + "\n".join(empty)

        # 5. The exposition Prometheus scraped is clean for promtool.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
            exposition = reply.read().decode()
        assert check_metrics(exposition) == ""
    except BaseException:
        crawl.kill()
        raise
    finally:
        sandbox.reset()  # the session's sandbox: no fault outlives this test
    crawl.release()
