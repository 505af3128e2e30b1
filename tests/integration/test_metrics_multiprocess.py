"""A Scrapyd-like node: three real ``scrapy crawl`` processes write their metrics to
``PROMETHEUS_MULTIPROC_DIR``; ``apigw serve`` (a real subprocess, started first: it wipes the
directory) exposes their counters summed, after the three have ended."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLE_PROJECT, example_crawl_command, example_crawl_env
from exposition import Samples, Serve, scrape

PROMTOOL = shutil.which("promtool")
#: One stat a line in Scrapy's "Dumping Scrapy stats" (pprint of the stats dict).
STAT_LINE = re.compile(r"'(apigw/[^']+)': (\d+)[,}]")
JOBS = 3


def start_job(tmp_path: Path, n: int, sandbox: Any, directory: Path) -> subprocess.Popen[bytes]:
    args = [
        *("-a", "limit=1"),
        *("-s", f"APIGW_SANDBOX_URL={sandbox.url}", "-s", f"APIGW_SANDBOX_SPEED={sandbox.speed}"),
        # Each job its own cache: each calls the providers.
        *("-s", f"APIGW_CACHE_PATH={tmp_path / f'cache{n}.sqlite3'}"),
        *("-s", "TELNETCONSOLE_ENABLED=False", "-O", str(tmp_path / f"items{n}.jsonl")),
    ]
    env = {**example_crawl_env(), "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    return subprocess.Popen(
        example_crawl_command(*args),
        cwd=EXAMPLE_PROJECT,
        env=env,
        stdout=(tmp_path / f"job{n}.log").open("wb"),
        stderr=subprocess.STDOUT,
    )


def dumped_stats(log: str) -> dict[str, int]:
    """The ``apigw/*`` integer stats of a crawl's final stats dump."""
    dump = log.split("Dumping Scrapy stats:", 1)
    assert len(dump) == 2, log[-3000:]
    return {key: int(value) for key, value in STAT_LINE.findall(dump[1])}


@pytest.mark.timeout(600)
def test_apigw_serve_sums_the_counters_of_three_jobs_that_ended(sandbox, tmp_path):
    sandbox.set_faults("musicbrainz", error_rate=0.3)
    directory = tmp_path / "prometheus"
    directory.mkdir()
    leftover = directory / "counter_999999.db"
    leftover.write_bytes(b"an earlier run's file: wiped at start")
    serve = Serve(directory)
    try:
        port = serve.port()
        assert not leftover.exists()
        assert Samples(scrape(port)).values == {}  # nothing yet
        jobs = [start_job(tmp_path, n, sandbox, directory) for n in range(JOBS)]
        for job in jobs:
            assert job.wait(timeout=480) == 0
        logs = [(tmp_path / f"job{n}.log").read_text("utf-8", "replace") for n in range(JOBS)]
        stats = [dumped_stats(log) for log in logs]
        total: Counter[str] = Counter()
        for job_stats in stats:
            total.update(job_stats)
        text = scrape(port)
    finally:
        serve.stop()
    metrics = Samples(text)
    for job_stats in stats:  # every job did the work (so a sum is not one job's count)
        assert job_stats.get("apigw/spotify/requests", 0) > 0
    providers = {k.split("/")[1] for k in total if k.count("/") >= 2} - {"items", "fleet"}
    assert {"spotify", "musicbrainz"} <= providers
    for p in sorted(providers):
        assert (
            metrics.get("api_gateway_rate_limit_requests_total", provider=p, status="allowed")
            == total[f"apigw/{p}/requests"]
        ), p
        assert (
            metrics.get("api_gateway_rate_limit_wait_seconds_count", provider=p)
            == (total[f"apigw/{p}/requests"])
        ), p
        for key, value in total.items():
            parts = key.split("/")
            if parts[1] != p or len(parts) != 4:
                continue
            if parts[2] == "responses":
                name, labels = "api_gateway_responses_total", {"outcome": parts[3]}
            elif parts[2] == "retries":
                name, labels = "api_gateway_retry_attempts_total", {"error_type": parts[3]}
            else:
                continue
            assert metrics.get(name, provider=p, **labels) == value, key
        for key, value in total.items():
            if key.startswith(f"apigw/{p}/results/"):
                status = key.rsplit("/", 1)[1]
                assert metrics.get("enrichment_tasks_total", source=p, status=status) == value
    assert total["apigw/musicbrainz/retries"] > 0  # the faults show in the sum
    statuses = {
        key.split("/")[2]: value
        for key, value in total.items()
        if key.startswith("apigw/items/") and key.count("/") == 2
    }
    statuses.pop("timed_out", None)
    statuses.pop("interrupted", None)
    for status, value in statuses.items():
        assert metrics.get("tracks_enriched_total", status=status) == value, status
    assert metrics.total("tracks_enriched_total") == sum(statuses.values()) > 0
    # Every job marked itself dead at engine stop: no live gauge is left.
    assert not any(n == "api_gateway_circuit_breaker_state" for n, _ in metrics.values)
    assert not any(n == "api_gateway_rate_limit_tokens" for n, _ in metrics.values)
    if PROMTOOL is None:
        pytest.skip("promtool is not installed (Debian's prometheus package provides it)")
    checked = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
