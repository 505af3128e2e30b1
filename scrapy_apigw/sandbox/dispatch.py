"""Routing of every sandbox request, fault injection and the request log, free of Twisted.

``/{provider}/...`` goes to that provider (after faults are applied), ``/_sandbox/...`` to the
admin endpoints (not logged). The server only translates HTTP in and out: it sends the
:class:`Delivery` the dispatcher decided, connection faults included.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, unquote

from scrapy_apigw.sandbox.acousticbrainz import AcousticBrainz
from scrapy_apigw.sandbox.admin import Admin
from scrapy_apigw.sandbox.beatport import Beatport
from scrapy_apigw.sandbox.catalog import Catalog
from scrapy_apigw.sandbox.config import SandboxConfig
from scrapy_apigw.sandbox.discogs import Discogs
from scrapy_apigw.sandbox.faults import FaultInjector, malform
from scrapy_apigw.sandbox.http import Reply, SandboxRequest, json_reply
from scrapy_apigw.sandbox.lastfm import Lastfm
from scrapy_apigw.sandbox.musicbrainz import MusicBrainz
from scrapy_apigw.sandbox.provider import Provider
from scrapy_apigw.sandbox.requestlog import RequestLog, mask_query
from scrapy_apigw.sandbox.site import Site
from scrapy_apigw.sandbox.spotify import Spotify

__all__ = ["Delivery", "Dispatcher"]


@dataclass(frozen=True)
class Delivery:
    """How the server must send one answer.

    Attributes:
        reply: the answer (unused when ``connection`` is ``reset`` or ``hang``).
        latency: seconds to wait before doing anything (a ``latency`` fault).
        connection: ``None`` (send normally), ``"reset"``, ``"reset_mid_body"``, ``"hang"``
            or ``"trickle"`` (see :data:`scrapy_apigw.sandbox.faults.CONNECTION_FAULTS`).
        trickle_seconds: for ``trickle``, how long the whole body takes, seconds.
        provider: the provider that answered, ``None`` for admin and unknown paths.
    """

    reply: Reply
    latency: float = 0.0
    connection: str | None = None
    trickle_seconds: float = 0.0
    provider: str | None = None


class Dispatcher:
    """Everything a sandbox does with a request, given its parts.

    Args:
        config: the sandbox settings.
        catalog: the tracks to serve; loaded from ``config.catalog_path`` when ``None``.
        clock: monotonic seconds (the ``t`` of log records and every limiter's ``now``).
        wall: epoch seconds (the ``wall`` of log records).
    """

    def __init__(
        self,
        config: SandboxConfig,
        catalog: Catalog | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.catalog = (
            catalog if catalog is not None else Catalog.load(config.catalog_path, config.decoys)
        )
        self.clock = clock
        self.wall = wall
        self.started = clock()
        providers: list[Provider] = [
            Spotify(self.catalog, config),
            MusicBrainz(self.catalog, config.speed, config.musicbrainz_generic_ua),
            Discogs(self.catalog, config),
            Lastfm(self.catalog, config),
            Beatport(self.catalog, config),
            AcousticBrainz(),
            Site(self.catalog, config.messy_site),
        ]
        self.providers: dict[str, Provider] = {p.name: p for p in providers}
        self.faults = FaultInjector(
            {p.name: p.default_error_status for p in providers}, seed=config.seed
        )
        self.log = RequestLog()
        self.admin = Admin(self)
        #: provider -> ``http://host:port`` of its own port, when the server opened them
        self.hosts: dict[str, str] = {}

    def reset(self) -> None:
        """Clear the log, every fault and every rate-limit state (tokens stay valid)."""
        self.log.clear()
        self.faults.reset()
        for provider in self.providers.values():
            provider.reset()

    def handle(
        self,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: Mapping[str, str],
        body: bytes,
        base_url: str,
        only: str | None = None,
    ) -> Delivery:
        """Answer one request.

        Args:
            method: HTTP method.
            raw_path: the path as sent (percent-encoded), without the query.
            raw_query: the query string, without ``?``.
            headers: request headers, names lower-cased.
            body: request body.
            base_url: ``http://host:port`` as the client addressed the sandbox.
            only: the request came in on this provider's own port, which serves nothing else
                (no admin endpoints either): any other path is a 404.

        Returns:
            What to send, and how (latency and connection faults).
        """
        now = self.clock()
        path = unquote(raw_path, errors="replace") or "/"
        query = parse_qs(raw_query, keep_blank_values=True, errors="replace")
        first, _, rest = path.lstrip("/").partition("/")
        req = SandboxRequest(
            method=method.upper(),
            path="/" + rest,
            full_path=path,
            query=query,
            headers=dict(headers),
            body=body,
            now=now,
            base_url=base_url,
        )
        if only is not None and first != only:
            return Delivery(json_reply(404, {"error": f"this port serves only {only!r}"}))
        if first == "_sandbox" or first == "":
            return Delivery(self.admin.handle(req, root=first == ""))
        provider = self.providers.get(first)
        if provider is None:
            reply = json_reply(
                404, {"error": f"no provider {first!r}", "providers": sorted(self.providers)}
            )
            return Delivery(reply)
        plan = self.faults.plan(first, outage_only=provider.fault_exempt(req), now=now)
        fault: str | None = plan.kind
        status: int | None
        if plan.kind in ("outage", "error"):
            reply = provider.error_reply(
                req, plan.status or provider.default_error_status, plan.kind
            )
        elif plan.kind == "forced_429":  # a fault, not the limiter: rate_limited stays false
            reply = replace(provider.rate_limit_reply(req, plan.retry_after), rate_limited=False)
        elif plan.kind == "quota":  # a limit the test imposed: a real rejection
            reply = replace(provider.rate_limit_reply(req, plan.retry_after), rate_limited=True)
        elif plan.connection in ("reset", "hang"):
            # No answer at all: the provider never sees the request (its limits stay untouched).
            reply, fault = json_reply(502, {"error": "no answer"}), plan.connection
        else:
            reply = provider.serve(req)
            if plan.malformed and 200 <= reply.status < 300:
                reply = malform(reply, plan.malformed)
                fault = "malformed"
            if plan.connection is not None:
                fault = plan.connection
        if fault is None and plan.latency > 0:
            fault = "latency"
        status = None if fault in ("reset", "hang") else reply.status
        self.log.add(self._record(req, first, status, reply.rate_limited, fault))
        return Delivery(
            reply,
            latency=plan.latency,
            connection=plan.connection if plan.kind is None else None,
            trickle_seconds=plan.trickle_seconds,
            provider=first,
        )

    def _record(
        self,
        req: SandboxRequest,
        provider: str,
        status: int | None,
        rate_limited: bool,
        fault: str | None,
    ) -> dict[str, Any]:
        return {
            "t": round(req.now, 6),
            "wall": round(self.wall(), 6),
            "provider": provider,
            "method": req.method,
            "path": req.full_path,
            "query": mask_query(req.query),
            "status": status,
            "rate_limited": rate_limited,
            "fault": fault,
            "user_agent": req.header("user-agent"),
        }
