"""The example crawl stopped and resumed with ``-s JOBDIR=...`` scrapes every track exactly once.

Real ``scrapy crawl`` subprocesses in ``example_project/``, each with its in-process sandbox.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLE_PROJECT, example_crawl_command, example_crawl_env

from scrapy_apigw.sandbox.catalog import Catalog
from scrapy_apigw.sandbox.config import DEFAULT_DECOYS, DEFAULT_MESSY_SITE
from scrapy_apigw.sandbox.site import build_tracklists

#: The tracklist site of the example's in-process sandbox: the default one, with the default
#: decoys (3 more catalog tracks) and messy rows (21 tracklists).
_SITE = build_tracklists(Catalog.load(decoys=DEFAULT_DECOYS), DEFAULT_MESSY_SITE)
#: Track rows of the whole site (441), as the example crawl yields them.
SITE_TRACKS = sum(len(t.rows) for t in _SITE)
#: Track rows of its first 5 tracklists (``-a limit=5``): 21 + 21 + 20 + 22 + 22.
FIRST_5_TRACKS = sum(len(t.rows) for t in _SITE[:5])
#: Tracklist pages crawled before the first run is stopped.
STOP_AFTER_PAGES = 2
#: What the first run adds: one site page at a time, 1 s apart, so pages are still queued in the
#: scheduler (and so saved in the JOBDIR) when it stops; DEBUG to log each page crawled.
SLOW_START = (
    *("-s", "CONCURRENT_REQUESTS=1", "-s", "DOWNLOAD_DELAY=1"),
    *("-s", "RANDOMIZE_DOWNLOAD_DELAY=False", "-s", "LOG_LEVEL=DEBUG"),
)
TRACKLIST_CRAWLED = re.compile(r"Crawled \(200\) <GET http://127\.0\.0\.1:\d+/site/tracklists/")


def read_feed(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def log_path(feed: Path) -> Path:
    return feed.with_suffix(".log")


def start_crawl(tmp_path: Path, feed: Path, *extra: str) -> subprocess.Popen[bytes]:
    args = [
        *("-s", f"JOBDIR={tmp_path / 'job'}"),
        # Fast sandbox and client (in-process: the same speed for both).
        *("-s", "APIGW_SANDBOX_SPEED=50"),
        *("-s", f"APIGW_CACHE_PATH={tmp_path / 'cache.sqlite3'}"),
        *("-s", "TELNETCONSOLE_ENABLED=False", "-O", str(feed)),
        *extra,
    ]
    return subprocess.Popen(
        example_crawl_command(*args),
        cwd=EXAMPLE_PROJECT,
        env=example_crawl_env(),
        stdout=log_path(feed).open("wb"),
        stderr=subprocess.STDOUT,
    )


def finish(process: subprocess.Popen[bytes], feed: Path) -> str:
    assert process.wait(timeout=180) == 0
    return log_path(feed).read_text("utf-8")


def stop_with_sigint(process: subprocess.Popen[bytes], feed: Path) -> None:
    deadline = time.monotonic() + 120
    while len(TRACKLIST_CRAWLED.findall(log_path(feed).read_text("utf-8"))) < STOP_AFTER_PAGES:
        assert process.poll() is None, "the first run ended before it could be stopped"
        assert time.monotonic() < deadline, "no tracklist page crawled after 120 s"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)  # once: Scrapy's graceful stop


@pytest.mark.crawl
@pytest.mark.parametrize(
    "stop, site, tracks",
    [
        ("sigint", [], SITE_TRACKS),  # the whole site, stopped with Ctrl-C
        ("closespider_pagecount", ["-a", "limit=5"], FIRST_5_TRACKS),
    ],
)
def test_a_stopped_example_crawl_resumes_and_scrapes_each_track_once(tmp_path, stop, site, tracks):
    first_feed, second_feed = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    if stop == "sigint":
        process = start_crawl(tmp_path, first_feed, *site, *SLOW_START)
        stop_with_sigint(process, first_feed)
        reason = "shutdown"
    else:
        # robots.txt, the index, then the tracklist pages
        pagecount = ["-s", f"CLOSESPIDER_PAGECOUNT={2 + STOP_AFTER_PAGES}"]
        process = start_crawl(tmp_path, first_feed, *site, *SLOW_START, *pagecount)
        reason = "closespider_pagecount"
    log = finish(process, first_feed)
    assert f"'finish_reason': '{reason}'" in log
    first = read_feed(first_feed)
    assert 0 < len(first) < tracks, "the first run stopped with pages left"

    # The resumed run at full speed.
    log = finish(start_crawl(tmp_path, second_feed, *site), second_feed)
    assert "'finish_reason': 'finished'" in log
    assert "is taken" not in log  # the job's sandbox port was reused
    second = read_feed(second_feed)

    rows = [(item["tracklist_url"], item["position"]) for item in first + second]
    assert len(rows) == tracks, "no track scraped twice"
    assert len(set(rows)) == tracks, "every track scraped once"
