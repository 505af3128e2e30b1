"""Admin endpoints under ``/_sandbox`` (never logged, never rate limited, never faulted).

- ``GET /_sandbox/health``: ``{"status":"ok","speed","uptime","requests","catalog_size",
  "tracklists","providers"}``.
- ``GET /_sandbox/log[?provider=&since=<t>]``: the request records (see
  :mod:`scrapy_apigw.sandbox.requestlog`).
- ``GET /_sandbox/faults``: current faults per provider.
- ``POST /_sandbox/faults`` with JSON ``{"provider": "musicbrainz", "outage": true,
  "error_rate": 0.3, "error_status": 502, "latency": 0.5, "rate_limit_next": 2,
  "retry_after": "3", "malformed_rate": 0.1, "malformed_kind": "html",
  "connection": "reset", "trickle_seconds": 2.0, "expire_after": 3}`` merges the given keys
  into that provider's faults (see :mod:`scrapy_apigw.sandbox.faults`);
  ``{"provider": ..., "clear": true}`` clears them. Answers the provider's faults;
  400 ``{"error": ...}`` for an unknown provider or key or a bad value.
- ``GET /_sandbox/hosts``: ``{provider: "http://127.0.0.1:<port>"}``, each provider's own
  port (``--provider-ports``; ``{}`` without).
- ``POST /_sandbox/reset``: clears the log, the faults and every rate-limit state.
- ``GET /_sandbox/catalog``: ``{"count", "tracklists", "tracks": [...]}`` with every track's
  ids (Spotify id, ISRC, MBID, Discogs release id...), for tests that need expected values,
  and ``"decoys": [...]`` (family, kind, the track imitated, ids; empty without decoys).
- ``GET /_sandbox/truth``: ``{"count", "rows": [...]}``, the ground truth of every row of the
  tracklist website (:func:`scrapy_apigw.sandbox.truth.ground_truth`).
- ``GET /``: an index of the provider base URLs.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from scrapy_apigw.sandbox.config import BASE_PATHS
from scrapy_apigw.sandbox.faults import FaultError
from scrapy_apigw.sandbox.http import Reply, SandboxRequest, json_reply
from scrapy_apigw.sandbox.truth import ground_truth

if TYPE_CHECKING:
    from scrapy_apigw.sandbox.dispatch import Dispatcher

__all__ = ["Admin"]


class Admin:
    """The ``/_sandbox`` endpoints of one dispatcher."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    def handle(self, req: SandboxRequest, *, root: bool = False) -> Reply:
        """Route an admin request (``root``: the request was for ``/``)."""
        d = self.dispatcher
        if root:
            return json_reply(200, {name: req.base_url + path for name, path in BASE_PATHS.items()})
        route = (req.method, tuple(req.segments()))
        if route == ("GET", ("health",)):
            return json_reply(
                200,
                {
                    "status": "ok",
                    "speed": d.config.speed,
                    "uptime": round(d.clock() - d.started, 3),
                    "requests": len(d.log),
                    "catalog_size": len(d.catalog),
                    "decoys": len(d.catalog.decoys),
                    "tracklists": len(self._tracklists()),
                    "providers": sorted(d.providers),
                },
            )
        if route == ("GET", ("log",)):
            since = req.arg("since")
            try:
                since_value = float(since) if since is not None else None
            except ValueError:
                return json_reply(400, {"error": "since must be a number of seconds"})
            return json_reply(200, d.log.records(req.arg("provider"), since_value))
        if route == ("GET", ("hosts",)):
            return json_reply(200, d.hosts)
        if route == ("GET", ("faults",)):
            return json_reply(200, d.faults.snapshot())
        if route == ("POST", ("faults",)):
            return self._set_faults(req)
        if route == ("POST", ("reset",)):
            d.reset()
            return json_reply(200, {"status": "reset"})
        if route == ("GET", ("catalog",)):
            return json_reply(
                200,
                {
                    "count": len(d.catalog),
                    "tracklists": len(self._tracklists()),
                    "tracks": d.catalog.summary(),
                    "decoys": d.catalog.decoy_summary(),
                },
            )
        if route == ("GET", ("truth",)):
            rows = ground_truth(self._tracklists())
            return json_reply(200, {"count": len(rows), "rows": rows})
        return json_reply(404, {"error": f"no admin endpoint {req.method} {req.full_path}"})

    def _tracklists(self) -> list[Any]:
        site = self.dispatcher.providers["site"]
        return list(getattr(site, "tracklists", []))

    def _set_faults(self, req: SandboxRequest) -> Reply:
        try:
            data = json.loads(req.body or b"null")
        except ValueError:
            return json_reply(400, {"error": "body must be a JSON object"})
        if not isinstance(data, dict) or not isinstance(data.get("provider"), str):
            return json_reply(400, {"error": 'body must be a JSON object with a "provider"'})
        provider = data.pop("provider")
        faults = self.dispatcher.faults
        try:
            if data.pop("clear", False):
                faults.clear(provider)
            if data:
                faults.set(provider, **data)
            faults.get(provider)  # validates the name when nothing else was asked
        except FaultError as exc:
            return json_reply(400, {"error": str(exc)})
        return json_reply(200, {"provider": provider, **faults.snapshot()[provider]})
