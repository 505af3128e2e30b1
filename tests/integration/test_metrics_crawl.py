"""One crawl with faults: its ``/metrics`` (served from inside the crawl, APIGW_METRICS_PORT)
says exactly what its own ``apigw/*`` stats say, and passes ``promtool check metrics``."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from conftest import gateway_settings, run_crawl
from exposition import Samples
from scrapy import signals
from spiders import ItemsSpider, UrlsSpider

from scrapy_apigw.gateway import Gateway

PROMTOOL = shutil.which("promtool")
OUTCOMES = (
    "success",
    "not_found",
    "forbidden",
    "client_error",
    "auth_failed",
    "rate_limited",
    "server_error",
    "network_error",
    "malformed",
)


def stat(stats: dict[str, Any], key: str) -> float:
    return float(stats.get(f"apigw/{key}", 0))


def stats_under(stats: dict[str, Any], prefix: str) -> dict[str, float]:
    """``{rest: value}`` of the stats ``apigw/<prefix><rest>`` with no further ``/``."""
    full = f"apigw/{prefix}"
    return {
        k[len(full) :]: float(v)
        for k, v in stats.items()
        if k.startswith(full) and "/" not in k[len(full) :]
    }


def assert_metrics_match_stats(
    metrics: Samples,
    stats: dict[str, Any],
    items: list[Any],
    used: frozenset[str] = frozenset({"spotify", "musicbrainz"}),
) -> None:
    """Every metric mirroring a stat has the stat's value (for each provider called; *used*
    must be among them)."""
    providers = {k.split("/")[1] for k in stats if k.startswith("apigw/") and k.count("/") >= 2}
    providers -= {"items", "fleet", "coverage", "deadletters", "enrich"}  # not providers
    assert used <= providers, providers
    for p in sorted(providers):
        assert metrics.get(
            "api_gateway_rate_limit_requests_total", provider=p, status="allowed"
        ) == stat(stats, f"{p}/requests"), p
        assert metrics.get(
            "api_gateway_rate_limit_requests_total", provider=p, status="throttled"
        ) == stat(stats, f"{p}/throttle/waits"), p
        assert metrics.get(
            "api_gateway_rate_limit_requests_total", provider=p, status="rejected"
        ) == stat(stats, f"{p}/rate_limit/rejected"), p
        if stat(stats, f"{p}/requests"):
            waits = metrics.get("api_gateway_rate_limit_wait_seconds_count", provider=p)
            assert waits == stat(stats, f"{p}/requests"), p
            # wait_ms rounds each wait over 1 ms to the millisecond; the histogram has them all.
            waited = metrics.get("api_gateway_rate_limit_wait_seconds_sum", provider=p)
            slack = 0.001 * stat(stats, f"{p}/requests") + 1e-6
            assert abs(waited - stat(stats, f"{p}/throttle/wait_ms") / 1000) <= slack, p
        answered = 0.0
        for outcome in OUTCOMES:
            value = stat(stats, f"{p}/responses/{outcome}")
            assert metrics.get("api_gateway_responses_total", provider=p, outcome=outcome) == (
                value
            ), (p, outcome)
            answered += value
        assert metrics.get("api_response_time_seconds_count", provider=p) == answered, p
        assert metrics.total("api_gateway_cache_hits_total", provider=p) == stat(
            stats, f"{p}/cache/hit"
        ), p
        assert metrics.total("api_gateway_cache_misses_total", provider=p) == stat(
            stats, f"{p}/cache/miss"
        ), p
        assert metrics.total("api_gateway_cache_errors_total", provider=p) == stat(
            stats, f"{p}/cache/error"
        ), p
        assert metrics.get("api_gateway_cache_stale_served_total", provider=p) == stat(
            stats, f"{p}/cache/stale_served"
        ), p
        for name, key in (
            ("api_gateway_circuit_breaker_failures_total", "breaker/failures"),
            ("api_gateway_circuit_breaker_opens_total", "breaker/open"),
            ("api_gateway_circuit_breaker_recoveries_total", "breaker/closed"),
            ("api_gateway_circuit_breaker_rejected_total", "breaker/rejected"),
            ("api_gateway_retry_success_total", "retry/succeeded"),
            ("api_gateway_retry_failures_total", "retry/gave_up"),
            ("api_gateway_rate_limit_pauses_total", "pauses"),
            ("api_gateway_rate_limit_decreases_total", "rate/decreases"),
        ):
            assert metrics.get(name, provider=p) == stat(stats, f"{p}/{key}"), (p, name)
        by_type = stats_under(stats, f"{p}/retries/")
        assert sum(by_type.values()) == stat(stats, f"{p}/retries"), p
        assert metrics.total("api_gateway_retry_attempts_total", provider=p) == stat(
            stats, f"{p}/retries"
        ), p
        for error_type, value in by_type.items():
            assert (
                metrics.get("api_gateway_retry_attempts_total", provider=p, error_type=error_type)
                == value
            ), (p, error_type)
        for status, value in stats_under(stats, f"{p}/results/").items():
            assert metrics.get("enrichment_tasks_total", source=p, status=status) == value
        assert metrics.total("enrichment_tasks_total", source=p) == sum(
            stats_under(stats, f"{p}/results/").values()
        )
        saved = {
            "singleflight": stat(stats, f"{p}/singleflight/saved"),
            "refusal_remembered": stat(stats, f"{p}/refusals/remembered"),
            "batch": sum(
                float(v)
                for k, v in stats.items()
                if k.startswith(f"apigw/{p}/batch/") and k.endswith("/saved")
            ),
            **stats_under(stats, f"{p}/calls_saved/"),
        }
        for reason, value in saved.items():
            assert metrics.get("api_gateway_calls_saved_total", provider=p, reason=reason) == (
                value
            ), (p, reason)
        assert metrics.total("api_gateway_calls_saved_total", provider=p) == sum(saved.values())
        if f"apigw/{p}/rate/effective" in stats:
            assert (
                metrics.get("api_gateway_rate_limit_effective_rate", provider=p)
                == (stats[f"apigw/{p}/rate/effective"])
            )
        assert metrics.get("api_gateway_circuit_breaker_state", provider=p) in (0, 1, 2)
        if not stat(stats, f"{p}/breaker/open"):
            assert metrics.get("api_gateway_circuit_breaker_state", provider=p) == 0
        assert metrics.has("api_gateway_rate_limit_tokens", provider=p)
    statuses = stats_under(stats, "items/")
    statuses.pop("timed_out", None)
    statuses.pop("interrupted", None)
    for status, value in statuses.items():
        assert metrics.get("tracks_enriched_total", status=status) == value, status
    assert metrics.total("tracks_enriched_total") == sum(statuses.values()) == len(items)
    looked_up = [i for i in items if i["enrichment_status"] != "skipped"]
    assert metrics.get("enrichment_duration_seconds_count") == len(looked_up)


async def http_get(url: str) -> tuple[int, bytes]:
    import treq
    from scrapy.utils.defer import maybe_deferred_to_future

    response = await maybe_deferred_to_future(treq.get(url, persistent=False))
    body = await maybe_deferred_to_future(response.content())
    return response.code, body


def refused(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(5)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest_twisted.ensureDeferred
async def test_metrics_of_a_crawl_with_faults_equal_its_stats(sandbox, tmp_path, tracklists_spider):
    from scrapy.utils.test import get_crawler

    # MusicBrainz down (breaker opens, retries give up), Spotify failing now and then (its
    # retries mostly succeed).
    sandbox.set_faults("musicbrainz", outage=True)
    sandbox.set_faults("spotify", error_rate=0.25)
    settings = gateway_settings(sandbox, tmp_path, APIGW_METRICS_PORT=0)
    crawler = get_crawler(tracklists_spider, settings)
    seen: dict[str, Any] = {}

    async def read_metrics(spider: Any = None, reason: str = "") -> None:
        # After the pipeline closed, before the engine stops: the crawl's final counts.
        seen["port"] = port = crawler.apigw_ops.port
        seen["metrics"] = await http_get(f"http://127.0.0.1:{port}/metrics")
        seen["root"] = await http_get(f"http://127.0.0.1:{port}/")
        seen["stats"] = await http_get(f"http://127.0.0.1:{port}/stats")
        seen["health"] = await http_get(f"http://127.0.0.1:{port}/health")
        # No APIGW_ADMIN_TOKEN in this crawl: /admin is off.
        seen["admin"] = await http_get(f"http://127.0.0.1:{port}/admin/circuit-breakers")

    crawler.signals.connect(read_metrics, signal=signals.spider_closed)
    await crawler.crawl(limit=1)
    stats = dict(crawler.stats.get_stats())
    feed = Path(next(iter(settings["FEEDS"])))
    items = [json.loads(line) for line in feed.read_text("utf-8").splitlines() if line.strip()]

    code, body = seen["metrics"]
    assert code == 200
    text = body.decode("utf-8")
    metrics = Samples(text)
    assert_metrics_match_stats(metrics, stats, items)
    # The faults show: non-zero breaker and retry metrics, on both sides of the comparison.
    assert metrics.get("api_gateway_circuit_breaker_opens_total", provider="musicbrainz") >= 1
    assert metrics.get("api_gateway_circuit_breaker_state", provider="musicbrainz") > 0
    assert metrics.get("api_gateway_retry_failures_total", provider="musicbrainz") >= 1
    assert metrics.get("api_gateway_retry_success_total", provider="spotify") >= 1
    assert (
        metrics.get(
            "api_gateway_retry_attempts_total", provider="musicbrainz", error_type="server_error"
        )
        >= 1
    )
    assert metrics.get("api_gateway_responses_total", provider="spotify", outcome="success") > 0
    assert b"/metrics" in seen["root"][1]
    # /health and /admin, next to /metrics: the crawl's own breakers.
    code, body = seen["health"]
    health = json.loads(body)
    assert health["mode"] == "crawl"
    assert health["circuit_breakers"]["musicbrainz"]["state"] == "open"
    code, body = seen["admin"]
    assert code == 403 and b"APIGW_ADMIN_TOKEN" in body
    # /stats, next to /metrics: the coverage report of the items that reached the feed.
    code, body = seen["stats"]
    assert code == 200
    report = json.loads(body)
    assert report["items"] == len(items)
    assert report["statuses"]["partial"]["count"] == sum(
        1 for i in items if i["enrichment_status"] == "partial"
    )
    # The registry after the crawl says the same (nothing counted after spider_closed).
    from prometheus_client import generate_latest

    registry = Gateway.for_crawler(crawler).metrics.registry
    assert_metrics_match_stats(Samples(generate_latest(registry).decode()), stats, items)
    # Low-cardinality labels only: no URL, host or secret anywhere.
    for (_, labels), _value in metrics.values.items():
        for key, value in labels:
            assert "/" not in value and ":" not in value, (key, value)
    # The port closes with the engine.
    assert refused(seen["port"])
    if PROMTOOL is None:
        pytest.skip("promtool is not installed (Debian's prometheus package provides it)")
    checked = promtool_check(text)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest_twisted.ensureDeferred
async def test_spider_requests_to_providers_are_measured_like_pipeline_calls(sandbox, tmp_path):
    # The spider path (downloader middlewares): server errors retried, some retries succeed,
    # some give up (max_retries 1).
    sandbox.set_faults("musicbrainz", error_rate=0.5, error_status=503)
    urls = [f"{sandbox.url}/musicbrainz/ws/2/isrc/ZZZZZ00000{n:02d}?fmt=json" for n in range(12)]
    settings = gateway_settings(
        sandbox,
        tmp_path,
        APIGW_METRICS_PORT=0,
        USER_AGENT="apigw-tests/1.0 ( test@example.invalid )",
        APIGW_PROVIDERS={"musicbrainz": {"max_retries": 1, "failure_threshold": 100}},
    )
    result = await run_crawl(UrlsSpider, settings, urls=urls)
    from prometheus_client import generate_latest

    registry = Gateway.for_crawler(result.crawler).metrics.registry
    metrics = Samples(generate_latest(registry).decode("utf-8"))
    stats = result.stats
    assert_metrics_match_stats(metrics, stats, [], used=frozenset({"musicbrainz"}))
    retried = stats["apigw/musicbrainz/retries"]
    assert retried >= 1 and retried == stats["retry/count"]
    ended = stat(stats, "musicbrainz/retry/succeeded") + stat(stats, "musicbrainz/retry/gave_up")
    assert ended == retried  # one retry each at most: every retried request ended once
    assert metrics.get("api_response_time_seconds_count", provider="musicbrainz") == len(
        [r for r in sandbox.log() if r.get("provider") == "musicbrainz"]
    )


@pytest_twisted.ensureDeferred
async def test_a_busy_metrics_port_is_one_error_and_the_crawl_goes_on(sandbox, tmp_path, caplog):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings = gateway_settings(sandbox, tmp_path, APIGW_METRICS_PORT=port)
        result = await run_crawl(ItemsSpider, settings, items=[{"artist": "A", "title": "B"}])
    assert result.stats["finish_reason"] == "finished"
    assert len(result.items) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and errors[0].startswith(
        f"apigw: cannot serve metrics on 127.0.0.1:{port} (APIGW_METRICS_HOST, APIGW_METRICS_PORT)"
    ), errors
    assert result.crawler.apigw_ops.port is None


@pytest_twisted.ensureDeferred
async def test_without_a_port_nor_a_multiprocess_dir_there_are_no_metrics(sandbox, tmp_path):
    settings = gateway_settings(sandbox, tmp_path)
    result = await run_crawl(ItemsSpider, settings, items=[{"artist": "A", "title": "B"}])
    assert Gateway.for_crawler(result.crawler).metrics is None
    assert not hasattr(result.crawler, "apigw_ops")
    assert len(result.items) == 1
