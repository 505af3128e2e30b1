"""The alert rules of ``monitoring/prometheus``: ``promtool check rules``, ``promtool test rules``
(each alert with series that fire it and series that do not), the example scrape config, and
the metric names the rules use."""

from __future__ import annotations

import re
import subprocess

import yaml
from known_metrics import KNOWN_METRICS, TARGET_LABELS, series_names
from prometheus_process import ALERTS, ALERTS_TEST, SCRAPE_CONFIG, rules_with_short_for
from promql_names import promql_names

ALERT_NAMES = {
    "CircuitBreakerOpen",
    "HighCacheMissRate",
    "RateLimitExhausted",
    "HighAPIErrorRate",
    "RetryStorm",
    "EnrichmentFailuresRising",
    "StaleDataServed",
}


def rules() -> list[dict]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ALERTS.parent)


def test_promtool_check_rules_passes(promtool):
    result = run(promtool, "check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERT_NAMES)} rules found" in result.stdout


def test_promtool_test_rules_passes(promtool):
    result = run(promtool, "test", "rules", str(ALERTS_TEST))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_test_rules_fails_on_a_broken_rule(promtool, tmp_path):
    """The unit tests can fail: with CircuitBreakerOpen's threshold at "> 1" a half-open
    breaker no longer counts, and the rule test that expects it firing fails."""
    broken = tmp_path / "alerts.yml"
    text = ALERTS.read_text().replace(
        "max by (provider) (api_gateway_circuit_breaker_state) > 0",
        "max by (provider) (api_gateway_circuit_breaker_state) > 2",
    )
    assert text != ALERTS.read_text()
    broken.write_text(text)
    (tmp_path / "alerts_test.yml").write_text(ALERTS_TEST.read_text())
    result = subprocess.run(
        [promtool, "test", "rules", "alerts_test.yml"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "alertname: CircuitBreakerOpen" in result.stdout + result.stderr


def test_every_alert_of_the_issue_is_there_and_unit_tested():
    assert {rule["alert"] for rule in rules()} == ALERT_NAMES
    tested = set(re.findall(r"(?m)^\s+alertname: (\w+)$", ALERTS_TEST.read_text()))
    assert tested == ALERT_NAMES
    by_name = {rule["alert"]: rule for rule in rules()}
    breaker = by_name["CircuitBreakerOpen"]
    assert breaker["expr"] == "max by (provider) (api_gateway_circuit_breaker_state) > 0"
    assert breaker["for"] == "5m"


def test_dead_letter_backlog_is_documented_but_not_active():
    """No dead letters exist yet: the rule is written out, commented, on the future gauge."""
    text = ALERTS.read_text()
    assert "DeadLetterBacklog" not in {rule["alert"] for rule in rules()}
    assert re.search(r"(?m)^\s+# - alert: DeadLetterBacklog$", text)
    assert "#   expr: sum by (provider) (api_gateway_dead_letters_pending) > 100" in text


def test_rules_name_only_known_metrics_and_labels():
    names = series_names()
    for rule in rules():
        metrics, labels = promql_names(rule["expr"])
        assert metrics, rule["alert"]
        unknown = metrics - set(names)
        assert not unknown, f"{rule['alert']} names unknown metrics {unknown}"
        allowed = TARGET_LABELS.union(*(KNOWN_METRICS[names[m]][1] for m in metrics))
        assert labels <= allowed, f"{rule['alert']} uses unknown labels {labels - allowed}"
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["runbook"] == f"docs/operations.md#{rule['alert'].lower()}"


def test_the_example_scrape_config_is_valid(promtool):
    result = run(promtool, "check", "config", str(SCRAPE_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    assert config["rule_files"] == ["alerts.yml"]
    assert {job["job_name"] for job in config["scrape_configs"]} == {"apigw-crawl", "apigw-scrapyd"}


def test_the_test_copy_of_the_rules_only_shortens_for(promtool, tmp_path):
    copy = rules_with_short_for(ALERTS, tmp_path / "alerts.yml", "2s")
    original = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    shortened = yaml.safe_load(copy.read_text())["groups"][0]["rules"]
    assert [rule["for"] for rule in shortened] == ["2s"] * len(original)
    assert [{**rule, "for": "2s"} for rule in original] == shortened
    result = run(promtool, "check", "rules", str(copy))
    assert result.returncode == 0, result.stdout + result.stderr
