"""The real-Prometheus harness on its own, before any crawl: a tiny exporter written here (the
text exposition format by hand, no prometheus_client) is scraped every second; the test copy of
the rules fires CircuitBreakerOpen for the one provider whose breaker is open, and every panel's
PromQL is valid and evaluates against the server.

The crawl's own metrics are checked the same way in test_prometheus_crawl.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from known_metrics import KNOWN_METRICS
from prometheus_process import (
    ALERTS,
    check_metrics,
    concrete_promql,
    dashboard_targets,
    rules_with_short_for,
)

PROVIDERS = ("spotify", "musicbrainz", "discogs", "lastfm")
LABEL_VALUES = {
    "status": "allowed",
    "data_type": "search",
    "operation": "get",
    "error_type": "server_error",
    "source": "spotify",
    "reason": "batch",
}


def exposition(scrape: int) -> str:
    """Every known metric, each counter grown by the number of scrapes so far; the breaker
    of discogs is open (2), the others closed."""
    lines: list[str] = []
    for name, (kind, labels) in KNOWN_METRICS.items():
        family = name
        lines.append(f"# HELP {family} {kind} of the test exporter")
        lines.append(f"# TYPE {family} {kind}")
        for provider in PROVIDERS if "provider" in labels else ("",):
            values = {label: LABEL_VALUES.get(label, provider) for label in labels}
            if name == "tracks_enriched_total":
                values["status"] = "completed"
            if name == "enrichment_tasks_total":
                values = {"source": provider or "spotify", "status": "ok"}
            base = ",".join(f'{k}="{v}"' for k, v in sorted(values.items()))
            if kind == "histogram":
                for le, share in (("0.1", 0.5), ("1", 0.9), ("+Inf", 1.0)):
                    sep = "," if base else ""
                    lines.append(f'{name}_bucket{{{base}{sep}le="{le}"}} {10 * scrape * share}')
                lines.append(f"{name}_sum{{{base}}} {2.0 * scrape}")
                lines.append(f"{name}_count{{{base}}} {10 * scrape}")
            elif kind == "counter":
                lines.append(f"{name}{{{base}}} {5 * scrape}")
            elif name == "api_gateway_circuit_breaker_state":
                lines.append(f"{name}{{{base}}} {2 if provider == 'discogs' else 0}")
            else:
                lines.append(f"{name}{{{base}}} 3")
    return "\n".join(lines) + "\n"


@pytest.fixture
def exporter() -> Iterator[str]:
    """``host:port`` of the hand-written exporter, in a thread of its own."""
    scrapes = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            scrapes[0] += 1
            body = exposition(scrapes[0]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_check_metrics_helper_passes_a_clean_exposition_and_names_a_lint(promtool):
    assert check_metrics(exposition(1)) == ""
    without_help = "\n".join(
        line for line in exposition(1).splitlines() if not line.startswith("# HELP")
    )
    assert "api_gateway_rate_limit_tokens no help text" in check_metrics(without_help + "\n")


def test_alert_fires_and_every_panel_evaluates(prometheus, exporter, tmp_path):
    rules = rules_with_short_for(ALERTS, tmp_path / "alerts.yml", "2s")
    server = prometheus([exporter], [rules])

    def firing() -> list[dict]:
        return [
            a
            for a in server.alerts()
            if a["labels"]["alertname"] == "CircuitBreakerOpen" and a["state"] == "firing"
        ]

    alerts = server.wait_for(firing, 60, "CircuitBreakerOpen firing")
    assert [a["labels"] for a in alerts] == [
        {"alertname": "CircuitBreakerOpen", "provider": "discogs", "severity": "critical"}
    ]
    assert alerts[0]["value"] in ("2e+00", "2")
    # A few scrapes in, so that every rate() has two samples.
    server.wait_for(
        lambda: server.query("count_over_time(api_gateway_circuit_breaker_state[1m]) >= 4"),
        60,
        "four scrapes",
    )
    empty = []
    for dashboard, title, expr in dashboard_targets():
        if not server.query(concrete_promql(expr, window="1m")):
            empty.append(f"{dashboard} / {title}: {expr}")
    assert not empty, "\n".join(empty)
    # and a query naming a metric that does not exist returns nothing (the check can fail)
    assert (
        server.query(concrete_promql("sum by (provider) (rate(api_gateway_no_such_total[1m]))"))
        == []
    )
