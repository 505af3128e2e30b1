"""The request and reply types the provider handlers work with, free of Twisted.

The server turns each ``twisted.web`` request into a :class:`SandboxRequest` and writes the
:class:`Reply` a handler returns, so handlers stay plain functions of their input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

__all__ = ["Reply", "SandboxRequest", "html_reply", "json_reply", "text_reply"]


@dataclass(frozen=True)
class SandboxRequest:
    """One HTTP request as the provider handlers see it.

    Attributes:
        method: upper-case HTTP method.
        path: percent-decoded path *below the provider prefix* (``/v1/search`` for
            ``/spotify/v1/search``); the admin and site handlers get their own sub-path.
        full_path: percent-decoded path of the whole URL, without the query.
        query: query parameters (URL only, never the body), every value of each name.
        headers: request headers, names lower-cased, first value of each.
        body: raw request body.
        now: arrival time, seconds of the sandbox's monotonic clock.
        base_url: ``scheme://host:port`` the client used, for ``href``/``resource_url`` links.
    """

    method: str
    path: str
    full_path: str
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    now: float = 0.0
    base_url: str = "http://127.0.0.1"

    def arg(self, name: str, default: str | None = None) -> str | None:
        """First value of query parameter *name*, or *default*."""
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name: str, default: str | None = None) -> str | None:
        """Request header *name* (case-insensitive), or *default*."""
        return self.headers.get(name.lower(), default)

    def form(self) -> dict[str, str]:
        """The body parsed as ``application/x-www-form-urlencoded`` (first value per name)."""
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            return {}
        return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}

    def segments(self) -> list[str]:
        """Non-empty path segments of :attr:`path`."""
        return [s for s in self.path.split("/") if s]


@dataclass(frozen=True)
class Reply:
    """What to send back.

    Attributes:
        status: HTTP status code.
        body: response body bytes.
        content_type: ``Content-Type`` header value.
        headers: extra headers, in order.
        reason: status-line phrase when it differs from the standard one.
        rate_limited: True when the provider's rate limiter rejected the request.
    """

    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()
    reason: str | None = None
    rate_limited: bool = False

    def with_headers(self, *extra: tuple[str, str]) -> Reply:
        """A copy with *extra* headers appended."""
        return Reply(
            self.status,
            self.body,
            self.content_type,
            self.headers + tuple(extra),
            self.reason,
            self.rate_limited,
        )

    def json(self) -> Any:
        """The body decoded as JSON (for tests and admin tooling)."""
        return json.loads(self.body)


def json_reply(
    status: int,
    data: Any,
    headers: tuple[tuple[str, str], ...] = (),
    *,
    reason: str | None = None,
    rate_limited: bool = False,
) -> Reply:
    """A JSON reply (UTF-8, non-ASCII kept as is, as the real APIs send it)."""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Reply(status, body, headers=headers, reason=reason, rate_limited=rate_limited)


def text_reply(
    status: int,
    text: str,
    content_type: str = "text/plain; charset=utf-8",
    headers: tuple[tuple[str, str], ...] = (),
    *,
    reason: str | None = None,
    rate_limited: bool = False,
) -> Reply:
    """A reply with a text body of the given content type."""
    return Reply(
        status,
        text.encode("utf-8"),
        content_type,
        headers,
        reason=reason,
        rate_limited=rate_limited,
    )


def html_reply(status: int, html: str) -> Reply:
    """An HTML reply."""
    return text_reply(status, html, "text/html; charset=utf-8")
