"""The example project on a real Scrapyd: deployed with scrapyd-deploy, run with schedule.json.

One scrapyd (PyPI's, run by this interpreter so its jobs import the code under test) on a free
port in a temporary directory, for the module; the jobs run against the session sandbox. A
dead job also shows as "finished", so every job's log is read for errors too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scrapyd_helpers import (
    ScrapydServer,
    assert_complete,
    copy_example_project,
    deploy,
    job_environment,
    job_problems,
    job_stats,
    site_rows,
    start_scrapyd,
)

pytest.importorskip("scrapyd", reason="scrapyd is in the test extra: pip install -e '.[test]'")
pytest.importorskip("scrapyd_client", reason="scrapyd-client is in the test extra")

pytestmark = [pytest.mark.scrapyd, pytest.mark.timeout(120)]

PROJECT = SPIDER = "tracklists"


@pytest.fixture(scope="module")
def scrapyd_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scrapyd")


@pytest.fixture(scope="module")
def scrapyd(scrapyd_root: Path) -> Iterator[ScrapydServer]:
    """A running scrapyd with the example project deployed (from a copy, so scrapyd-deploy's
    setup.py, build/ and project.egg-info never land in the repository)."""
    server = start_scrapyd(scrapyd_root / "scrapyd", env=job_environment(scrapyd_root))
    try:
        project = copy_example_project(scrapyd_root / "project", server.url)
        output = deploy(project)  # the default target: the example's [deploy] section
        assert f'Deploying to project "{PROJECT}" in {server.url}/addversion.json' in output
        assert server.get("listspiders.json", project=PROJECT)["spiders"] == [
            "apigw_enrich",
            SPIDER,
        ]
        yield server
    finally:
        server.stop()


def sandbox_settings(sandbox: Any) -> dict[str, Any]:
    """Job settings pointing the example at the session sandbox (no secret among them)."""
    return {"APIGW_SANDBOX_URL": sandbox.url, "APIGW_SANDBOX_SPEED": sandbox.speed}


def provider_calls(sandbox: Any) -> list[dict[str, Any]]:
    return [r for r in sandbox.log() if r.get("provider") not in (None, "site", "admin", "sandbox")]


def run_job(scrapyd: ScrapydServer, settings: dict[str, Any]) -> tuple[list[dict], str]:
    """Schedule one job of the first tracklist, wait for it; its items and its log, checked
    to be free of errors."""
    job = scrapyd.schedule(PROJECT, SPIDER, settings, limit=1)
    scrapyd.wait_finished(PROJECT, [job], timeout=60)
    log = scrapyd.log(PROJECT, SPIDER, job)
    assert job_problems(log) == [], log[-3000:]
    return scrapyd.items(PROJECT, SPIDER, job), log


def test_the_deployed_example_runs_and_its_items_come_back_complete(
    scrapyd: ScrapydServer, sandbox: Any, scrapyd_root: Path
) -> None:
    rows = site_rows(sandbox, 1)
    assert rows >= 10
    settings = {**sandbox_settings(sandbox), "APIGW_CACHE_PATH": str(scrapyd_root / "c.sqlite3")}
    items, log = run_job(scrapyd, settings)
    assert_complete(items, log, rows)
    assert f"apigw: cache: embedded sqlite:{scrapyd_root / 'c.sqlite3'}" in log
    assert not [r for r in sandbox.log() if r.get("rate_limited")]


def test_without_a_cache_path_jobs_share_the_projects_user_cache_file(
    scrapyd: ScrapydServer, sandbox: Any, scrapyd_root: Path
) -> None:
    # Scrapyd's environment sets XDG_CACHE_HOME (job_environment); no APIGW_CACHE_PATH.
    path = scrapyd_root / "xdg-cache" / "scrapy-apigw" / PROJECT / "cache.sqlite3"
    rows = site_rows(sandbox, 1)
    first, log = run_job(scrapyd, sandbox_settings(sandbox))
    assert_complete(first, log, rows)
    assert f"apigw: cache: embedded sqlite:{path}\n" in log
    assert path.is_file() and job_stats(log)["apigw/spotify/cache/store"] > 0

    sandbox.reset()
    second, log = run_job(scrapyd, sandbox_settings(sandbox))
    assert_complete(second, log, rows)
    assert provider_calls(sandbox) == [], "the second job found every answer in the file"
    assert job_stats(log)["apigw/spotify/cache/hit"] > 0


def test_apigw_enrich_runs_as_a_job_and_its_dead_letters_go_to_the_user_cache_dir(
    scrapyd: ScrapydServer, sandbox: Any, scrapyd_root: Path
) -> None:
    """The built-in spider is schedulable (listed), and without APIGW_DEADLETTER_PATH its dead
    letters go next to the user cache file (a job's working directory has no scrapy.cfg, so
    no project .scrapy/): written by one job, replayed and removed by the next."""
    import json

    track = sandbox.catalog()["tracks"][0]
    catalog = scrapyd_root / "catalog.jsonl"
    catalog.write_text(
        json.dumps({"artist": track["artists"][0], "title": track["title"]}) + "\n", "utf-8"
    )
    path = scrapyd_root / "xdg-cache" / "scrapy-apigw" / PROJECT / "deadletters.sqlite3"
    settings = {**sandbox_settings(sandbox), "APIGW_CACHE_ENABLED": "False"}
    sandbox.set_faults("spotify", outage=True)
    job = scrapyd.schedule(PROJECT, "apigw_enrich", settings, input=str(catalog))
    scrapyd.wait_finished(PROJECT, [job], timeout=90)
    log = scrapyd.log(PROJECT, "apigw_enrich", job)
    assert job_problems(log) == [], log[-3000:]
    assert f"apigw: dead letters: sqlite:{path}\n" in log
    assert job_stats(log)["apigw/deadletters/written/partial"] == 1
    assert path.is_file()

    sandbox.clear_faults("spotify")
    replay = {**settings, "APIGW_DEADLETTER_PARTIAL_AFTER": "0"}
    job = scrapyd.schedule(PROJECT, "apigw_enrich", replay, dead_letters="1")
    scrapyd.wait_finished(PROJECT, [job], timeout=90)
    log = scrapyd.log(PROJECT, "apigw_enrich", job)
    assert job_problems(log) == [], log[-3000:]
    stats = job_stats(log)
    assert stats["apigw/deadletters/replayed"] == 1
    assert stats["apigw/deadletters/removed"] == 1
    items = scrapyd.items(PROJECT, "apigw_enrich", job)
    assert [i["enrichment_status"] for i in items] == ["completed"]
