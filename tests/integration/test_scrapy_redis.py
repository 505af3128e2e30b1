"""Two ``scrapy crawl`` processes share one crawl queue (scrapy-redis) and one quota (scrapy-apigw).

The project in ``redis_queue_project/`` is set up as the README's scrapy-redis section says:
scrapy-redis' scheduler and dupefilter, the add-on (middlewares and enrichment pipeline), one
Redis (the session's redis-server) for the crawl queue, the cache and the shared limits. The
test pushes tracklist URLs (each twice) to the spider's Redis list, then starts two processes
against ONE sandbox subprocess and waits for both to exit (scrapy-redis closes an idle spider
after ``MAX_IDLE_TIME_BEFORE_CLOSE``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures_redis import RedisServer

pytest.importorskip("scrapy_redis", reason="scrapy-redis is in the test extra")

pytestmark = [pytest.mark.crawl, pytest.mark.timeout(120)]

WORKTREE = Path(__file__).resolve().parents[2]
PROJECT = Path(__file__).with_name("redis_queue_project")
TRACKLISTS = ["/site/tracklists/1", "/site/tracklists/2"]
PROCESSES = "AB"
_STAT = re.compile(r"'([^']+)': (-?\d+(?:\.\d+)?)\b")


def rows_of(sandbox: Any, path: str) -> int:
    """The track rows of one tracklist page, counted without Scrapy."""
    with urllib.request.urlopen(sandbox.url + path) as response:
        return response.read().decode().count('<li class="track"')


def stats_of(log: str) -> dict[str, float]:
    """The numeric stats of a crawl's final "Dumping Scrapy stats" block."""
    start = log.rfind("Dumping Scrapy stats:")
    assert start >= 0, log[-3000:]
    return {k: float(v) for k, v in _STAT.findall(log[start : log.find("}", start)])}


@pytest.fixture
def queued(sandbox: Any, redis_server: RedisServer, redis_url: str) -> list[str]:
    """The tracklist URLs, each pushed twice (as two feeders would) to ``tracks:start_urls``."""
    urls = [sandbox.url + path for path in TRACKLISTS]
    assert redis_server.command("RPUSH", "tracks:start_urls", *urls, *urls) == 2 * len(urls)
    return urls


@pytest.fixture
def crawls(
    tmp_path: Path, sandbox: Any, redis_url: str, queued: list[str]
) -> Iterator[dict[str, Path]]:
    """Once the URLs are queued, start one ``scrapy crawl tracks`` per name of
    :data:`PROCESSES`; yields name -> its work directory (``feed.jsonl``, ``crawl.log``) once
    all have exited."""
    env = {**os.environ, "PYTHONPATH": f"{WORKTREE}{os.pathsep}{PROJECT}", "REDIS_URL": redis_url}
    env.pop("SCRAPY_SETTINGS_MODULE", None)
    processes: list[subprocess.Popen[bytes]] = []
    dirs: dict[str, Path] = {}
    try:
        for name in PROCESSES:
            dirs[name] = tmp_path / name
            dirs[name].mkdir()
            command = [sys.executable, "-m", "scrapy", "crawl", "tracks"]
            command += ["-O", str(dirs[name] / "feed.jsonl")]
            command += ["-s", f"APIGW_SANDBOX_URL={sandbox.url}"]
            command += ["-s", f"APIGW_SANDBOX_SPEED={sandbox.speed}"]
            with open(dirs[name] / "crawl.log", "wb") as log:
                processes.append(
                    subprocess.Popen(
                        command, cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT
                    )
                )
        for process, name in zip(processes, PROCESSES, strict=True):
            process.wait(timeout=100)
            assert process.returncode == 0, (dirs[name] / "crawl.log").read_text()[-3000:]
        yield dirs
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_two_crawl_processes_share_one_redis_queue_and_one_quota(
    sandbox: Any, crawls: dict[str, Path]
) -> None:
    logs = {name: (crawls[name] / "crawl.log").read_text("utf-8") for name in PROCESSES}
    feeds = {
        name: [json.loads(line) for line in (crawls[name] / "feed.jsonl").read_text().splitlines()]
        for name in PROCESSES
    }
    for log in logs.values():
        assert not re.findall(r"\] (ERROR|CRITICAL): |Traceback", log), log[-3000:]
        assert "apigw: shared limits on: fleet " in log
    # The two took the requests from the one shared queue: 2 dequeued in all. Usually one each,
    # but a process that starts late (a loaded machine) may find the queue already taken:
    # scrapy-redis pulls a batch of start URLs at once. Scrapy then has no "dequeued" stat
    # for it at all.
    dequeued = {
        name: stats_of(log).get("scheduler/dequeued/redis", 0) for name, log in logs.items()
    }
    assert sum(dequeued.values()) == 2, dequeued
    for name in PROCESSES:
        assert (feeds[name] != []) == (dequeued[name] > 0), (name, dequeued)

    # Each page once across both processes: 4 URLs pushed, 2 admitted by the shared
    # dupefilter, each fetched by exactly one process.
    pages = Counter(r["path"] for r in sandbox.log() if r["provider"] == "site")
    assert pages == Counter(TRACKLISTS)
    # One process may enqueue both: the queue is shared, so the other only dequeues (and
    # Scrapy then has no "enqueued" stat at all for it).
    assert sum(stats_of(log).get("scheduler/enqueued/redis", 0) for log in logs.values()) == 2

    # Every track once, all in the feeds, each looked up or marked skipped.
    items = feeds["A"] + feeds["B"]
    rows = Counter((i["tracklist_url"], i["position"]) for i in items)
    assert len(items) == sum(rows_of(sandbox, path) for path in TRACKLISTS)
    assert set(rows.values()) == {1}
    # "ID": an unreleased track, not searched (skipped with a reason, as a row with no title).
    lookups = [i for i in items if i["artist"] and i["title"] and i["title"] != "ID"]
    assert Counter(i["enrichment_status"] for i in items) == Counter(
        {"completed": len(lookups), "skipped": len(items) - len(lookups)}
    )
    findable = lookups
    assert len(findable) >= 30
    assert all("spotify_id" in i and "musicbrainz_id" in i for i in findable)

    # One quota: no provider answered "rate limited" to the two processes together.
    calls = [r for r in sandbox.log() if r["provider"] not in ("site", "admin", "sandbox")]
    assert [r for r in calls if r["rate_limited"]] == []
    print(f"scrapy-redis: {len(feeds['A'])} + {len(feeds['B'])} items, {len(calls)} provider calls")
