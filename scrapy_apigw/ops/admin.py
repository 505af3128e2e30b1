"""``/health`` and the token-protected ``/admin/...`` endpoints, as ``twisted.web`` resources.

Routes (JSON answers, ``Cache-Control: no-store``)::

    GET  /health                                 the health report (503 when unhealthy)
    GET  /admin/rate-limits                      every provider's rate limits
    POST /admin/rate-limits/{provider}/reset     reset them for the whole fleet
    GET  /admin/circuit-breakers                 every provider's circuit breaker
    POST /admin/circuit-breakers/{provider}/reset
    POST /admin/circuit-breakers/reset-all
    GET  /admin/cache/stats                      entries, hits, misses per provider, data type
    POST /admin/cache/invalidate?provider=P[&data_type=T]

Access: every ``/admin`` request needs ``Authorization: Bearer <APIGW_ADMIN_TOKEN>``, compared
with :func:`hmac.compare_digest`; without it 401 and nothing is read or changed. Without a
token configured ``/admin`` is off: 403 saying how to turn it on. Then: an unknown route 404,
an unknown provider 404, a known route with another method 405 (with ``Allow``). Where the
state cannot be read (Redis down) 503. No answer, log line or error shows the token or any
other credential (the state's messages hide passwords).

The listening socket is the operations extension's or ``apigw serve``'s (127.0.0.1 unless told
otherwise); :func:`ops_children` gives their root these two children.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from scrapy_apigw.ops.state import OpsState, StateUnavailable, UnknownProvider
from scrapy_apigw.secrets import Secret

__all__ = ["AdminResource", "HealthResource", "ops_children"]

logger = logging.getLogger(__name__)

#: What a 403 says when no token is configured.
ADMIN_OFF = (
    "the admin endpoints are off: set APIGW_ADMIN_TOKEN (a Scrapy setting, or the environment "
    "variable of that name, e.g. `export APIGW_ADMIN_TOKEN=$(openssl rand -hex 32)`) and send "
    "it as `Authorization: Bearer <token>`"
)

Handler = Callable[[OpsState, Request], Awaitable[Any]]


def ops_children(state: OpsState, admin_token: Secret | str | None = None) -> dict[bytes, Resource]:
    """The resources ``/health`` and ``/admin`` over *state*, for the operations root
    (:func:`scrapy_apigw.ops.web.build_root`).

    Args:
        state: a :class:`~scrapy_apigw.ops.state.CrawlState` or
            :class:`~scrapy_apigw.ops.state.RedisState`.
        admin_token: the ``/admin`` bearer token; default the state's settings'
            ``APIGW_ADMIN_TOKEN``; None there too: ``/admin`` answers 403.
    """
    if admin_token is None:
        admin_token = state_token(state)
    return {b"health": HealthResource(state), b"admin": AdminResource(state, admin_token)}


def state_token(state: OpsState) -> Secret | None:
    """The ``APIGW_ADMIN_TOKEN`` of *state*'s settings (a crawl's gateway, or
    :class:`RedisState`'s), or None."""
    gateway = getattr(state, "gateway", None)
    settings = gateway.settings if gateway is not None else getattr(state, "settings", None)
    token = getattr(settings, "admin_token", None)
    return token if isinstance(token, Secret) and token else None


class _JsonResource(Resource):
    """Runs one coroutine per request and answers its JSON."""

    isLeaf = True

    def __init__(self, state: OpsState) -> None:
        super().__init__()
        self.state = state

    def respond(self, request: Request, status: int, body: Any) -> None:
        """Write *body* as the JSON answer with HTTP *status* and finish (unless the client
        went away)."""
        if getattr(request, "_apigw_gone", False):
            return
        data = json.dumps(body, sort_keys=True, indent=1).encode("utf-8") + b"\n"
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"content-length", str(len(data)).encode("ascii"))
        request.write(data)
        request.finish()

    def error(self, request: Request, status: int, message: str) -> None:
        """Answer ``{"error": message}`` with HTTP *status*."""
        self.respond(request, status, {"error": message, "status": status})

    def run(self, request: Request, handler: Handler) -> int:
        """Answer *request* with what *handler* returns, later; errors become 404 (unknown
        provider), 503 (state unavailable) or 500 (logged)."""
        from scrapy.utils.defer import deferred_from_coro

        def gone(_: Any) -> None:
            request._apigw_gone = True  # type: ignore[attr-defined]

        request.notifyFinish().addErrback(gone)

        async def answer() -> None:
            try:
                body = await handler(self.state, request)
            except UnknownProvider as exc:
                self.error(request, 404, str(exc))
            except StateUnavailable as exc:
                self.error(request, 503, str(exc))
            except Exception:
                logger.exception("apigw: %s %s failed", _text(request.method), _path(request))
                self.error(request, 500, "internal error (logged)")
            else:
                status = 200
                if isinstance(body, tuple):
                    status, body = body
                self.respond(request, status, body)

        deferred_from_coro(answer())
        return NOT_DONE_YET


class HealthResource(_JsonResource):
    """``GET /health``: :meth:`OpsState.health`; 200, or 503 when ``unhealthy``."""

    def render(self, request: Request) -> Any:
        """Answer one request (GET and HEAD only: 405 otherwise)."""
        if request.postpath not in ([], [b""]):
            self.error(request, 404, "not found")
            return NOT_DONE_YET
        if request.method not in (b"GET", b"HEAD"):
            request.setHeader(b"allow", b"GET, HEAD")
            self.error(request, 405, "method not allowed; allowed: GET")
            return NOT_DONE_YET

        async def health(state: OpsState, _: Request) -> tuple[int, Any]:
            report = await state.health()
            return (503 if report["status"] == "unhealthy" else 200), report

        return self.run(request, health)


class FleetStatsResource(_JsonResource):
    """``GET /stats`` from ``apigw serve``: :meth:`OpsState.coverage`, the coverage report of
    every crawl that used the fleet's cache (a crawl's own ``/stats`` is its report so far:
    :func:`scrapy_apigw.ops.coverage.coverage_resource`)."""

    def render(self, request: Request) -> Any:
        """Answer one request (GET and HEAD only: 405 otherwise)."""
        if request.method not in (b"GET", b"HEAD"):
            request.setHeader(b"allow", b"GET, HEAD")
            self.error(request, 405, "method not allowed; allowed: GET")
            return NOT_DONE_YET

        async def coverage(state: OpsState, _: Request) -> Any:
            return await state.coverage()

        return self.run(request, coverage)


class AdminResource(_JsonResource):
    """``/admin/...`` (see the module docstring).

    Args:
        state: what the endpoints read and change.
        token: the bearer token; None or empty: every request is answered 403.
    """

    def __init__(self, state: OpsState, token: Secret | str | None) -> None:
        super().__init__(state)
        value = token.reveal() if isinstance(token, Secret) else token
        self._token = value.encode("utf-8") if value else None

    def render(self, request: Request) -> Any:
        """Check the token, route, and answer one request."""
        if self._token is None:
            self.error(request, 403, ADMIN_OFF)
            return NOT_DONE_YET
        if not self._authorized(request):
            request.setHeader(b"www-authenticate", b'Bearer realm="apigw-admin"')
            self.error(request, 401, "missing or wrong bearer token (Authorization: Bearer ...)")
            return NOT_DONE_YET
        path = [_text(segment) for segment in request.postpath or () if segment != b""]
        route = _route(path)
        if route is None:
            self.error(request, 404, "not found")
            return NOT_DONE_YET
        method, handler = route
        if _text(request.method) != method:
            request.setHeader(b"allow", method.encode("ascii"))
            self.error(request, 405, f"method not allowed; allowed: {method}")
            return NOT_DONE_YET
        return self.run(request, handler)

    def _authorized(self, request: Request) -> bool:
        assert self._token is not None
        header = _text(request.getHeader(b"authorization"))
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer":
            given = ""
        # Constant time in the token's content, whatever the header holds.
        return hmac.compare_digest(given.strip().encode("utf-8"), self._token)


def _route(path: list[str]) -> tuple[str, Handler] | None:
    """``(method, handler)`` of an ``/admin`` path (segments after ``admin``), or None."""
    if path == ["rate-limits"]:
        return "GET", lambda state, _: state.rate_limits()
    if len(path) == 3 and path[0] == "rate-limits" and path[2] == "reset":
        provider = path[1]
        return "POST", lambda state, _: state.reset_rate_limits(provider)
    if path == ["circuit-breakers"]:
        return "GET", lambda state, _: state.breakers()
    if path == ["circuit-breakers", "reset-all"]:
        return "POST", lambda state, _: state.reset_all_breakers()
    if len(path) == 3 and path[0] == "circuit-breakers" and path[2] == "reset":
        provider = path[1]
        return "POST", lambda state, _: state.reset_breaker(provider)
    if path == ["cache", "stats"]:
        return "GET", lambda state, _: state.cache_stats()
    if path == ["cache", "invalidate"]:
        return "POST", _invalidate
    return None


async def _invalidate(state: OpsState, request: Request) -> Any:
    args = request.args or {}
    provider = _arg(args, b"provider")
    if not provider:
        return 400, {"error": "provider= is required (data_type= is optional)", "status": 400}
    return await state.invalidate_cache(provider, _arg(args, b"data_type") or None)


def _arg(args: dict[bytes, list[bytes]], name: bytes) -> str | None:
    values = args.get(name)
    return _text(values[0]) if values else None


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _path(request: Request) -> str:
    # The path only: a query string could hold anything a client put there.
    return _text(request.path)
