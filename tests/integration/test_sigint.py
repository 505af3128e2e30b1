"""One SIGINT stops a real ``scrapy crawl`` within APIGW_SHUTDOWN_TIMEOUT and keeps every item.

The example project crawls the sandbox subprocess's whole tracklist site (438 tracks) with a slow
Last.fm (every answer 3 s late). Once some items are scraped (their ``Scraped from`` log lines),
the test sends ONE SIGINT, as Ctrl-C or Scrapyd's ``cancel.json`` does. Before: the graceful stop
waited for every item already in the pipeline (tens of seconds; a second SIGINT then killed the
process without a feed). Now: provider waits end at once, calls in flight within the timeout.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import EXAMPLE_PROJECT

WORKTREE = Path(__file__).resolve().parents[2]
SHUTDOWN_TIMEOUT = 2.0
#: Closing after the grace: the engine, the feed export, the stats dump, the interpreter's exit.
CLOSE_BOUND = 6.0


def start_crawl(sandbox, tmp_path: Path) -> tuple[subprocess.Popen[str], queue.Queue[str | None]]:
    feed = tmp_path / "tracks.jsonl"
    command = [
        sys.executable,
        "-m",
        "scrapy",
        "crawl",
        "tracklists",
        "-O",
        str(feed),
        "-s",
        f"APIGW_SANDBOX_URL={sandbox.url}",
        "-s",
        f"APIGW_SANDBOX_SPEED={sandbox.speed}",
        "-s",
        f"APIGW_SHUTDOWN_TIMEOUT={SHUTDOWN_TIMEOUT}",
        "-s",
        f"APIGW_CACHE_PATH={tmp_path / 'cache.sqlite3'}",
        "-s",
        "LOG_LEVEL=DEBUG",
        "-s",
        "TELNETCONSOLE_ENABLED=False",
    ]
    env = {**os.environ, "PYTHONPATH": str(WORKTREE)}
    env.pop("APIGW_REDIS_URL", None)  # the example's settings.py reads it: the embedded cache here
    process = subprocess.Popen(
        command,
        cwd=EXAMPLE_PROJECT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the signal goes to the crawl only, never to pytest
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line)
        lines.put(None)  # end of the log

    threading.Thread(target=pump, daemon=True).start()
    return process, lines


def read_until(lines: queue.Queue[str | None], log: list[str], done, timeout: float) -> bool:
    """Read log lines into *log* until ``done(log)`` holds (an event, not a fixed sleep) or the
    log ends; return False if it ended first."""
    deadline = time.monotonic() + timeout
    while not done(log):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail("the crawl did not get there in time:\n" + "".join(log[-40:]))
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            return False
        log.append(line)
    return True


def scraped(log: list[str]) -> int:
    return sum(" Scraped from " in line for line in log)


def enriched(log: list[str]) -> int:
    """Items scraped after the providers were asked (not the rows with nothing to look up):
    the item follows its ``Scraped from`` line, one field a line."""
    return sum(line.lstrip(" {").startswith("'enrichment_sources'") for line in log)


@pytest.mark.crawl
def test_one_sigint_stops_within_the_shutdown_timeout_and_every_item_reaches_the_feed(
    sandbox, tmp_path
):
    sandbox.set_faults("lastfm", latency=3.0)
    process, lines = start_crawl(sandbox, tmp_path)
    log: list[str] = []
    try:
        assert read_until(lines, log, lambda log: enriched(log) >= 3, timeout=120), "".join(log)
        process.send_signal(signal.SIGINT)
        sent = time.monotonic()
        process.wait(timeout=SHUTDOWN_TIMEOUT + CLOSE_BOUND + 30)
        stopped_after = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    read_until(lines, log, lambda log: False, timeout=10)  # the rest of the log
    text = "".join(log)
    assert process.returncode == 0, text[-3000:]
    assert "Received SIGINT, shutting down gracefully" in text
    assert "Closing spider (shutdown)" in text
    assert stopped_after < SHUTDOWN_TIMEOUT + CLOSE_BOUND, (stopped_after, text[-3000:])

    feed = tmp_path / "tracks.jsonl"
    assert feed.exists(), text[-3000:]
    items = [json.loads(line) for line in feed.read_text("utf-8").splitlines() if line.strip()]
    count = re.search(r"'item_scraped_count': (\d+)", text)
    assert count is not None, text[-3000:]
    assert len(items) == scraped(log) == int(count.group(1))
    # Every item scraped so far, the ones still in the pipeline included, is in the feed.
    assert len(items) == 438 or "'finish_reason': 'shutdown'" in text
    assert all(i.get("enrichment_status") for i in items)
    interrupted = [i for i in items if "interrupted" in (i.get("enrichment_errors") or {}).values()]
    assert interrupted, [i.get("enrichment_errors") for i in items]
    for item in interrupted:
        assert item["enrichment_status"] in ("partial", "failed")
        errors = item["enrichment_errors"]
        assert set(errors.values()) <= {"interrupted"}, errors
    print(
        f"stopped {stopped_after:.2f} s after SIGINT: {len(items)} items in the feed, "
        f"{len(interrupted)} interrupted"
    )
