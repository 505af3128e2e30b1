"""The in-process sandbox's port: a free one, or with a Scrapy ``JOBDIR`` the same on every run.

The sandbox's URLs carry its port, and so do the URLs of its tracklist website. A resumed job
(``scrapy crawl ... -s JOBDIR=DIR``) matches the requests it already made by URL: with a new port
every request would look new and the whole site would be crawled again. So the port is kept in
``DIR/apigw-sandbox-port`` and reused on resume (docs/sandbox.md, "Stop and resume").

Standard library only; nothing here imports the reactor.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

logger = logging.getLogger(__name__)

#: File in the job directory holding the port of the job's first run.
PORT_FILE = "apigw-sandbox-port"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on *host* right now (bound and released: the sandbox binds it moments
    later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if a listening socket can be bound to *host*:*port* now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As Twisted's listenTCP does: a port left in TIME_WAIT by the last run is usable.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def sandbox_port(jobdir: str | os.PathLike[str] | None, host: str = "127.0.0.1") -> int:
    """The port for the in-process sandbox of a crawl whose ``JOBDIR`` is *jobdir*.

    Without a job directory: any free port. With one: the port saved there by an earlier run
    when it is free, else a new free port, saved for the runs to come. A saved port that is taken
    is logged as a warning: the resumed crawl then sees new URLs and crawls the site again.

    Raises:
        OSError: the job directory cannot be created or written.
    """
    if not jobdir:
        return free_port(host)
    path = Path(jobdir) / PORT_FILE
    try:
        saved: int | None = int(path.read_text("ascii").strip())
    except (OSError, ValueError):
        saved = None
    if saved is not None:
        if port_is_free(saved, host):
            return saved
        logger.warning(
            "apigw: port %d of this job's sandbox (saved in %s) is taken: the sandbox uses "
            "another one, so its URLs change and the resumed crawl requests its pages again",
            saved,
            path,
        )
    port = free_port(host)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{port}\n", "ascii")
    return port
