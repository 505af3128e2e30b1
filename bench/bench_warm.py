"""Warm-crawl benchmark: enrichment from a full cache, items/s and memory, Redis and embedded.

Run from the repository root (not part of the test suite)::

    python bench/bench_warm.py [--items 20000] [--speed 100] [--concurrency 100] [--decoys S]
                               [--held-deadletters N]

It starts ONE provider sandbox (``python -m scrapy_apigw.sandbox --port 0 --speed S``) and ONE
redis-server (``tests/fixtures_redis.py``). The sandbox serves its default catalog with its
default decoys (0.3: other versions, covers, compilations... in the search answers;
``--decoys 0`` for the catalog alone). The items are the rows of the sandbox website's
tracklists as catalogued (``scrapy_apigw.sandbox.site``'s ``build_tracklists`` on the default
catalog, without the messy rows: 438 rows) as the example project's ``TrackItem``.
For each backend (``embedded``: the SQLite file; ``redis``: the redis-server) it runs two
passes, each in its own process (so a pass's peak RSS is its own):

1. cold: the 438 rows once through the real ``APIEnrichmentPipeline`` against the sandbox,
   filling the cache through the real code path (``Transport.fetch`` → ``ResponseCache.put``);
2. warm: ``--items`` items (the rows over and over, each a fresh item), ``--concurrency`` in
   flight (Scrapy's ``CONCURRENT_ITEMS`` default is 100), every lookup a cache hit; the
   sandbox's log must show no provider call.

Each pass builds a crawler with ``scrapy.utils.test.get_crawler`` and the integration tests'
``gateway_settings`` (``LOG_LEVEL=WARNING``), opens the pipeline and calls its ``process_item``
(as ``bench/bench_items.py`` does). "Once the crawl is running": the time is measured from the
first item to the last, after the pipeline opened (start-up excluded). Each pass has its own
dead-letter file (not the working directory's ``.scrapy/``); ``--held-deadletters N`` leaves N
failed records of other tracks in the warm pass's dead-letter store first, as a crawl that
ever failed items does. Reported per warm pass:
items/s (whole pass, and second half alone), cache hits per item, peak RSS (``ru_maxrss``),
RSS before the first item, RSS growth between the end of the first half and the end (current
RSS, ``/proc/self/statm``) and the peak's growth over the same span; then the ratio of the
embedded pass's peak RSS to Redis', and the host's single-core speed before and after the
passes (``provenance.host_reference_ms``: a fixed workload's time, so that runs of different
hours or hosts can be compared; on a shared VM it varies by tens of percent). Writes everything
to ``bench/results/warm-latest.json``
(git-ignored; ``--output`` to write elsewhere) and exits 1 when an item is lost, a warm pass
called a provider, or a pass failed. The issue's targets (≥ 1,000 items/s, no memory growth,
embedded ≤ 1.2 × Redis peak RSS) are listed as missed without changing the exit status.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from provenance import RESULTS, ROOT, git_commit, host_reference_ms, machine, write_results

#: Sandbox log "providers" that are not provider APIs.
NOT_PROVIDERS = frozenset({None, "site", "admin", "sandbox"})
PASS_TIMEOUT = 900.0
#: Targets of issue 7 §4.
TARGET_ITEMS_PER_S = 1000.0
TARGET_RSS_RATIO = 1.2
#: RSS growth (MiB) between the first half's end and the end still counted as "not growing":
#: allocator noise, not a per-item cost (20,000 items growing by 1 KiB each would be 20 MiB).
GROWTH_ALLOWANCE_MIB = 4.0


@dataclass
class Pass:
    """The figures of one pass (one process)."""

    backend: str
    phase: str
    items_in: int = 0
    items_out: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    second_half_s: float = 0.0
    rss_before_mib: float = 0.0
    rss_half_mib: float = 0.0
    rss_end_mib: float = 0.0
    peak_half_mib: float = 0.0
    peak_rss_mib: float = 0.0
    cache_hits: int = 0
    cache_misses: int = 0
    provider_calls: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    @property
    def items_per_s(self) -> float:
        return self.items_out / self.wall_s if self.wall_s else 0.0

    @property
    def second_half_items_per_s(self) -> float:
        half = self.items_out - self.items_out // 2
        return half / self.second_half_s if self.second_half_s else 0.0

    @property
    def hits_per_item(self) -> float:
        return self.cache_hits / self.items_out if self.items_out else 0.0


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    """This process's resident set size now, MiB (``/proc/self/statm``; 0 where absent)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def tracklist_rows() -> list[tuple[str, str, int, str]]:
    """``(artist, title, position, tracklist)`` of every row of the sandbox website, in order."""
    from scrapy_apigw.sandbox.catalog import Catalog
    from scrapy_apigw.sandbox.site import build_tracklists

    return [
        (row.artist, row.title, row.position, tracklist.title)
        for tracklist in build_tracklists(Catalog.load())
        for row in tracklist.rows
    ]


# -- one pass, in a child process --------------------------------------------------------------


async def run_pass(args: argparse.Namespace, result: Pass) -> None:
    """Open the pipeline, feed it the items *args.concurrency* at a time, record the figures."""
    sys.path[:0] = [str(ROOT / "tests" / "property"), str(ROOT / "tests")]
    sys.path.append(str(ROOT / "example_project"))
    from integration.conftest import gateway_settings
    from itemadapter import ItemAdapter
    from pipeline_run import close_pipeline, open_pipeline
    from tracklists.items import TrackItem

    sandbox = SimpleNamespace(url=args.sandbox_url, speed=args.speed)
    deadletters = str(Path(args.cache_path).parent / f"{args.backend}.deadletters.sqlite3")
    extra: dict[str, Any] = {
        "LOG_LEVEL": "WARNING",
        "APIGW_CACHE_PATH": args.cache_path,
        # The pass's own (the working directory's .scrapy/ by default: another run's).
        "APIGW_DEADLETTER_PATH": deadletters,
    }
    if args.backend == "redis":
        extra["APIGW_REDIS_URL"] = args.redis_url
    settings = gateway_settings(sandbox, Path(args.cache_path).parent, **extra)
    settings.pop("FEEDS")  # no feed: the items are checked here and dropped
    if args.phase == "warm" and args.held_deadletters:
        await hold_dead_letters(args, deadletters)
    crawler, pipeline = await open_pipeline(settings)
    rows = tracklist_rows()
    total = len(rows) if args.phase == "cold" else args.items
    half = total // 2
    source = iter(range(total))
    statuses: Counter[str] = Counter()
    marks: dict[str, float] = {}

    async def worker() -> None:
        # One coroutine per slot; they share the iterator (one thread: no lock needed).
        for n in source:
            artist, title, position, tracklist = rows[n % len(rows)]
            item = TrackItem(artist=artist, title=title, position=position, tracklist=tracklist)
            result.items_in += 1
            returned = await pipeline.process_item(item)
            result.items_out += 1
            statuses[str(ItemAdapter(returned).get("enrichment_status"))] += 1
            if result.items_out == half:
                marks["half"] = time.perf_counter()
                result.rss_half_mib = rss_mib()
                result.peak_half_mib = peak_rss_mib()

    import asyncio

    result.rss_before_mib = rss_mib()
    start = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        end = time.perf_counter()
        result.rss_end_mib = rss_mib()
        result.wall_s = end - start
        result.second_half_s = end - marks.get("half", start)
    finally:
        await close_pipeline(pipeline)
    result.peak_rss_mib = peak_rss_mib()
    result.statuses = dict(statuses)
    stats = crawler.stats.get_stats()
    result.cache_hits = sum(v for k, v in stats.items() if k.endswith("/cache/hit"))
    result.cache_misses = sum(v for k, v in stats.items() if k.endswith("/cache/miss"))


async def hold_dead_letters(args: argparse.Namespace, path: str) -> None:
    """Leave ``--held-deadletters`` failed records of other tracks in the pass's dead-letter
    store (Redis' stream, or the file), as a crawl that ever failed items leaves them."""
    from scrapy_apigw.deadletters.record import DeadLetter, track_key
    from scrapy_apigw.deadletters.store_file import FileDeadLetterStore
    from scrapy_apigw.deadletters.store_redis import RedisDeadLetterStore
    from scrapy_apigw.settings import DEFAULT_INPUT_FIELDS

    store: Any = (
        RedisDeadLetterStore(args.redis_url)
        if args.backend == "redis"
        else FileDeadLetterStore(path)
    )
    await store.open()
    try:
        for n in range(args.held_deadletters):
            inputs = {"artist": "Not In The Catalog", "title": f"Failed Track {n}"}
            key = track_key(inputs, DEFAULT_INPUT_FIELDS)
            await store.put(DeadLetter(key, inputs, "failed", {"spotify": "HTTP 503"}, 1, 1.0, 1.0))
    finally:
        await store.close()


def child_main(args: argparse.Namespace) -> int:
    """Run one pass in this process and print its figures as one JSON line on stdout."""
    from scrapy.utils.reactor import install_reactor

    install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")
    from scrapy.utils.defer import deferred_from_coro
    from twisted.internet import task

    result = Pass(args.backend, args.phase)
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        task.react(lambda _reactor: deferred_from_coro(run_pass(args, result)))
    except SystemExit as done:  # react() always exits; its code says how it went
        if done.code:
            result.error = f"the pass exited with {done.code}"
    if args.profile:
        profiler.disable()
        profiler.dump_stats(args.profile)
    print(json.dumps(asdict(result)))
    return 0


# -- the benchmark, in the parent process ------------------------------------------------------


def run_child(args: argparse.Namespace, backend: str, phase: str, extra: list[str]) -> Pass:
    """Run one pass as a child process (this script with ``--child``) and read its figures."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--backend",
        backend,
        "--phase",
        phase,
        "--items",
        str(args.items),
        "--speed",
        str(args.speed),
        "--concurrency",
        str(args.concurrency),
        "--held-deadletters",
        str(args.held_deadletters),
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "bench")])}
    started = time.monotonic()
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=PASS_TIMEOUT
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        failed = Pass(backend, phase, error=f"exit {done.returncode}: {done.stderr[-2000:]}")
        print(failed.error, file=sys.stderr)
        return failed
    result = Pass(**json.loads(lines[-1]))
    print(
        f"  {backend} {phase}: {result.items_out} items, {result.wall_s:.1f} s "
        f"({time.monotonic() - started:.1f} s with start-up)",
        file=sys.stderr,
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=20_000, help="items of each warm pass")
    parser.add_argument("--speed", type=float, default=100.0, help="sandbox speed (cold pass)")
    parser.add_argument("--concurrency", type=int, default=100, help="items in flight")
    parser.add_argument(
        "--decoys",
        type=float,
        default=None,
        help="the sandbox's decoy share (default: the sandbox's own, 0.3); 0 for the catalog alone",
    )
    parser.add_argument("--backends", default="embedded,redis")
    parser.add_argument(
        "--held-deadletters",
        type=int,
        default=0,
        help="failed records of other tracks left in the dead-letter store before each warm "
        "pass (default 0: the store is empty)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "warm-latest.json")
    parser.add_argument("--profile-dir", type=Path, help="cProfile each warm pass into DIR")
    # The child process's options (one pass).
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=("cold", "warm"), help=argparse.SUPPRESS)
    parser.add_argument("--sandbox-url", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--cache-path", help=argparse.SUPPRESS)
    parser.add_argument("--profile", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args)

    sys.path.insert(0, str(ROOT / "tests"))
    from fixtures_redis import own_redis_server

    from scrapy_apigw.sandbox import start_sandbox_process

    started = datetime.now(timezone.utc)
    decoys = () if args.decoys is None else ("--decoys", str(args.decoys))
    passes: list[Pass] = []
    reference = [host_reference_ms()]
    with tempfile.TemporaryDirectory(prefix="bench-warm-") as tmp:
        work = Path(tmp)
        print(f"starting the sandbox (speed {args.speed}) and redis-server", file=sys.stderr)
        with (
            start_sandbox_process(args.speed, *decoys) as sandbox,
            own_redis_server(work / "redis") as redis,
        ):
            for backend in args.backends.split(","):
                common = [
                    "--sandbox-url",
                    sandbox.url,
                    "--redis-url",
                    redis.url,
                    "--cache-path",
                    str(work / f"{backend}.sqlite3"),
                ]
                for phase in ("cold", "warm"):
                    sandbox.reset()
                    extra = list(common)
                    if phase == "warm" and args.profile_dir:
                        args.profile_dir.mkdir(parents=True, exist_ok=True)
                        extra += ["--profile", str(args.profile_dir / f"{backend}.prof")]
                    result = run_child(args, backend, phase, extra)
                    calls = [r for r in sandbox.log() if r.get("provider") not in NOT_PROVIDERS]
                    result.provider_calls = dict(Counter(r["provider"] for r in calls))
                    passes.append(result)
            entries = redis.command("DBSIZE")
    reference.append(host_reference_ms())
    warm = {p.backend: p for p in passes if p.phase == "warm"}
    ratio = (
        warm["embedded"].peak_rss_mib / warm["redis"].peak_rss_mib
        if {"embedded", "redis"} <= set(warm) and warm["redis"].peak_rss_mib
        else None
    )
    print_report(args, passes, ratio, entries, reference)
    write_results(
        args.output,
        {
            "started": started.isoformat(timespec="seconds"),
            "git_commit": git_commit(),
            "machine": machine(),
            "args": {k: str(v) for k, v in vars(args).items() if not k.startswith("child")},
            "redis_entries": entries,
            "host_reference_ms": reference,
            "passes": [
                {
                    **asdict(p),
                    "items_per_s": p.items_per_s,
                    "second_half_items_per_s": p.second_half_items_per_s,
                    "hits_per_item": p.hits_per_item,
                }
                for p in passes
            ],
            "embedded_over_redis_peak_rss": ratio,
        },
    )
    failed = [p for p in passes if p.error or p.items_out != p.items_in or p.items_in == 0]
    called = [p for p in passes if p.phase == "warm" and p.provider_calls]
    return 1 if failed or called else 0


def print_report(
    args: argparse.Namespace,
    passes: list[Pass],
    ratio: float | None,
    entries: Any,
    reference: list[float],
) -> None:
    """The passes' figures as a markdown table, the ratio, and the targets missed."""
    print(
        f"\nwarm passes of {args.items} items, concurrency {args.concurrency}; "
        f"cold passes at sandbox speed {args.speed}; sandbox decoys "
        f"{'default' if args.decoys is None else args.decoys}; {entries} entries in Redis; "
        f"{args.held_deadletters} dead letters held; "
        f"host reference {' / '.join(f'{r:g}' for r in reference)} ms before / after "
        "(provenance.host_reference_ms: lower is faster)\n"
    )
    print(
        "| backend | pass | items | wall s | items/s | 2nd half items/s | hits/item "
        "| provider calls | peak RSS MiB | RSS before / half / end MiB | growth 2nd half MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    missed = []
    for p in passes:
        growth = p.rss_end_mib - p.rss_half_mib
        print(
            f"| {p.backend} | {p.phase} | {p.items_out} | {p.wall_s:.2f} | {p.items_per_s:.0f} "
            f"| {p.second_half_items_per_s:.0f} | {p.hits_per_item:.2f} "
            f"| {sum(p.provider_calls.values())} | {p.peak_rss_mib:.1f} "
            f"| {p.rss_before_mib:.1f} / {p.rss_half_mib:.1f} / {p.rss_end_mib:.1f} "
            f"| {growth:+.1f} (peak {p.peak_rss_mib - p.peak_half_mib:+.1f}) |"
        )
        if p.error:
            missed.append(f"{p.backend} {p.phase} failed: {p.error[:200]}")
        if p.phase != "warm":
            continue
        if p.items_per_s < TARGET_ITEMS_PER_S:
            missed.append(f"{p.backend}: {p.items_per_s:.0f} items/s < {TARGET_ITEMS_PER_S:.0f}")
        if growth > GROWTH_ALLOWANCE_MIB:
            missed.append(f"{p.backend}: RSS grew {growth:.1f} MiB in the second half")
        if p.provider_calls:
            missed.append(f"{p.backend}: the warm pass called providers {p.provider_calls}")
    if ratio is not None:
        print(f"\nembedded / Redis peak RSS (warm): {ratio:.2f}")
        if ratio > TARGET_RSS_RATIO:
            missed.append(f"embedded / Redis peak RSS {ratio:.2f} > {TARGET_RSS_RATIO}")
    for line in missed:
        print(f"MISSED: {line}")


if __name__ == "__main__":
    sys.exit(main())
