"""Replay benchmark: a 100,000-line catalog through ``scrapy crawl apigw_enrich``, bounded memory.

Run from the repository root (not part of the test suite)::

    python bench/bench_replay.py [--lines 100000] [--speed 100] [--concurrent-items 100]

The cheapest honest setup: ONE provider sandbox (``python -m scrapy_apigw.sandbox --port 0
--speed S``), the embedded cache (SQLite) in a temporary directory, and the real command,
``python -m scrapy crawl apigw_enrich -a input=FILE -O out.jsonl`` run in the example project
(each crawl its own process, so its peak RSS is its own: ``os.wait4``'s ``ru_maxrss``):

1. cold: the sandbox website's 438 tracklist rows (what the example spider scrapes) as a JSON
   Lines catalog, enriched against the sandbox: it fills the cache;
2. warm: ``--lines`` lines, those rows over and over (each line its own ``ref``), every lookup a
   cache hit; a real JSON Lines feed is written and counted.

Reported per crawl: lines, items in the feed, bad lines, wall time of the crawl
(``elapsed_time_seconds``: without interpreter start-up), items/s, provider calls (the sandbox's
log; 0 expected when warm), peak RSS. ``--concurrent-items`` sets Scrapy's ``CONCURRENT_ITEMS``,
which bounds the spider's items in flight (a huge value shows the unbounded behaviour). Results
go to ``bench/results/replay-latest.json``; exit 1 if an item is lost or a warm crawl called a
provider; the issue's target (peak RSS <= 250 MB) is printed as ``MISSED:`` when missed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from provenance import RESULTS, ROOT, git_commit, machine, write_results

NOT_PROVIDERS = frozenset({None, "site", "admin", "sandbox"})
TARGET_PEAK_MB = 250.0
EXAMPLE = ROOT / "example_project"


def tracklist_rows() -> list[dict[str, Any]]:
    """Every row of the sandbox website (438 on the default catalog), as catalog records."""
    sys.path.insert(0, str(ROOT))
    from scrapy_apigw.sandbox.catalog import Catalog
    from scrapy_apigw.sandbox.site import build_tracklists

    return [
        {"artist": row.artist, "title": row.title, "tracklist": tracklist.title}
        for tracklist in build_tracklists(Catalog.load())
        for row in tracklist.rows
    ]


def write_catalog(path: Path, rows: list[dict[str, Any]], lines: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        for n in range(lines):
            out.write(json.dumps({**rows[n % len(rows)], "ref": n}) + "\n")


def crawl(
    args: argparse.Namespace, work: Path, catalog: Path, name: str, sandbox_url: str
) -> dict[str, Any]:
    """One ``scrapy crawl apigw_enrich`` process; its figures."""
    feed = work / f"feed-{name}.jsonl"
    stats_path = work / f"{name}-stats.json"
    command = [
        sys.executable,
        "-m",
        "scrapy",
        "crawl",
        "apigw_enrich",
        "-a",
        f"input={catalog}",
        "-O",
        str(feed),
        "-s",
        f"APIGW_SANDBOX_URL={sandbox_url}",
        "-s",
        f"APIGW_SANDBOX_SPEED={args.speed}",
        "-s",
        f"APIGW_CACHE_PATH={work / 'cache.sqlite3'}",
        "-s",
        f"APIGW_DEADLETTER_PATH={work / 'deadletters.sqlite3'}",
        "-s",
        f"CONCURRENT_ITEMS={args.concurrent_items}",
        "-s",
        "APIGW_PROGRESS_INTERVAL=0",
        "-s",
        "LOG_LEVEL=WARNING",
        "-s",
        'EXTENSIONS={"statsdump.StatsDump": 1000}',
        "-s",
        f"BENCH_STATS_PATH={stats_path}",
    ]
    path = os.pathsep.join([str(ROOT), str(ROOT / "bench"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    env.pop("APIGW_REDIS_URL", None)
    started = time.monotonic()
    with open(work / f"{name}.log", "wb") as log:
        proc = subprocess.Popen(command, cwd=EXAMPLE, env=env, stdout=log, stderr=log)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    items, first, last = feed_figures(feed)
    elapsed = float(stats.get("elapsed_time_seconds") or wall)
    span = (last - first) if first is not None and last is not None else 0.0
    return {
        "crawl": name,
        "exit": proc.returncode,
        "lines": stats.get("apigw/enrich/lines", 0),
        "items": items,
        "bad_lines": stats.get("apigw/enrich/bad_lines", 0),
        "completed": stats.get("apigw/items/completed", 0),
        "finish_reason": stats.get("finish_reason"),
        "elapsed_s": round(elapsed, 2),
        "process_s": round(wall, 2),
        "items_per_s": round(items / elapsed, 1) if elapsed else 0.0,
        "span_s": span,
        "span_items_per_s": round(items / span, 1) if span else 0.0,
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
        "log": str(work / f"{name}.log"),
    }


def feed_figures(feed: Path) -> tuple[int, float | None, float | None]:
    """Items in the feed, and the first and last ``enriched_at`` (epoch s, 1 s resolution)."""
    if not feed.exists():
        return 0, None, None
    count, first, last = 0, None, None
    with feed.open(encoding="utf-8") as lines:
        for line in lines:
            count += 1
            stamp = json.loads(line).get("enriched_at")
            if stamp:
                when = datetime.fromisoformat(stamp).timestamp()
                first = when if first is None else min(first, when)
                last = when if last is None else max(last, when)
    return count, first, last


def provider_calls(sandbox: Any) -> int:
    return sum(1 for r in sandbox.log() if r.get("provider") not in NOT_PROVIDERS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--speed", type=float, default=100.0)
    parser.add_argument("--concurrent-items", type=int, default=100)
    parser.add_argument("--output", type=Path, default=RESULTS / "replay-latest.json")
    parser.add_argument("--workdir", type=Path, help="keep the catalogs, feeds and logs here")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from scrapy_apigw.sandbox.process import start_sandbox_process

    rows = tracklist_rows()
    results = []
    problems = []
    with tempfile.TemporaryDirectory(prefix="apigw-bench-replay-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        cold_catalog, warm_catalog = work / "catalog-cold.jsonl", work / "catalog-warm.jsonl"
        write_catalog(cold_catalog, rows, len(rows))
        write_catalog(warm_catalog, rows, args.lines)
        sandbox = start_sandbox_process(args.speed)
        try:
            for name, catalog, lines in (
                ("cold", cold_catalog, len(rows)),
                ("warm", warm_catalog, args.lines),
            ):
                sandbox.reset()
                figures = crawl(args, work, catalog, name, sandbox.url)
                figures["provider_calls"] = provider_calls(sandbox)
                results.append(figures)
                print(json.dumps(figures), file=sys.stderr)
                expected = lines - figures["bad_lines"]  # the site's rows without a track
                if figures["exit"] != 0 or figures["items"] != expected:
                    problems.append(f"{name}: {figures['items']} of {expected} items, see the log")
                if name == "warm" and figures["provider_calls"]:
                    problems.append(f"warm: {figures['provider_calls']} provider calls")
        finally:
            sandbox.stop()
        header = (
            "| crawl | lines | bad lines | items | elapsed s | items/s | items/s first to last "
            "item | provider calls | peak RSS MB |"
        )
        print("\n" + header + "\n|---|---|---|---|---|---|---|---|---|")
        for r in results:
            print(
                f"| {r['crawl']} | {r['lines']} | {r['bad_lines']} | {r['items']} | "
                f"{r['elapsed_s']} | {r['items_per_s']} | {r['span_items_per_s']} | "
                f"{r['provider_calls']} | {r['peak_rss_mb']} |"
            )
        for r in results:
            if r["peak_rss_mb"] > TARGET_PEAK_MB:
                print(f"MISSED: {r['crawl']} peak RSS {r['peak_rss_mb']} MB > {TARGET_PEAK_MB}")
        write_results(
            args.output,
            {
                "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "commit": git_commit(),
                "machine": machine(),
                "args": {k: str(v) for k, v in vars(args).items()},
                "crawls": results,
                "problems": problems,
            },
        )
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
