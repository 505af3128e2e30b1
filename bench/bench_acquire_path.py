"""The fleet acquire's own cost in one process: ``FleetStore.acquire`` called in a row.

Run from the repository root (not part of the test suite)::

    python bench/bench_acquire_path.py [--calls 3000] [--load 0,2] [--interval 0] [--profile FILE]

Starts one local redis-server (``tests/fixtures_redis.py``) and, for each ``--load`` value, that
many CPU-bound busy-loop processes (standing in for other crawl processes), then runs, under
Scrapy's asyncio reactor in this process, ``--calls`` acquires of one provider on a
``FleetStore.connect`` store (the gateway's client: ``RedisClient`` over txredisapi, pool of
2), one after the other, as the gateway's pacer asks them (rate high enough that every ask is
granted: the script's work is the same either way). Times each from the call to the caller
resuming with the decision (``time.perf_counter``), and reads the store's own histogram
(``round_trips["rate"]``, what the stat ``apigw/fleet/acquire_p99_us`` reports). A bare
socket's EVALSHA of the same script is timed in between (the floor, as
``bench/bench_acquire.py``). ``--interval S`` waits S seconds between calls (both kinds), as a
crawl paced at 1 / S req/s does: Redis and this process then sleep between round trips and must
be woken for each. Prints p50 / p99 / max per load, in ms. ``--profile FILE`` writes
a cProfile of the load-0 acquires to FILE (``python -m pstats FILE``).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import multiprocessing
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from bench_acquire import _busy, _command, _read_reply, measure  # noqa: E402
from fixtures_redis import RedisServer, find_redis_server  # noqa: E402

from scrapy_apigw.fleet.scripts import load_script  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def bare_evalsha(port: int, calls: int, interval: float) -> list[float]:
    """The rate script's EVALSHA from a blocking socket on one connection, *interval* s apart
    (``bench_acquire.measure`` when 0)."""
    if not interval:
        return measure(port, calls)
    script = load_script("rate")
    keys = [b"bench:{mb}:bucket", b"bench:{mb}:line", b"bench:{mb}:window", b"bench:{mb}:quota"]
    args = [b"1000000.0", b"1000000", b"w", b"100000", b"0", b"0", b"0", b"2000", b"0"]
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = bytearray()
        sock.sendall(_command(b"SCRIPT", b"LOAD", script.source))
        _read_reply(sock, buffer)
        request = _command(b"EVALSHA", script.sha.encode(), b"4", *keys, *args)
        times = []
        for _ in range(calls):
            time.sleep(interval)
            started = time.perf_counter()
            sock.sendall(request)
            _read_reply(sock, buffer)
            times.append(time.perf_counter() - started)
    return times


async def run(
    url: str, calls: int, loads: list[int], profile: str | None, interval: float = 0.0
) -> list[dict[str, Any]]:
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    from scrapy_apigw.fleet.store import FleetStore, RateLimits

    store = FleetStore.connect(url, fleet="bench", timeout=1.0)
    limits = RateLimits(rate=1e6, burst=1000)
    rows = []
    try:
        await store.acquire("musicbrainz", limits)  # connected, script loaded
        for load in loads:
            stop_at = time.monotonic() + 600
            # Spawned, not forked: a forked child shares the reactor's signal wake-up fd, and
            # its SIGTERM would stop this process's reactor.
            spawn = multiprocessing.get_context("spawn")
            procs = [spawn.Process(target=_busy, args=(stop_at,), daemon=True) for _ in range(load)]
            for p in procs:
                p.start()
            try:
                time.sleep(0.5 if load else 0)
                store.round_trips.clear()
                profiler = cProfile.Profile() if profile and load == 0 else None
                seen = []
                if profiler is not None:
                    profiler.enable()
                for _ in range(calls):
                    if interval:
                        await deferLater(reactor, interval, lambda: None).asFuture(
                            asyncio.get_event_loop()
                        )
                    started = time.perf_counter()
                    await store.acquire("musicbrainz", limits, queue_next=True)
                    seen.append(time.perf_counter() - started)
                if profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(profile)
                histogram = store.round_trips["rate"]
                port = int(url.rsplit(":", 1)[1].split("/")[0])
                bare_times = bare_evalsha(port, calls, interval)
                bare = (statistics.median(bare_times) * 1e3, pct(bare_times, 99) * 1e3)
            finally:
                for p in procs:
                    p.terminate()
                for p in procs:
                    p.join()
            rows.append(
                {
                    "load": load,
                    "p50": statistics.median(seen) * 1e3,
                    "p99": pct(seen, 99) * 1e3,
                    "max": max(seen) * 1e3,
                    "hist_p50": histogram.percentile(50) / 1e3,
                    "hist_p99": histogram.percentile(99) / 1e3,
                    "bare_p50": bare[0],
                    "bare_p99": bare[1],
                }
            )
    finally:
        await store.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--load", default="0,2", help="busy processes per run (default 0,2)")
    parser.add_argument("--profile", default=None, help="write a cProfile of load 0 here")
    parser.add_argument(
        "--interval", type=float, default=0.0, help="seconds between calls (default 0)"
    )
    args = parser.parse_args(argv)
    loads = [int(x) for x in args.load.split(",")]

    from scrapy.utils.reactor import install_reactor

    install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred

    binary = find_redis_server()
    if binary is None:
        print("no redis-server found", file=sys.stderr)
        return 1
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(binary, Path(tmp))
        server.start()
        try:

            def go() -> None:
                d = Deferred.fromFuture(
                    asyncio.ensure_future(
                        run(server.url, args.calls, loads, args.profile, args.interval)
                    )
                )
                d.addCallback(rows.extend)
                d.addErrback(lambda f: f.printTraceback())
                d.addBoth(lambda _: reactor.stop())

            reactor.callWhenRunning(go)
            reactor.run()
        finally:
            server.stop()
    print(
        "| busy processes | acquire p50 ms | p99 ms | max ms | stat p50 / p99 ms "
        "| bare EVALSHA p50 / p99 ms |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['load']} | {r['p50']:.3f} | {r['p99']:.3f} | {r['max']:.2f} | "
            f"{r['hist_p50']:.3f} / {r['hist_p99']:.3f} | "
            f"{r['bare_p50']:.3f} / {r['bare_p99']:.3f} |"
        )
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
