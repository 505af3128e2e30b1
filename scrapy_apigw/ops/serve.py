"""``apigw serve``: one long-lived process exposing a node's summed metrics.

On a Scrapyd node every job is its own process. With ``PROMETHEUS_MULTIPROC_DIR`` in Scrapyd's
environment each job writes its metrics into that directory (files named after its pid) and
marks itself dead at engine stop; ``apigw serve`` reads the directory at every scrape and sums
the processes (``prometheus_client.multiprocess.MultiProcessCollector``): counters and
histograms survive the jobs that ended, gauges count live processes only.

Start it **before** the jobs: it wipes the directory at start (files of an earlier run would
otherwise be summed again, and gauges of processes long gone would linger).

With a Redis (``--redis-url`` or the project's ``APIGW_REDIS_URL``) it also serves ``/health``
and ``/admin`` over the fleet's shared state (:mod:`scrapy_apigw.ops.admin`), answering for the
fleet between jobs too.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy_apigw.exceptions import ConfigError
from scrapy_apigw.ops.metrics import MULTIPROC_ENV

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from twisted.web.resource import Resource

    from scrapy_apigw.ops.state import RedisState

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_PORT", "fleet_state", "register", "serve", "summed_registry", "wipe"]

#: ``apigw serve --port`` default.
DEFAULT_PORT = 9410
#: A live-mode gauge file of process <pid> (``gauge_livemax_1234.db``).
_LIVE_GAUGE = re.compile(r"^gauge_live\w*?_(\d+)\.db$")


def register(subparsers: Any) -> None:
    """Add ``apigw serve`` to the ``apigw`` command (:mod:`scrapy_apigw.ops.cli`)."""
    parser = subparsers.add_parser(
        "serve",
        help="serve the node's summed metrics (PROMETHEUS_MULTIPROC_DIR); start it first",
        description=(
            "Serve /metrics summed over every crawl process that wrote to the multiprocess "
            "directory. WIPES the directory at start: start it before the jobs."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"TCP port, 0 = any (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--multiproc-dir",
        default=None,
        help=f"the directory the jobs write to (default: ${MULTIPROC_ENV})",
    )
    from scrapy_apigw.ops.admin_cli import add_redis_options

    add_redis_options(parser)
    parser.set_defaults(func=serve)


def wipe(path: Path) -> int:
    """Create *path* if needed and delete the metric files in it (``*.db``); return how many."""
    path.mkdir(parents=True, exist_ok=True)
    removed = 0
    for file in path.glob("*.db"):
        file.unlink(missing_ok=True)
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


class _LiveProcessesOnly:
    """A collector around ``MultiProcessCollector`` that first marks dead the processes
    that died without saying so (killed: no engine stop), so their gauges do not linger."""

    def __init__(self, path: Path) -> None:
        from prometheus_client.multiprocess import MultiProcessCollector

        self.path = path
        self._summed = MultiProcessCollector(None, path=str(path))

    def collect(self) -> Iterable[Any]:
        from prometheus_client import multiprocess

        for file in self.path.glob("gauge_live*.db"):
            match = _LIVE_GAUGE.match(file.name)
            if match and not _alive(int(match.group(1))):
                multiprocess.mark_process_dead(int(match.group(1)), str(self.path))
        return self._summed.collect()


def summed_registry(path: Path) -> CollectorRegistry:
    """A registry exposing the sum over the processes that wrote to *path*."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    registry.register(_LiveProcessesOnly(path))
    return registry


def fleet_state(args: argparse.Namespace) -> RedisState | None:
    """The fleet's state in Redis behind ``/health`` and ``/admin`` (``--redis-url`` or the
    project's ``APIGW_REDIS_URL``), or None when no Redis is configured.

    Raises:
        ConfigError: a project setting is invalid.
    """
    from scrapy_apigw.ops.admin_cli import settings_from_args
    from scrapy_apigw.ops.state import RedisState

    settings = settings_from_args(args)
    return RedisState(settings) if settings.redis_url else None


def serve(args: argparse.Namespace) -> int:
    """Run ``apigw serve`` until SIGINT/SIGTERM; return the exit status (2: no directory,
    1: cannot listen)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s [%(name)s] %(levelname)s: %(message)s"
    )
    given = args.multiproc_dir or os.environ.get(MULTIPROC_ENV)
    if not given:
        print(
            f"apigw serve: no directory: pass --multiproc-dir or set {MULTIPROC_ENV}",
            file=sys.stderr,
        )
        return 2
    try:
        state = fleet_state(args)
    except ConfigError as exc:
        print(f"apigw serve: {exc}", file=sys.stderr)
        return 2
    path = Path(given).resolve()
    removed = wipe(path)
    # This process's own metrics (none today) must go there too: set before the import.
    os.environ[MULTIPROC_ENV] = str(path)
    # The fleet's state is read with the code the crawls run, on Scrapy's default reactor.
    from scrapy.utils.reactor import install_reactor

    install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")
    from scrapy.utils.defer import deferred_from_coro
    from twisted.internet import reactor as _reactor
    from twisted.internet.error import CannotListenError
    from twisted.web.server import Site

    from scrapy_apigw.ops.admin import FleetStatsResource, ops_children
    from scrapy_apigw.ops.web import build_root

    reactor: Any = _reactor  # typed loosely: zope interfaces confuse mypy
    children: dict[bytes, Resource] = {}
    if state is None:
        logger.info(
            "apigw serve: no APIGW_REDIS_URL (nor --redis-url): /health and /admin not served"
        )
    else:
        children = {**ops_children(state), b"stats": FleetStatsResource(state)}
        reactor.callWhenRunning(lambda: deferred_from_coro(state.open()))
        reactor.addSystemEventTrigger(
            "before", "shutdown", lambda: deferred_from_coro(state.close())
        )
    site = Site(build_root(children, registry=summed_registry(path)))
    site.noisy = False
    try:
        port = reactor.listenTCP(args.port, site, interface=args.host)
    except CannotListenError as exc:
        print(
            f"apigw serve: cannot listen on {args.host}:{args.port}: {exc.socketError}",
            file=sys.stderr,
        )
        return 1
    shown = f"[{args.host}]" if ":" in args.host else args.host
    logger.info(
        "apigw serve: metrics at http://%s:%d/metrics, summed over the processes writing to "
        "%s (wiped at start: %d file(s) removed)",
        shown,
        port.getHost().port,
        path,
        removed,
    )
    reactor.run()
    return 0
