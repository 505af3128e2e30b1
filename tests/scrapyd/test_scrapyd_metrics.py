"""A real Scrapyd node exposing its jobs' metrics: ``PROMETHEUS_MULTIPROC_DIR`` in Scrapyd's
environment, ``apigw serve`` started first (it wipes the directory), two jobs of the deployed
example; after they ended, ``apigw serve`` answers with their counters summed
(docs/operations.md, "A Scrapyd node")."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from exposition import Samples, Serve, scrape
from scrapyd_helpers import (
    copy_example_project,
    deploy,
    job_environment,
    job_problems,
    job_stats,
    start_scrapyd,
)

pytest.importorskip("scrapyd", reason="scrapyd is in the test extra: pip install -e '.[test]'")
pytest.importorskip("scrapyd_client", reason="scrapyd-client is in the test extra")

pytestmark = [pytest.mark.scrapyd, pytest.mark.timeout(240)]

PROJECT = SPIDER = "tracklists"


def test_apigw_serve_sums_the_metrics_of_a_scrapyd_nodes_jobs(sandbox: Any, tmp_path: Path) -> None:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    serve = Serve(directory)
    server = None
    try:
        port = serve.port()
        env = job_environment(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(directory))
        server = start_scrapyd(tmp_path / "scrapyd", env=env)
        deploy(copy_example_project(tmp_path / "project", server.url))
        jobs = [
            server.schedule(
                PROJECT,
                SPIDER,
                {
                    "APIGW_SANDBOX_URL": sandbox.url,
                    "APIGW_SANDBOX_SPEED": sandbox.speed,
                    # Each job its own cache: both call the providers.
                    "APIGW_CACHE_PATH": str(tmp_path / f"cache{n}.sqlite3"),
                },
                limit=1,
            )
            for n in range(2)
        ]
        server.wait_finished(PROJECT, jobs, timeout=180)
        logs = [server.log(PROJECT, SPIDER, job) for job in jobs]
        text = scrape(port)
    finally:
        if server is not None:
            server.stop()
        serve.stop()
    total: Counter[str] = Counter()
    for log in logs:
        assert job_problems(log) == [], log[-3000:]
        stats = job_stats(log)
        assert stats.get("apigw/spotify/requests", 0) > 0  # both jobs did the work
        total.update({k: int(v) for k, v in stats.items() if k.startswith("apigw/")})
    metrics = Samples(text)
    for p in ("spotify", "musicbrainz", "discogs", "lastfm"):
        assert (
            metrics.get("api_gateway_rate_limit_requests_total", provider=p, status="allowed")
            == total[f"apigw/{p}/requests"]
        ), p
        assert (
            metrics.total("api_gateway_cache_misses_total", provider=p)
            == total[f"apigw/{p}/cache/miss"]
        ), p
    completed = total["apigw/items/completed"]
    assert completed > 0
    assert metrics.get("tracks_enriched_total", status="completed") == completed
    # Both jobs marked themselves dead when they stopped: no live gauge of theirs is left.
    assert not any(name == "api_gateway_circuit_breaker_state" for name, _ in metrics.values)
