"""The fault matrix's machinery: sandboxes, crawl settings, crawls run side by side, inspection.

Each faulted provider gets a sandbox subprocess of its own (``--provider-ports``: every provider
on its own port, so ``connection: "refused"`` is a real ECONNREFUSED for it alone), and the
crawls of one row run at the same time, one per sandbox, so a row costs its slowest crawl, not
the sum. The gateway is configured as a user would point it at real hosts: ``APIGW_PROVIDERS``
gives every provider its sandbox port as ``base_url`` and the harness policy (small retries,
backoffs and timeouts), and the sandbox credentials are given as settings. ``APIGW_SANDBOX``
stays off: nothing is rescaled behind the test's back, so the policy the bound is derived from
is exactly the policy the gateway runs.
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import sys
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import scrapy

from scrapy_apigw.sandbox.config import (
    BASE_PATHS,
    DEFAULT_DISCOGS_TOKEN,
    DEFAULT_LASTFM_API_KEY,
    DEFAULT_SPOTIFY_CLIENT_ID,
    DEFAULT_SPOTIFY_CLIENT_SECRET,
)
from scrapy_apigw.sandbox.process import SandboxProcess, start_sandbox_process

_INTEGRATION = Path(__file__).resolve().parents[1] / "integration"
if str(_INTEGRATION) not in sys.path:
    sys.path.insert(0, str(_INTEGRATION))

from spiders import ItemsSpider, UrlsSpider  # noqa: E402  (tests/integration/spiders.py)


def _integration_helpers() -> Any:
    """``tests/integration/conftest.py`` as a module of its own name (``run_crawl``,
    ``CrawlResult``): importing it as ``conftest`` would shadow this directory's conftest."""
    name = "integration_helpers"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _INTEGRATION / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


_helpers = _integration_helpers()
run_crawl = _helpers.run_crawl
CrawlResult = _helpers.CrawlResult

PROVIDERS = ("spotify", "musicbrainz", "discogs", "lastfm")
#: Sandbox speed: every sandbox rate limit x100, so its own limiters never answer "too fast"
#: to the harness's 20 req/s (MusicBrainz then allows 100 req/s, burst 3).
SPEED = 100.0
#: Spotify tokens live TOKEN_TTL / SPEED = 360 s: the whole matrix with one token.
TOKEN_TTL = 36000.0
USER_AGENT = "apigw-fault-matrix/1.0 ( faults@example.invalid )"

#: The policy every provider runs in the matrix (``APIGW_PROVIDERS`` fields); rows override
#: single fields. Small numbers keep the matrix fast; the bounds are derived from them.
POLICY: dict[str, Any] = {
    "rate": 20.0,
    "burst": 5,
    "failure_threshold": 3,
    "open_timeout": 30.0,
    "success_threshold": 1,
    "max_retries": 2,
    "backoff_base": 0.05,
    "backoff_cap": 0.2,
    "jitter": 0.2,
    "max_retry_after": 5.0,
    "timeout": 0.5,
}

#: Scrapy's DOWNLOAD_TIMEOUT in spider crawls: only a safety net, so a row that is expected to
#: fail today (xfail) cannot hang for Scrapy's default 180 s. Above every fault's duration.
SPIDER_TIMEOUT_CAP = 1.2


#: Seconds a sandbox may take to start: five start at once on a machine that may be busy.
STARTUP_TIMEOUT = 90.0


@dataclass
class FaultSandbox:
    """One sandbox subprocess with per-provider ports, and what the rows need from it.

    Attributes:
        process: the subprocess handle (admin calls, log).
        hosts: provider -> ``http://127.0.0.1:<port>`` of its own port.
        bearer: a valid Spotify access token (spider requests to Spotify carry it).
        tracks: the catalog's first tracks (the items the pipeline rows enrich).
    """

    process: SandboxProcess
    hosts: dict[str, str]
    bearer: str
    tracks: list[dict[str, Any]]

    def reset(self) -> None:
        """Empty log, no faults, fresh rate limits (tokens stay valid)."""
        self.process.reset()

    def base_url(self, provider: str) -> str:
        return self.hosts[provider] + BASE_PATHS[provider]

    def spider_request(self, provider: str, track: int = 0) -> tuple[str, dict[str, str]]:
        """A URL of *provider* answering 200 with JSON for catalog track *track*, and the
        headers it needs (Spotify: the bearer token)."""
        t = self.tracks[track]
        if provider == "spotify":
            url = f"{self.base_url('spotify')}/tracks/{t['spotify_id']}"
            return url, {"Authorization": f"Bearer {self.bearer}"}
        if provider == "musicbrainz":
            return f"{self.base_url('musicbrainz')}/isrc/{t['isrc']}?fmt=json", {}
        if provider == "discogs":
            return f"{self.base_url('discogs')}/releases/{t['discogs_release_id']}", {}
        query = (
            f"?method=track.getInfo&api_key={DEFAULT_LASTFM_API_KEY}&format=json"
            f"&mbid={t['musicbrainz_recording_id']}"
        )
        return f"{self.base_url('lastfm')}/{query}", {}

    def item(self, track: int) -> dict[str, Any]:
        t = self.tracks[track]
        return {"artist": list(t["artists"]), "title": t["title"]}

    def log(self, provider: str) -> list[dict[str, Any]]:
        return self.process.log(provider)


def start_fault_sandbox() -> FaultSandbox:
    """Start a sandbox subprocess for the matrix (the caller stops ``.process``)."""
    process = start_sandbox_process(
        SPEED, "--provider-ports", "--token-ttl", str(TOKEN_TTL), timeout=STARTUP_TIMEOUT
    )
    try:
        token = process.request(
            "POST",
            "/spotify/accounts/api/token",
            data=(
                f"grant_type=client_credentials&client_id={DEFAULT_SPOTIFY_CLIENT_ID}"
                f"&client_secret={DEFAULT_SPOTIFY_CLIENT_SECRET}"
            ).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ).json()["access_token"]
        tracks = process.catalog()["tracks"][:4]
        return FaultSandbox(process, process.hosts(), token, tracks)
    except BaseException:
        process.stop()
        raise


def start_fault_sandboxes(count: int, stack: ExitStack) -> list[FaultSandbox]:
    """Start *count* sandboxes; each is stopped when *stack* closes."""
    sandboxes = []
    for _ in range(count):
        sandbox = start_fault_sandbox()
        stack.callback(sandbox.process.stop)
        sandboxes.append(sandbox)
    return sandboxes


def provider_settings(
    sandbox: FaultSandbox, overrides: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """``APIGW_PROVIDERS``: each provider at its own sandbox port, under the harness policy plus
    *overrides* (provider -> fields). Providers the matrix does not use are removed."""
    providers: dict[str, Any] = {"beatport": None, "acousticbrainz": None}
    for name in PROVIDERS:
        fields: dict[str, Any] = {
            **POLICY,
            **overrides.get(name, {}),
            "base_url": sandbox.base_url(name),
            "domains": [],
        }
        if name == "spotify":
            fields["token_url"] = sandbox.hosts["spotify"] + BASE_PATHS["spotify_token"]
        if name == "discogs":
            # Discogs' quota is 60 per 60 s (its headers say "60", the window is implied); the
            # sandbox runs SPEED times faster, so its window is 60 / SPEED s, and the gateway
            # must know it (the adaptive rate takes the headers' quota as its ceiling).
            fields.update(window_limit=60, window=60.0 / SPEED)
        providers[name] = fields
    return providers


def crawl_settings(
    sandbox: FaultSandbox,
    workdir: Path,
    overrides: Mapping[str, Mapping[str, Any]],
    **extra: Any,
) -> dict[str, Any]:
    """Settings of one matrix crawl against *sandbox*, its feed and cache under *workdir*."""
    workdir.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {
        "ADDONS": {"scrapy_apigw.Addon": 500},
        "APIGW_PROVIDERS": provider_settings(sandbox, overrides),
        "APIGW_SPOTIFY_CLIENT_ID": DEFAULT_SPOTIFY_CLIENT_ID,
        "APIGW_SPOTIFY_CLIENT_SECRET": DEFAULT_SPOTIFY_CLIENT_SECRET,
        "APIGW_MUSICBRAINZ_USER_AGENT": USER_AGENT,
        "APIGW_DISCOGS_TOKEN": DEFAULT_DISCOGS_TOKEN,
        "APIGW_LASTFM_API_KEY": DEFAULT_LASTFM_API_KEY,
        "APIGW_USER_AGENT": USER_AGENT,
        "APIGW_CACHE_PATH": str(workdir / "apigw-cache.sqlite3"),
        "USER_AGENT": USER_AGENT,
        "FEEDS": {str(workdir / "items.jsonl"): {"format": "jsonlines", "overwrite": True}},
        "FEED_EXPORT_ENCODING": "utf-8",
        "LOG_LEVEL": "WARNING",
        "TELNETCONSOLE_ENABLED": False,
        "ROBOTSTXT_OBEY": False,
        # One item at a time: the second item sees what the first left (an open circuit, a
        # paused provider), deterministically.
        "CONCURRENT_ITEMS": 1,
        "DOWNLOAD_TIMEOUT": SPIDER_TIMEOUT_CAP,
    }
    settings.update(extra)
    return settings


class ProviderRequestsSpider(UrlsSpider):
    """Sends batches of provider requests (each with its own headers): the next batch once every
    request of the previous one has ended (response or errback), *pause* seconds later.

    Responses and failures are recorded as by :class:`UrlsSpider`; :attr:`endings` lists, in
    order, ``(url, "<status>" or "errback:<exception class>", monotonic time)`` for every
    request that ended; :attr:`started` is when the first batch went out.
    """

    name = "provider_requests"

    def __init__(
        self,
        batches: Sequence[Sequence[tuple[str, dict[str, str]]]],
        pause: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(urls=[], **kwargs)
        self.batches = batches
        self.pause = pause
        self.started = 0.0
        self.endings: list[tuple[str, str, float]] = []
        self._waiting = 0
        self._batch_done: Any = None

    def _end(self, url: str, what: str) -> None:
        import time

        self.endings.append((url, what, time.monotonic()))
        self._waiting -= 1
        if self._waiting <= 0 and self._batch_done is not None and not self._batch_done.called:
            self._batch_done.callback(None)

    def parse(self, response: Any) -> None:
        super().parse(response)
        self._end(response.request.url, str(response.status))

    def failed(self, failure: Any) -> None:
        super().failed(failure)
        self._end(failure.request.url, f"errback:{failure.type.__name__}")

    async def start(self) -> Any:
        import time

        from scrapy.utils.asyncio import sleep
        from scrapy.utils.defer import maybe_deferred_to_future
        from twisted.internet.defer import Deferred

        self.started = time.monotonic()
        for n, batch in enumerate(self.batches):
            if n:
                await maybe_deferred_to_future(self._batch_done)
                if self.pause:
                    await sleep(self.pause)
            self._batch_done = Deferred()
            self._waiting = len(batch)
            for url, headers in batch:
                yield scrapy.Request(
                    url,
                    headers=headers,
                    dont_filter=True,
                    errback=self.failed,
                    callback=self.parse,
                )


class OneByOneItemsSpider(ItemsSpider):
    """Yields the given items one at a time: the next only once the previous one has left the
    pipeline (``item_scraped``), and *pause* seconds after it when given.

    ``CONCURRENT_ITEMS`` does not order items yielded by ``start()``: they are enriched side
    by side. One at a time, the second item meets exactly what the first left (an open
    circuit, a paused provider, a cache entry).
    """

    name = "one_by_one_items"

    def __init__(self, items: list[Any], pause: float = 0.0, **kwargs: Any) -> None:
        super().__init__(items, **kwargs)
        self.pause = pause
        self._done: Any = None

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> Any:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider._left_pipeline, signal=scrapy.signals.item_scraped)
        crawler.signals.connect(spider._left_pipeline, signal=scrapy.signals.item_error)
        return spider

    def _left_pipeline(self, **_: Any) -> None:
        if self._done is not None and not self._done.called:
            self._done.callback(None)

    async def start(self) -> Any:
        from scrapy.utils.asyncio import sleep
        from scrapy.utils.defer import maybe_deferred_to_future
        from twisted.internet.defer import Deferred

        for n, item in enumerate(self.items_to_yield):
            if n and self.pause:
                await sleep(self.pause)
            self._done = Deferred()
            yield item
            await maybe_deferred_to_future(self._done)


async def run_side_by_side(
    jobs: Sequence[tuple[type, dict[str, Any], dict[str, Any]]],
) -> list[Any]:
    """Run crawls ``(spider class, settings, spider kwargs)`` at the same time; their results
    in order."""
    from twisted.internet import defer

    deferreds = [defer.ensureDeferred(run_crawl(cls, s, **kw)) for cls, s, kw in jobs]
    results = await defer.gatherResults(deferreds, consumeErrors=True)
    return list(results)


@dataclass
class CacheEntry:
    key: str
    kind: str
    status: int
    data: Any = field(repr=False)


def cache_entries(settings: Mapping[str, Any], provider: str) -> list[CacheEntry]:
    """The entries *provider* left in the crawl's embedded cache (expired ones included)."""
    path = Path(settings["APIGW_CACHE_PATH"])
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        try:
            rows = db.execute(
                "SELECT key, value FROM apigw_cache WHERE key LIKE ?", (f"%:{provider}:%",)
            ).fetchall()
        except sqlite3.OperationalError:  # no table: nothing was ever written
            return []
    entries = []
    for key, value in rows:
        document = json.loads(value)
        entries.append(CacheEntry(key, document["kind"], document["status"], document["data"]))
    return entries


def stat(result: Any, provider: str, key: str) -> int:
    return int(result.stats.get(f"apigw/{provider}/{key}", 0))


def outcome_counts(result: Any, provider: str) -> dict[str, int]:
    prefix = f"apigw/{provider}/responses/"
    return {k[len(prefix) :]: int(v) for k, v in result.stats.items() if k.startswith(prefix)}


def breaker_counts(result: Any, provider: str) -> dict[str, int]:
    return {s: stat(result, provider, f"breaker/{s}") for s in ("open", "half_open", "closed")}


__all__ = [
    "POLICY",
    "PROVIDERS",
    "SPEED",
    "SPIDER_TIMEOUT_CAP",
    "CacheEntry",
    "FaultSandbox",
    "ItemsSpider",
    "OneByOneItemsSpider",
    "ProviderRequestsSpider",
    "breaker_counts",
    "cache_entries",
    "crawl_settings",
    "outcome_counts",
    "provider_settings",
    "run_side_by_side",
    "start_fault_sandbox",
    "start_fault_sandboxes",
    "stat",
]
