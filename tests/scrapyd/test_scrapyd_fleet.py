"""Three Scrapyd jobs at once share each provider's quota through one Redis.

Set up as the README's Scrapyd section tells users: the Redis URL (with a password, so a
credential) is in Scrapyd's environment, which the example's ``settings.py`` reads
(``APIGW_REDIS_URL = os.environ.get(...)``); only harmless settings go through
``-d setting=``. Scrapyd may run three jobs at once (``max_proc = 3``); the three jobs crawl
the same tracklist against ONE sandbox subprocess (one provider for all of them: the
session's, started by ``start_sandbox_process``), with the answer cache off so that each job
asks the providers itself: three times one job's load, at once.

Measured by the issue before the fleet existed (full crawls, one job's settings): 1,110
rate-limited answers for three jobs, 0 for one.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fixtures_redis import RedisServer, own_redis_server
from scrapyd_helpers import (
    ScrapydServer,
    assert_complete,
    copy_example_project,
    deploy,
    job_environment,
    job_problems,
    site_rows,
    start_scrapyd,
)

pytest.importorskip("scrapyd", reason="scrapyd is in the test extra: pip install -e '.[test]'")
pytest.importorskip("scrapyd_client", reason="scrapyd-client is in the test extra")

pytestmark = [pytest.mark.scrapyd, pytest.mark.timeout(180)]

PROJECT = SPIDER = "tracklists"
JOBS = 3
#: Redis' password: the credential that must appear in no log, job listing or item.
PASSWORD = f"fleet-secret-{secrets.token_hex(8)}"


@pytest.fixture(scope="module")
def fleet_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scrapyd-fleet")


@pytest.fixture(scope="module")
def fleet_redis(fleet_root: Path) -> Iterator[RedisServer]:
    """A redis-server of this module's own that wants a password (``--requirepass``)."""
    with own_redis_server(fleet_root / "redis", ("--requirepass", PASSWORD)) as server:
        yield server


@pytest.fixture(scope="module")
def scrapyd(fleet_root: Path, fleet_redis: RedisServer) -> Iterator[ScrapydServer]:
    """Scrapyd running up to three jobs at once, the Redis URL in its environment, the example
    deployed (from a copy)."""
    redis_url = f"redis://:{PASSWORD}@127.0.0.1:{fleet_redis.port}/0"
    env = job_environment(fleet_root, APIGW_REDIS_URL=redis_url)
    server = start_scrapyd(fleet_root / "scrapyd", env=env, max_proc=JOBS)
    try:
        deploy(copy_example_project(fleet_root / "project", server.url))
        yield server
    finally:
        server.stop()


@pytest.fixture
def fleet(fleet_redis: RedisServer) -> RedisServer:
    """The module's Redis, emptied (no fleet state of an earlier test)."""
    assert fleet_redis.commands(("AUTH", PASSWORD), ("FLUSHALL",)) == ["OK", "OK"]
    return fleet_redis


def run_jobs_at_once(
    scrapyd: ScrapydServer, sandbox: Any, limit: int = 1, **settings: Any
) -> tuple[list[str], dict[str, dict[str, Any]], str]:
    """Schedule :data:`JOBS` jobs of the first tracklist at once and wait for them (polling
    ``listjobs.json``). Returns the job ids, their finished entries, and every
    ``listjobs.json`` answer seen (as text), pending ones included: Scrapyd shows a job's
    ``-d setting=`` values there while it is pending."""
    job_settings = {
        "APIGW_SANDBOX_URL": sandbox.url,
        "APIGW_SANDBOX_SPEED": sandbox.speed,
        # Each job asks the providers itself (with a shared cache, a job that comes second
        # finds answers the others fetched: less load, and a load that depends on timing).
        "APIGW_CACHE_ENABLED": False,
        **settings,
    }
    jobs = [scrapyd.schedule(PROJECT, SPIDER, job_settings, limit=limit) for _ in range(JOBS)]
    listings = json.dumps(scrapyd.get("listjobs.json", project=PROJECT))
    finished = scrapyd.wait_finished(PROJECT, jobs, timeout=150)
    listings += json.dumps(scrapyd.get("listjobs.json", project=PROJECT))
    # They ran at once: each started before any of them ended.
    starts = [datetime.fromisoformat(finished[job]["start_time"]) for job in jobs]
    ends = [datetime.fromisoformat(finished[job]["end_time"]) for job in jobs]
    assert max(starts) < min(ends), finished
    return jobs, finished, listings


def test_three_jobs_at_once_share_one_quota_through_redis(
    scrapyd: ScrapydServer, sandbox: Any, fleet: RedisServer
) -> None:
    rows = site_rows(sandbox, 1)
    jobs, _, listings = run_jobs_at_once(scrapyd, sandbox)

    texts = [scrapyd.output(), listings]
    fleets = set()
    for job in jobs:
        log = scrapyd.log(PROJECT, SPIDER, job)
        assert job_problems(log) == [], log[-3000:]
        fleets |= set(re.findall(r"apigw: shared limits on: fleet '([^']+)'", log))
        items = scrapyd.items(PROJECT, SPIDER, job)
        assert_complete(items, log, rows)
        texts += [log, (scrapyd.root / "items" / PROJECT / SPIDER / f"{job}.jl").read_text()]

    calls = [r for r in sandbox.log() if r["provider"] not in ("site", "admin", "sandbox")]
    rejected = [(r["provider"], r["path"]) for r in calls if r["rate_limited"]]
    print(f"{JOBS} jobs, shared limits: {len(calls)} provider calls, {len(rejected)} rate-limited")
    assert rejected == []
    # One fleet (by default the cache namespace: the same for every job of the project), its
    # limits in the module's Redis.
    assert len(fleets) == 1
    (name,) = fleets
    keys = fleet.commands(("AUTH", PASSWORD), ("KEYS", f"*:fleet:{{{name}:musicbrainz}}:*"))[1]
    assert keys != []
    # The Redis password was in Scrapyd's environment only.
    assert [text for text in texts if PASSWORD in text] == []


def test_without_shared_limits_the_same_three_jobs_are_rate_limited(
    scrapyd: ScrapydServer, sandbox: Any, fleet: RedisServer
) -> None:
    # The baseline of the test above: the same jobs, each with only its own limits.
    # Three tracklists a job: Scrapyd starts queued jobs one poll (5 s) apart, and one
    # tracklist's job now ends within it (fewer calls per track), so the jobs would not overlap.
    jobs, _, _ = run_jobs_at_once(scrapyd, sandbox, limit=3, APIGW_SHARED_LIMITS=False)
    calls = [r for r in sandbox.log() if r["provider"] not in ("site", "admin", "sandbox")]
    rejected = [r for r in calls if r["rate_limited"]]
    print(f"{JOBS} jobs, own limits: {len(calls)} provider calls, {len(rejected)} rate-limited")
    # Rate limited at all, where the shared limits gave none (how often depends on how the
    # three jobs' sends overlap: 5 to 20 seen, fewer on a loaded machine).
    assert len(rejected) >= 1
    for job in jobs:
        assert "apigw: shared limits on" not in scrapyd.log(PROJECT, SPIDER, job)
