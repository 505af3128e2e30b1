"""Crawl benchmark: what the add-on costs, and what its cache saves, as ratios of one run.

Run from the repository root (not part of the test suite)::

    python bench/bench_crawl.py [--speed 10] [--tracklists 11] [--repeat 5]

It starts ONE provider sandbox (``python -m scrapy_apigw.sandbox --port 0 --speed S``), then
crawls its tracklist website with the example project's spider (``scrapy crawl tracklists``,
each crawl its own process, ``cwd=example_project``):

a. site only, add-on disabled (``APIGW_ENABLED=False``): a plain Scrapy crawl, the baseline;
b. site only, add-on on, pipeline off (``APIGW_PIPELINE_ENABLED=False``): the middlewares'
   cost on requests that belong to no provider (b/a should be about 1);
c. full enrichment, cold cache (a fresh embedded SQLite cache file);
d. full enrichment, warm cache (c's cache file): no provider call expected.

The short crawls (a, b, d) run ``--repeat`` times, a and b interleaved, and report medians; c
runs once. For each crawl: process wall time, the crawl's own elapsed time (Scrapy's
``elapsed_time_seconds``), items and their ``enrichment_status``, provider calls seen by the
sandbox (its log, reset before each crawl), rate-limited answers, and the crawl process's peak
RSS (``/usr/bin/time -v``, else ``os.wait4``).

Prints a markdown table and the ratios, writes them as JSON to ``bench/results/latest.json``,
and exits 1 when an expectation is violated: d calls a provider; an item is lost (a crawl's
item count differs from a's); the sandbox answered a rate limit during c; a crawl failed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from provenance import git_commit, machine, write_results

from scrapy_apigw.sandbox import SandboxProcess, start_sandbox_process

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PROJECT = ROOT / "example_project"
RESULTS = BENCH / "results"
TIME_BIN = "/usr/bin/time"

#: Sandbox log "providers" that are not provider APIs.
NOT_PROVIDERS = frozenset({"site", "admin"})
SANDBOX_START_TIMEOUT = 30.0
CRAWL_TIMEOUT = 600.0
#: ``enrichment_status`` key for items without the field (add-on or pipeline off).
NO_STATUS = "(none)"


@dataclass
class CrawlSpec:
    """One kind of crawl of the benchmark."""

    key: str
    title: str
    settings: dict[str, str]
    cache: str  # name of the cache file in the work directory


@dataclass
class CrawlRun:
    """The figures of one crawl process."""

    key: str
    wall_s: float
    elapsed_s: float | None
    items: int
    statuses: dict[str, int]
    provider_calls: dict[str, int]
    site_requests: int
    rate_limited: int
    peak_rss_kib: int | None
    rss_source: str
    returncode: int
    apigw_stats: dict[str, Any] = field(default_factory=dict)

    @property
    def calls(self) -> int:
        """Provider calls made (every provider, token requests included)."""
        return sum(self.provider_calls.values())


@dataclass
class CrawlSummary:
    """The runs of one kind of crawl and their medians."""

    spec: CrawlSpec
    runs: list[CrawlRun] = field(default_factory=list)

    @property
    def wall_s(self) -> float:
        """Median process wall time, seconds."""
        return statistics.median(r.wall_s for r in self.runs)

    @property
    def elapsed_s(self) -> float | None:
        """Median crawl elapsed time (Scrapy's stat), seconds; None if a run lacks it."""
        values = [r.elapsed_s for r in self.runs]
        if any(v is None for v in values):
            return None
        return statistics.median(v for v in values if v is not None)

    @property
    def peak_rss_mib(self) -> float | None:
        """Median peak RSS, MiB; None if a run lacks it."""
        values = [r.peak_rss_kib for r in self.runs]
        if any(v is None for v in values):
            return None
        return statistics.median(v for v in values if v is not None) / 1024

    @property
    def items(self) -> int:
        """Items of the first run (every run is checked against the baseline)."""
        return self.runs[0].items

    @property
    def max_calls(self) -> int:
        """The most provider calls any run made."""
        return max(r.calls for r in self.runs)

    @property
    def max_rate_limited(self) -> int:
        """The most rate-limited answers any run got."""
        return max(r.rate_limited for r in self.runs)


# -- one crawl --------------------------------------------------------------------------------


def crawl_command(
    spec: CrawlSpec,
    sandbox: SandboxProcess,
    limit: int | None,
    work: Path,
    feed: Path,
    stats: Path,
) -> list[str]:
    """The ``scrapy crawl`` command line of one crawl (without the ``time`` wrapper); *limit*
    None crawls every tracklist of the site (the example's default crawl)."""
    settings = {
        # The spider asks the gateway for the site's URL, which it cannot do with the add-on
        # off; giving the URL to every crawl keeps the four crawls identical otherwise.
        "TRACKLISTS_URL": f"{sandbox.url}/site/",
        "APIGW_SANDBOX": "True",
        "APIGW_SANDBOX_URL": sandbox.url,
        "APIGW_SANDBOX_SPEED": str(sandbox.speed),
        "APIGW_CACHE_PATH": str(work / spec.cache),
        # The project's .scrapy/ otherwise: an earlier run's dead letters would make each
        # completed item of this one ask to remove its record (0.1.0 ignores the setting).
        "APIGW_DEADLETTER_PATH": str(work / f"{spec.cache}.deadletters.sqlite3"),
        "LOG_LEVEL": "WARNING",
        "EXTENSIONS": json.dumps({"statsdump.StatsDump": 1000}),
        "BENCH_STATS_PATH": str(stats),
        **spec.settings,
    }
    command = [sys.executable, "-m", "scrapy", "crawl", "tracklists"]
    if limit is not None:
        command += ["-a", f"limit={limit}"]
    command += ["-O", str(feed)]
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    return command


def wait_with_rusage(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, int]:
    """Wait for *proc* with ``os.wait4``; return its exit code and ``ru_maxrss`` (KiB on Linux).

    Polls, so that a hung crawl can be killed after *timeout* seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            code = os.waitstatus_to_exitcode(status)
            proc.returncode = code  # reaped here: keep Popen from waiting again
            return code, usage.ru_maxrss
        if time.monotonic() > deadline:
            proc.kill()
        time.sleep(0.01)


def parse_time_v(path: Path) -> int | None:
    """``Maximum resident set size (kbytes)`` from a ``/usr/bin/time -v`` report."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if "Maximum resident set size" in line:
            return int(line.rsplit(":", 1)[1].strip())
    return None


def read_feed(path: Path) -> tuple[int, dict[str, int]]:
    """Items of a JSON Lines feed and their count by ``enrichment_status``."""
    statuses: Counter[str] = Counter()
    if path.exists():
        with path.open(encoding="utf-8") as feed:
            for line in feed:
                if line.strip():
                    statuses[json.loads(line).get("enrichment_status") or NO_STATUS] += 1
    return sum(statuses.values()), dict(sorted(statuses.items()))


def run_crawl(
    spec: CrawlSpec,
    sandbox: SandboxProcess,
    limit: int | None,
    work: Path,
    index: int,
    use_time: bool,
    *,
    checkout: Path = ROOT,
) -> CrawlRun:
    """Reset the sandbox, run one crawl process and collect its figures.

    *checkout* is the source tree whose example project and package the crawl runs (its
    ``example_project/`` the working directory, the tree itself on ``PYTHONPATH``): this one by
    default, another commit's worktree to compare with (``bench_quota_floor.py``).
    """
    stem = f"{spec.key}{index}"
    feed, stats_path = work / f"{stem}.jsonl", work / f"{stem}.stats.json"
    time_report, stderr_path = work / f"{stem}.time.txt", work / f"{stem}.stderr.txt"
    command = crawl_command(spec, sandbox, limit, work, feed, stats_path)
    if use_time:
        command = [TIME_BIN, "-v", "-o", str(time_report), *command]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(BENCH), str(checkout), env.get("PYTHONPATH")])
    )

    sandbox.reset()
    with stderr_path.open("wb") as stderr:
        started = time.perf_counter()
        proc = subprocess.Popen(
            command,
            cwd=checkout / PROJECT.name,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
        )
        try:
            code, maxrss = wait_with_rusage(proc, CRAWL_TIMEOUT)
        except BaseException:  # Ctrl-C: leave no crawl behind
            proc.kill()
            proc.wait()
            raise
        wall = time.perf_counter() - started
    if use_time:
        peak, source = parse_time_v(time_report), "/usr/bin/time -v"
    else:
        peak, source = maxrss, "os.wait4"
    if code != 0:
        tail = stderr_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        print(f"crawl {stem} exited with {code}:\n{tail}", file=sys.stderr)

    log = sandbox.log()
    calls = Counter(r["provider"] for r in log if r["provider"] not in NOT_PROVIDERS)
    items, statuses = read_feed(feed)
    stats: dict[str, Any] = {}
    if stats_path.exists():
        stats = json.loads(stats_path.read_text(encoding="utf-8"))
    elapsed = stats.get("elapsed_time_seconds")
    return CrawlRun(
        key=spec.key,
        wall_s=round(wall, 3),
        elapsed_s=round(float(elapsed), 3) if elapsed is not None else None,
        items=items,
        statuses=statuses,
        provider_calls=dict(sorted(calls.items())),
        site_requests=sum(1 for r in log if r["provider"] == "site"),
        rate_limited=sum(1 for r in log if r.get("rate_limited")),
        peak_rss_kib=peak,
        rss_source=source,
        returncode=code,
        apigw_stats={k: v for k, v in sorted(stats.items()) if k.startswith("apigw/")},
    )


# -- the benchmark ----------------------------------------------------------------------------


def specs() -> list[CrawlSpec]:
    """The four crawls (a, b on one cache file they never fill; c, d sharing another)."""
    return [
        CrawlSpec("a", "site only, add-on disabled", {"APIGW_ENABLED": "False"}, "site.sqlite3"),
        CrawlSpec(
            "b",
            "site only, middlewares only",
            {"APIGW_PIPELINE_ENABLED": "False"},
            "site.sqlite3",
        ),
        CrawlSpec("c", "full enrichment, cold cache", {}, "enrich.sqlite3"),
        CrawlSpec("d", "full enrichment, warm cache", {}, "enrich.sqlite3"),
    ]


def ratio(num: float | None, den: float | None) -> float | None:
    """``num / den`` rounded to 3 places, or None when either is missing or den is 0."""
    if num is None or not den:
        return None
    return round(num / den, 3)


def ratios(s: dict[str, CrawlSummary]) -> dict[str, float | int | None]:
    """The headline ratios (and two more) of one run."""
    a, b, c, d = s["a"], s["b"], s["c"], s["d"]
    return {
        "b/a wall time": ratio(b.wall_s, a.wall_s),
        "b/a crawl elapsed": ratio(b.elapsed_s, a.elapsed_s),
        "d/c wall time": ratio(d.wall_s, c.wall_s),
        "c/a wall time": ratio(c.wall_s, a.wall_s),
        "b/a peak RSS": ratio(b.peak_rss_mib, a.peak_rss_mib),
        "c/a peak RSS": ratio(c.peak_rss_mib, a.peak_rss_mib),
        "provider calls in d": d.max_calls,
    }


def violations(s: dict[str, CrawlSummary]) -> list[str]:
    """Every violated expectation, in words (empty: all met)."""
    problems: list[str] = []
    a = s["a"]
    for summary in s.values():
        for i, run in enumerate(summary.runs, 1):
            name = f"{run.key}{i}"
            if run.returncode != 0:
                problems.append(f"crawl {name} exited with status {run.returncode}")
            if run.items != a.runs[0].items:
                problems.append(f"items lost: {name} has {run.items} items, a1 has {a.items}")
    if a.items == 0:
        problems.append("the baseline crawl a scraped no item")
    if s["c"].max_calls == 0:
        problems.append("the cold crawl c made no provider call: its cache was not cold")
    if s["c"].max_rate_limited:
        problems.append(f"c got {s['c'].max_rate_limited} rate-limited answers from the sandbox")
    for i, run in enumerate(s["d"].runs, 1):
        if run.calls:
            problems.append(f"the warm crawl d{i} made {run.calls} provider calls")
    return problems


def fmt(value: float | None, digits: int = 2) -> str:
    """A number for the table ("–" when missing)."""
    return "–" if value is None else f"{value:.{digits}f}"


def spread(summary: CrawlSummary) -> str:
    """Median wall time, with the range of the runs when there are several."""
    walls = [r.wall_s for r in summary.runs]
    if len(walls) == 1:
        return fmt(walls[0])
    return f"{fmt(summary.wall_s)} ({fmt(min(walls))}–{fmt(max(walls))})"


def markdown(s: dict[str, CrawlSummary], r: dict[str, float | int | None]) -> str:
    """The results as two markdown tables."""
    lines = [
        "| crawl | runs | wall s (range) | crawl elapsed s | items | enrichment_status "
        "| provider calls | rate limited | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, summary in s.items():
        run = summary.runs[0]
        statuses = ", ".join(f"{k} {v}" for k, v in run.statuses.items()) or "–"
        calls = summary.max_calls
        by_provider = ", ".join(f"{k} {v}" for k, v in run.provider_calls.items())
        lines.append(
            f"| {key}. {summary.spec.title} | {len(summary.runs)} | {spread(summary)} "
            f"| {fmt(summary.elapsed_s)} | {summary.items} | {statuses} "
            f"| {calls}{f' ({by_provider})' if by_provider else ''} "
            f"| {summary.max_rate_limited} | {fmt(summary.peak_rss_mib, 1)} |"
        )
    lines += ["", "| ratio | value |", "|---|---|"]
    lines += [f"| {name} | {'–' if v is None else v} |" for name, v in r.items()]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speed", type=float, default=10.0, help="sandbox speed (default 10)")
    parser.add_argument(
        "--tracklists", type=int, default=11, help="tracklists to crawl (default 11, ~230 tracks)"
    )
    parser.add_argument(
        "--repeat", type=int, default=5, help="runs of the short crawls a, b, d (default 5)"
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS / "latest.json", help="JSON results file"
    )
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.tracklists < 1:
        parser.error("--repeat and --tracklists must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return 0, or 1 when an expectation is violated."""
    args = parse_args(argv)
    use_time = os.access(TIME_BIN, os.X_OK)
    started = datetime.now(timezone.utc)
    summaries = {spec.key: CrawlSummary(spec) for spec in specs()}
    # a and b interleaved (drift hits both alike), then c once, then d.
    order = ["a", "b"] * args.repeat + ["c"] + ["d"] * args.repeat

    sandbox = start_sandbox_process(args.speed, timeout=SANDBOX_START_TIMEOUT)
    print(f"sandbox at {sandbox.url} (speed {args.speed:g})", file=sys.stderr)
    try:
        with tempfile.TemporaryDirectory(prefix="apigw-bench-") as tmp:
            work = Path(tmp)
            for key in order:
                summary = summaries[key]
                run = run_crawl(
                    summary.spec, sandbox, args.tracklists, work, len(summary.runs) + 1, use_time
                )
                summary.runs.append(run)
                print(
                    f"  {key}{len(summary.runs)}: {run.wall_s:.2f} s, {run.items} items, "
                    f"{run.calls} provider calls, peak RSS {fmt(run.peak_rss_kib, 0)} KiB",
                    file=sys.stderr,
                )
    finally:
        sandbox.stop()

    headline = ratios(summaries)
    problems = violations(summaries)
    print(markdown(summaries, headline))
    if problems:
        print("\nEXPECTATIONS VIOLATED:\n" + "\n".join(f"- {p}" for p in problems))

    result = {
        "date": started.isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": machine(),
        "args": {"speed": args.speed, "tracklists": args.tracklists, "repeat": args.repeat},
        "rss_source": "/usr/bin/time -v" if use_time else "os.wait4",
        "ratios": headline,
        "crawls": {
            key: {
                "title": s.spec.title,
                "settings": s.spec.settings,
                "wall_s_median": round(s.wall_s, 3),
                "elapsed_s_median": None if s.elapsed_s is None else round(s.elapsed_s, 3),
                "peak_rss_mib_median": None if s.peak_rss_mib is None else round(s.peak_rss_mib, 1),
                "runs": [asdict(run) for run in s.runs],
            }
            for key, s in summaries.items()
        },
        "violations": problems,
    }
    write_results(args.output, result)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
