"""The provider sandbox: a local Twisted web server that behaves like the real music APIs.

Spotify, MusicBrainz, Discogs and Last.fm answer with their real shapes, auth checks, quirks,
errors and rate-limit signals (``shared/design/PROVIDERS.md``); AcousticBrainz is gone (410);
``/site/`` serves a small tracklist website. Faults (outages, errors, latency, forced 429s,
broken bodies) are switched at run time and every request is logged without credentials.

Start it as a process::

    python -m scrapy_apigw.sandbox --port 0 --speed 20
    # prints one line: SANDBOX_URL=http://127.0.0.1:<port>

or in-process, inside a running reactor::

    from scrapy_apigw.sandbox import Sandbox, SandboxConfig
    sandbox = Sandbox(SandboxConfig(speed=20))
    url = await sandbox.start()
    ...
    await sandbox.stop()

or as a subprocess driven from blocking code (tests, benchmarks; standard library only)::

    from scrapy_apigw.sandbox import start_sandbox_process
    with start_sandbox_process(10) as sandbox:
        sandbox.reset()
        ...  # crawl against sandbox.url, then inspect sandbox.log()

Importing this package never imports ``twisted.internet.reactor``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from scrapy_apigw.sandbox.config import (
    DEFAULT_DISCOGS_TOKEN,
    DEFAULT_LASTFM_API_KEY,
    DEFAULT_SPOTIFY_CLIENT_ID,
    DEFAULT_SPOTIFY_CLIENT_SECRET,
    SandboxConfig,
)

if TYPE_CHECKING:
    from scrapy_apigw.sandbox.catalog import Catalog, CatalogError
    from scrapy_apigw.sandbox.process import HttpReply, SandboxProcess, start_sandbox_process
    from scrapy_apigw.sandbox.server import Sandbox

#: Names imported on first use (PEP 562): the server, catalog and process modules cost about
#: 140 ms to import, and a crawl that only reads a sandbox default (``scrapy_apigw.settings``
#: reads ``sandbox.config``) never needs them.
_LAZY = {
    "Catalog": "catalog",
    "CatalogError": "catalog",
    "HttpReply": "process",
    "SandboxProcess": "process",
    "start_sandbox_process": "process",
    "Sandbox": "server",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "DEFAULT_DISCOGS_TOKEN",
    "DEFAULT_LASTFM_API_KEY",
    "DEFAULT_SPOTIFY_CLIENT_ID",
    "DEFAULT_SPOTIFY_CLIENT_SECRET",
    "Catalog",
    "CatalogError",
    "HttpReply",
    "Sandbox",
    "SandboxConfig",
    "SandboxProcess",
    "start_sandbox_process",
]
