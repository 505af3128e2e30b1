"""The metrics' names and labels, the stats keys that move them, the HTTP root, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scrapy_apigw.ops.cli import build_parser, main
from scrapy_apigw.ops.metrics import GatewayMetrics
from scrapy_apigw.ops.serve import summed_registry, wipe

WORKTREE = Path(__file__).resolve().parents[2]
REQUESTS = "api_gateway_rate_limit_requests_total"
SAVED = "api_gateway_calls_saved_total"
RETRIES = "api_gateway_retry_attempts_total"
RESPONSES = "api_gateway_responses_total"

#: The issue's names and labels, exactly (the dashboards of the original system use them).
ISSUE_METRICS = {
    "api_gateway_rate_limit_requests": ("counter", {"provider", "status"}),
    "api_gateway_rate_limit_tokens": ("gauge", {"provider"}),
    "api_gateway_rate_limit_wait_seconds": ("histogram", {"provider"}),
    "api_gateway_cache_hits": ("counter", {"provider", "data_type"}),
    "api_gateway_cache_misses": ("counter", {"provider", "data_type"}),
    "api_gateway_cache_errors": ("counter", {"provider", "operation"}),
    "api_gateway_circuit_breaker_state": ("gauge", {"provider"}),
    "api_gateway_circuit_breaker_failures": ("counter", {"provider"}),
    "api_gateway_circuit_breaker_opens": ("counter", {"provider"}),
    "api_gateway_circuit_breaker_recoveries": ("counter", {"provider"}),
    "api_gateway_retry_attempts": ("counter", {"provider", "error_type"}),
    "api_gateway_retry_success": ("counter", {"provider"}),
    "api_gateway_retry_failures": ("counter", {"provider"}),
    "api_response_time_seconds": ("histogram", {"provider"}),
    "tracks_enriched": ("counter", {"status"}),
    "enrichment_duration_seconds": ("histogram", set()),
    "enrichment_tasks": ("counter", {"source", "status"}),
    # agreed extras
    "api_gateway_rate_limit_effective_rate": ("gauge", {"provider"}),
    "api_gateway_cache_stale_served": ("counter", {"provider"}),
    "api_gateway_calls_saved": ("counter", {"provider", "reason"}),
}


def families(metrics: GatewayMetrics) -> dict[str, tuple[str, set[str]]]:
    found = {}
    for family in metrics.registry.collect():
        labels: set[str] = set()
        for sample in family.samples:
            labels |= set(sample.labels) - {"le"}
        found[family.name] = (family.type, labels)
    return found


def value(metrics: GatewayMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_every_name_and_label_of_the_issue_is_exported():
    metrics = GatewayMetrics()
    metrics.start([("spotify", 10.0, 5)])
    metrics.observe_item(1.0)
    for key in (
        "spotify/requests",
        "spotify/breaker/failures",
        "spotify/breaker/open",
        "spotify/breaker/closed",
        "spotify/retries/server_error",
        "spotify/retry/succeeded",
        "spotify/retry/gave_up",
        "items/completed",
        "spotify/results/ok",
        "spotify/cache/stale_served",
        "spotify/singleflight/saved",
    ):
        metrics.count(key)
    metrics.observe_wait("spotify", 0.0)
    metrics.observe_response("spotify", 0.2)
    metrics.cache_lookup("spotify", "search", hit=True)
    metrics.cache_lookup("spotify", "search", hit=False)
    metrics.cache_error("spotify", "read")
    found = families(metrics)
    for name, (kind, labels) in ISSUE_METRICS.items():
        assert found.get(name) == (kind, labels), name


@pytest.mark.parametrize(
    "key, amount, sample, labels",
    [
        ("spotify/requests", 1, REQUESTS, {"status": "allowed"}),
        ("spotify/throttle/waits", 1, REQUESTS, {"status": "throttled"}),
        ("spotify/rate_limit/rejected", 3, REQUESTS, {"status": "rejected"}),
        ("spotify/breaker/failures", 1, "api_gateway_circuit_breaker_failures_total", {}),
        ("spotify/breaker/open", 1, "api_gateway_circuit_breaker_opens_total", {}),
        ("spotify/breaker/closed", 1, "api_gateway_circuit_breaker_recoveries_total", {}),
        ("spotify/breaker/rejected", 2, "api_gateway_circuit_breaker_rejected_total", {}),
        ("spotify/retries/rate_limited", 1, RETRIES, {"error_type": "rate_limited"}),
        ("spotify/retry/succeeded", 1, "api_gateway_retry_success_total", {}),
        ("spotify/retry/gave_up", 1, "api_gateway_retry_failures_total", {}),
        ("spotify/responses/server_error", 1, RESPONSES, {"outcome": "server_error"}),
        ("spotify/cache/stale_served", 1, "api_gateway_cache_stale_served_total", {}),
        ("spotify/batch/audio_features/saved", 7, SAVED, {"reason": "batch"}),
        ("spotify/singleflight/saved", 1, SAVED, {"reason": "singleflight"}),
        ("spotify/refusals/remembered", 1, SAVED, {"reason": "refusal_remembered"}),
        ("lastfm/calls_saved/toptags_from_getinfo", 2, SAVED, {"reason": "toptags_from_getinfo"}),
        ("spotify/pauses", 1, "api_gateway_rate_limit_pauses_total", {}),
        ("spotify/rate/decreases", 1, "api_gateway_rate_limit_decreases_total", {}),
    ],
)  # fmt: skip
def test_each_stats_key_moves_its_metric_by_the_same_amount(key, amount, sample, labels):
    metrics = GatewayMetrics()
    provider = key.split("/")[0]
    metrics.count(key, amount)
    metrics.count(key, amount)
    assert value(metrics, sample, provider=provider, **labels) == 2 * amount


@pytest.mark.parametrize(
    "key, sample, labels",
    [
        ("items/partial", "tracks_enriched_total", {"status": "partial"}),
        ("discogs/results/ok", "enrichment_tasks_total", {"source": "discogs", "status": "ok"}),
    ],
)  # fmt: skip
def test_items_and_results_by_status(key, sample, labels):
    metrics = GatewayMetrics()
    metrics.count(key)
    assert value(metrics, sample, **labels) == 1


def test_keys_no_metric_mirrors_change_nothing():
    metrics = GatewayMetrics()
    before = [s for f in metrics.registry.collect() for s in f.samples]
    for key in (
        "spotify/cache/store",
        "spotify/cache/hit",  # counted with its data type by cache_lookup
        "spotify/retries",  # counted by error type (retries/<outcome>)
        "spotify/throttle/wait_ms",
        "spotify/batch/track/sent",
        "fleet/outages",
        "items/timed_out",
        "items/interrupted",
        "spotify/auth/tokens",
    ):
        metrics.count(key, 5)
    assert [s for f in metrics.registry.collect() for s in f.samples] == before


def test_breaker_transitions_set_the_state_gauge():
    metrics = GatewayMetrics()
    metrics.start([("musicbrainz", 1.0, 1)])
    state = "api_gateway_circuit_breaker_state"
    assert value(metrics, state, provider="musicbrainz") == 0
    metrics.count("musicbrainz/breaker/open")
    assert value(metrics, state, provider="musicbrainz") == 2
    metrics.count("musicbrainz/breaker/half_open")
    assert value(metrics, state, provider="musicbrainz") == 1
    metrics.count("musicbrainz/breaker/closed")
    assert value(metrics, state, provider="musicbrainz") == 0
    assert value(metrics, "api_gateway_circuit_breaker_opens_total", provider="musicbrainz") == 1
    assert (
        value(metrics, "api_gateway_circuit_breaker_recoveries_total", provider="musicbrainz") == 1
    )


def test_gauges_start_at_the_configured_rate_and_burst():
    metrics = GatewayMetrics()
    metrics.start([("discogs", 1.0, 3)])
    assert value(metrics, "api_gateway_rate_limit_effective_rate", provider="discogs") == 1.0
    assert value(metrics, "api_gateway_rate_limit_tokens", provider="discogs") == 3
    metrics.set_rate("discogs", 0.5)
    metrics.set_tokens("discogs", 1.25)
    assert value(metrics, "api_gateway_rate_limit_effective_rate", provider="discogs") == 0.5
    assert value(metrics, "api_gateway_rate_limit_tokens", provider="discogs") == 1.25


def test_two_crawlers_in_one_process_have_registries_of_their_own():
    first, second = GatewayMetrics(), GatewayMetrics()  # no "Duplicated timeseries"
    first.count("spotify/requests")
    assert value(first, REQUESTS, provider="spotify", status="allowed") == 1
    assert value(second, REQUESTS, provider="spotify", status="allowed") is None


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PYTHONPATH": str(WORKTREE), **env}
    environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_importing_the_ops_modules_imports_neither_prometheus_client_nor_the_reactor():
    done = run_python(
        """
        import sys
        import scrapy_apigw.addon, scrapy_apigw.ops.metrics, scrapy_apigw.ops.web
        import scrapy_apigw.ops.extension, scrapy_apigw.ops.cli, scrapy_apigw.ops.serve
        print(sorted(m for m in sys.modules if m.startswith("prometheus_client")))
        print("twisted.internet.reactor" in sys.modules)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["[]", "False"]


def test_serve_without_a_directory_says_how_to_give_one(capsys, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert main(["serve"]) == 2
    assert "--multiproc-dir or set PROMETHEUS_MULTIPROC_DIR" in capsys.readouterr().err


def test_the_command_lists_its_subcommands():
    parser = build_parser()
    args = parser.parse_args(["serve", "--port", "0", "--multiproc-dir", "/x"])
    assert (args.command, args.port, args.host, args.multiproc_dir) == (
        "serve",
        0,
        "127.0.0.1",
        "/x",
    )
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["frobnicate"])
    assert exited.value.code == 2


def test_wipe_removes_the_metric_files_only(tmp_path):
    directory = tmp_path / "new" / "dir"
    assert wipe(directory) == 0 and directory.is_dir()
    (directory / "counter_1.db").write_bytes(b"x")
    (directory / "gauge_livemax_2.db").write_bytes(b"x")
    (directory / "README").write_text("not ours")
    assert wipe(directory) == 2
    assert [p.name for p in directory.iterdir()] == ["README"]


def test_a_killed_jobs_counters_stay_and_its_live_gauges_go(tmp_path):
    # A job killed before its engine stopped never marked itself dead: apigw serve does.
    done = run_python(
        """
        import os
        from scrapy_apigw.ops.metrics import metrics_for_process
        m = metrics_for_process()
        m.start([("spotify", 10.0, 5)])
        m.count("spotify/requests", 4)
        os._exit(0)
        """,
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert any(p.name.startswith("gauge_live") for p in tmp_path.iterdir())
    registry = summed_registry(tmp_path)
    labels = {"provider": "spotify", "status": "allowed"}
    assert registry.get_sample_value("api_gateway_rate_limit_requests_total", labels) == 4
    state = registry.get_sample_value("api_gateway_circuit_breaker_state", {"provider": "spotify"})
    assert state is None
    assert not any(p.name.startswith("gauge_live") for p in tmp_path.iterdir())


def test_the_root_mounts_metrics_and_the_children():
    from twisted.web.resource import Resource
    from twisted.web.test.requesthelper import DummyRequest

    from scrapy_apigw.ops.web import build_root

    metrics = GatewayMetrics()
    metrics.count("spotify/requests")
    health = Resource()
    root = build_root({b"health": health}, registry=metrics.registry)
    assert root.getStaticEntity(b"health") is health
    request = DummyRequest([b"metrics"])
    body = root.getStaticEntity(b"metrics").render_GET(request)
    assert b'api_gateway_rate_limit_requests_total{provider="spotify",status="allowed"} 1.0' in body
    assert request.responseHeaders.getRawHeaders(b"content-type") == [
        b"text/plain; version=0.0.4; charset=utf-8"
    ]
    index = root.render_GET(DummyRequest([b""]))
    assert index.splitlines()[1:] == [b"/health", b"/metrics"]
    with pytest.raises(ValueError, match="/metrics"):
        build_root({b"metrics": health}, registry=metrics.registry)
