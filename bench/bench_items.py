"""Item benchmark: 100,000 items of any shape through the enrichment pipeline, none lost.

Run from the repository root (not part of the test suite)::

    python bench/bench_items.py [--items 100000] [--seed 5] [--speed 10] [--concurrency 100]

It starts ONE provider sandbox (``python -m scrapy_apigw.sandbox --port 0 --speed S``), builds
a crawler with ``scrapy.utils.test.get_crawler`` and the add-on's settings in sandbox mode (the
embedded SQLite cache in a temporary directory, cold), opens the real ``APIEnrichmentPipeline``
and gives it ``--items`` items made by the generator of the pipeline property test
(``tests/property/item_shapes.py``, ``RandomChooser(seed)``: the same items for the same seed),
``--concurrency`` at a time (Scrapy's ``CONCURRENT_ITEMS`` default is 100). Items are made one
at a time and dropped once checked, so memory is the pipeline's, not the input's.

Each returned item is checked with ``tests/property/pipeline_run.py``'s ``item_problems``: the
same object, an ``enrichment_status`` among completed/partial/failed/skipped, no exception
caught by the pipeline, original fields untouched.

Prints a markdown table: items in and out, items per status, items with a problem, the wall
time of the run, items/s, the peak RSS of the process (``resource.getrusage``, ``ru_maxrss``)
and its RSS before the first item, provider calls seen by the sandbox, cache hits and misses.
Writes them as JSON to ``bench/results/items-latest.json`` (git-ignored; ``--output`` to write
elsewhere) and exits 1 when an item is lost or has a problem.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import platform
import resource
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
# The generator and the checks are the property test's; gateway_settings the integration tests'.
sys.path[:0] = [str(ROOT / "tests" / "property"), str(ROOT / "tests")]

from integration.conftest import gateway_settings  # noqa: E402
from item_shapes import RandomChooser, catalog_pool, make_item  # noqa: E402
from itemadapter import ItemAdapter  # noqa: E402
from pipeline_run import Before, close_pipeline, item_problems, open_pipeline  # noqa: E402

from scrapy_apigw.sandbox import start_sandbox_process  # noqa: E402

#: Sandbox log "providers" that are not provider APIs.
NOT_PROVIDERS = frozenset({None, "site", "admin", "sandbox"})


@dataclass
class Run:
    """The figures of one run."""

    items_in: int = 0
    items_out: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    problems: int = 0
    first_problems: list[str] = field(default_factory=list)
    raised: int = 0
    wall_s: float = 0.0
    rss_before_mib: float = 0.0
    peak_rss_mib: float = 0.0
    provider_calls: dict[str, int] = field(default_factory=dict)
    bad_requests: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    errors_logged: int = 0

    @property
    def items_per_s(self) -> float:
        return self.items_out / self.wall_s if self.wall_s else 0.0


class ErrorCounter(logging.Handler):
    """Counts ERROR records (the pipeline logs one for each exception it catches)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run_items(args: argparse.Namespace, sandbox: Any, work: Path, run: Run) -> None:
    """Open the pipeline, feed it the items *args.concurrency* at a time, record the figures."""
    settings = gateway_settings(sandbox, work, LOG_LEVEL="WARNING")
    crawler, pipeline = await open_pipeline(settings)
    pool = catalog_pool()
    chooser = RandomChooser(args.seed)

    def generate() -> Iterator[Any]:
        for _ in range(args.items):
            yield make_item(chooser, pool)

    source = generate()

    async def worker() -> None:
        # One coroutine per slot; they share the generator (one thread: no lock needed).
        for item in source:
            run.items_in += 1
            if run.items_in % 10_000 == 0:
                print(f"  {run.items_in} items, {time.monotonic() - start:.0f} s", file=sys.stderr)
            before = Before.of(item)
            try:
                returned = await pipeline.process_item(item)
            except Exception as exc:  # a lost item: counted, never expected
                run.raised += 1
                if len(run.first_problems) < 10:
                    run.first_problems.append(f"process_item raised {exc!r} on {item!r:.300}")
                continue
            run.items_out += 1
            problems = item_problems(before, returned)
            if problems:
                run.problems += 1
                if len(run.first_problems) < 10:
                    run.first_problems.append(f"{problems} on {item!r:.300}")
            status = str(ItemAdapter(returned).get("enrichment_status"))
            run.statuses[status] = run.statuses.get(status, 0) + 1

    run.rss_before_mib = peak_rss_mib()
    start = time.monotonic()
    try:
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        run.wall_s = time.monotonic() - start
    finally:
        await close_pipeline(pipeline)
    run.peak_rss_mib = peak_rss_mib()
    stats = crawler.stats.get_stats()
    run.cache_hits = sum(v for k, v in stats.items() if k.endswith("/cache/hit"))
    run.cache_misses = sum(v for k, v in stats.items() if k.endswith("/cache/miss"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--speed", type=float, default=10.0, help="sandbox speed (10x limits)")
    parser.add_argument("--concurrency", type=int, default=100, help="items in flight")
    parser.add_argument("--output", type=Path, default=RESULTS / "items-latest.json")
    args = parser.parse_args(argv)

    from scrapy.utils.reactor import install_reactor

    install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")
    from scrapy.utils.defer import deferred_from_coro
    from twisted.internet import task

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    errors = ErrorCounter()
    logging.getLogger().addHandler(errors)
    run = Run()
    started = datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory(prefix="bench-items-") as tmp:
        print(f"starting the sandbox (speed {args.speed})", file=sys.stderr)
        with start_sandbox_process(args.speed) as sandbox:
            print(
                f"{args.items} items, seed {args.seed}, {args.concurrency} in flight",
                file=sys.stderr,
            )

            def go(_reactor: Any) -> Any:
                return deferred_from_coro(run_items(args, sandbox, Path(tmp), run))

            try:
                task.react(go)
            except SystemExit as done:  # react() always exits; its code says how it went
                if done.code:
                    print(sandbox.stderr_tail(), file=sys.stderr)
                    raise
            log = sandbox.log()
    calls = [r for r in log if r.get("provider") not in NOT_PROVIDERS]
    run.provider_calls = dict(Counter(r["provider"] for r in calls))
    run.bad_requests = sum(r["status"] in (400, 414, 431) for r in calls)
    run.errors_logged = errors.count
    print_report(args, run)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "started": started.isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "args": {k: str(v) for k, v in vars(args).items()},
        **asdict(run),
        "items_per_s": run.items_per_s,
    }
    args.output.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    lost = run.items_in != args.items or run.items_out != run.items_in
    return 1 if lost or run.problems or run.raised else 0


def print_report(args: argparse.Namespace, run: Run) -> None:
    """The run's figures as a markdown table, and any problem found."""
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(run.statuses.items()))
    calls = ", ".join(f"{k} {v}" for k, v in sorted(run.provider_calls.items()))
    rows = [
        ("items in", f"{run.items_in}"),
        ("items out", f"{run.items_out}"),
        ("enrichment_status", statuses),
        ("items with a problem", f"{run.problems + run.raised}"),
        ("wall s", f"{run.wall_s:.1f}"),
        ("items/s", f"{run.items_per_s:.0f}"),
        (
            "peak RSS MiB",
            f"{run.peak_rss_mib:.1f} (before the first item: {run.rss_before_mib:.1f})",
        ),
        ("provider calls", f"{sum(run.provider_calls.values())} ({calls})"),
        ("answers 400/414/431", f"{run.bad_requests}"),
        ("cache hits / misses", f"{run.cache_hits} / {run.cache_misses}"),
        ("ERROR log records", f"{run.errors_logged}"),
    ]
    print(
        f"\n{args.items} items, seed {args.seed}, concurrency {args.concurrency}, "
        f"sandbox speed {args.speed}\n"
    )
    print("| figure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    for problem in run.first_problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
