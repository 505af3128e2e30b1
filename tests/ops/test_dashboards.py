"""The Grafana dashboards of ``monitoring/grafana``: importable JSON, a templated Prometheus
datasource, the panels the issue asks for, and only known metric and label names in their
PromQL. (That each panel returns data is checked against a real Prometheus after a crawl:
test_prometheus_crawl.py.)"""

from __future__ import annotations

import json
import re

import pytest
from known_metrics import KNOWN_METRICS, TARGET_LABELS, series_names
from prometheus_process import DASHBOARDS, concrete_promql, dashboard_targets
from promql_names import promql_names

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def load(path):
    return json.loads(path.read_text("utf-8"))


def test_three_dashboards_with_unique_uids():
    assert [p.name for p in DASHBOARDS] == [
        "cache-performance.json",
        "enrichment-pipeline.json",
        "resilience-patterns.json",
    ]
    uids = [load(p)["uid"] for p in DASHBOARDS]
    assert sorted(uids) == ["apigw-cache", "apigw-enrichment", "apigw-resilience"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_importable(path):
    dashboard = load(path)
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    assert dashboard["title"].startswith("scrapy-apigw: ")
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    if "provider" in variables:
        assert variables["provider"]["datasource"] == DATASOURCE
        assert variables["provider"]["allValue"] == ".*"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert panels
    for panel in panels:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE
            assert target["expr"].strip()
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
    used = {m for m in re.findall(r"\$(\w+)", path.read_text()) if not m.startswith("__")}
    assert used <= set(variables) | {"datasource"}, used - set(variables)


@pytest.mark.parametrize(
    ("dashboard", "expr", "title"), [(d, e, t) for d, t, e in dashboard_targets()]
)
def test_panel_names_only_known_metrics_and_labels(dashboard, expr, title):
    names = series_names()
    metrics, labels = promql_names(concrete_promql(expr))
    assert metrics, f"{dashboard} / {title}: no metric in {expr!r}"
    unknown = metrics - set(names)
    assert not unknown, f"{dashboard} / {title}: unknown metrics {unknown}"
    allowed = TARGET_LABELS.union(*(KNOWN_METRICS[names[m]][1] for m in metrics))
    assert labels <= allowed, f"{dashboard} / {title}: unknown labels {labels - allowed}"


def test_the_name_check_catches_a_misspelt_metric_or_label():
    names = set(series_names())
    metrics, labels = promql_names(
        'sum by (provder) (rate(api_gateway_cache_hit_total{x="1"}[5m]))'
    )
    assert metrics == {"api_gateway_cache_hit_total"} and not metrics <= names
    assert labels == {"provder", "x"}


def exprs_of(title_part: str) -> list[str]:
    found = [e for _d, t, e in dashboard_targets() if title_part.lower() in t.lower()]
    assert found, f"no panel titled like {title_part!r}"
    return found


def test_the_issues_panels_are_there():
    """Request rate by provider, breaker states, cache hit rate, token availability, retry
    attempts and success rate, response time p50/p95/p99, rate-limit wait time, enrichment
    outcomes."""
    assert any(
        "sum by (provider) (rate(api_gateway_rate_limit_requests_total" in e
        for e in exprs_of("request rate by provider")
    )
    assert any("api_gateway_circuit_breaker_state" in e for e in exprs_of("circuit breaker state"))
    assert any(
        "api_gateway_cache_hits_total" in e and "api_gateway_cache_misses_total" in e
        for e in exprs_of("cache hit rate")
    )
    assert any("api_gateway_rate_limit_tokens" in e for e in exprs_of("token availability"))
    assert any("api_gateway_retry_attempts_total" in e for e in exprs_of("retry attempts"))
    assert any("api_gateway_retry_success_total" in e for e in exprs_of("retry success rate"))
    response = exprs_of("response time p50 / p95 / p99")
    for quantile in ("0.5", "0.95", "0.99"):
        assert any(
            e.startswith(f"histogram_quantile({quantile}, ")
            and "api_response_time_seconds_bucket" in e
            for e in response
        ), quantile
    assert any(
        "api_gateway_rate_limit_wait_seconds_bucket" in e for e in exprs_of("rate-limit wait time")
    )
    assert any("tracks_enriched_total" in e for e in exprs_of("enrichment outcomes"))
