"""What a response body is: usable JSON, or which kind of malformed answer.

A 2xx answer that cannot be used is not "no data": it is a failure of its own kind (see
:attr:`scrapy_apigw.core.outcome.Outcome.MALFORMED`). This module names the kind from the body
and its ``Content-Type`` alone; what a given call needs from a valid JSON body is checked by the
provider clients (their ``check_shape``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "EMPTY",
    "HTML",
    "MAX_JSON_BYTES",
    "NOT_JSON",
    "TRUNCATED",
    "Payload",
    "drop_keys",
    "is_json_type",
    "json_requested",
    "read_payload",
    "wrong_type",
]

#: Malformed kinds (log-safe, they name no URL or value).
EMPTY = "empty body"
HTML = "HTML page"
TRUNCATED = "truncated JSON"
NOT_JSON = "not JSON"

#: Bodies larger than this are not decoded (bytes): no provider answer comes near it.
MAX_JSON_BYTES = 5_000_000

_HTML_START = (b"<!doctype html", b"<html")
_LITERALS = ("true", "false", "null")
_NUMBER_TAIL = re.compile(r"[-+.eE0-9]*")
_ESCAPE_TAIL = re.compile(r"u[0-9a-fA-F]{0,4}(?:\\(?:u[0-9a-fA-F]{0,4})?)?")


def wrong_type(content_type: str) -> str:
    """The malformed kind of a non-JSON ``Content-Type``, e.g. ``"wrong content type text/xml"``."""
    return f"wrong content type {_media_type(content_type)[:60]}"


@dataclass(frozen=True)
class Payload:
    """A body read as JSON.

    Attributes:
        data: the decoded JSON value, or None (empty, not JSON, oversized).
        problem: the malformed kind (:data:`EMPTY`, :data:`HTML`, :data:`TRUNCATED`,
            :data:`NOT_JSON`, or :func:`wrong_type`), or None when nothing is wrong with the
            body as such. It only matters for a 2xx answer: error bodies are whatever they are.
    """

    data: Any = None
    problem: str | None = None


def is_json_type(content_type: str | None) -> bool:
    """True for a JSON media type: ``application/json``, ``*/*+json`` (RFC 6839), ``text/json``,
    or the ``javascript`` types old JSON APIs still send."""
    media = _media_type(content_type)
    return (
        media in ("application/json", "text/json")
        or media.endswith("+json")
        or media in ("text/javascript", "application/javascript", "application/x-javascript")
    )


def json_requested(accept: str | None, url: str) -> bool:
    """True when a request asked for JSON: an ``Accept`` naming a JSON type, or a ``fmt=json`` /
    ``format=json`` query parameter (MusicBrainz, Last.fm)."""
    if accept and "json" in accept.lower():
        return True
    query = urlsplit(url).query
    return any(
        key in ("fmt", "format") and value.lower() == "json"
        for key, value in parse_qsl(query, keep_blank_values=True)
    )


def read_payload(body: bytes | None, content_type: str | None, json_expected: bool) -> Payload:
    """Decode *body* and say what, if anything, makes it unusable as an answer.

    Args:
        body: the response body.
        content_type: the response's ``Content-Type`` header, or None when absent.
        json_expected: the request asked for JSON. JSON is also expected when the response says
            it is JSON.

    Returns:
        The decoded JSON (when it decodes) and the malformed kind, in this order of checks: an
        empty (or blank) body; an HTML page (``text/html``, or a body starting ``<html`` /
        ``<!doctype html``), always wrong from an API; then, if JSON is expected: a body that
        does not decode (:data:`TRUNCATED` when it breaks off at its end, else
        :data:`NOT_JSON`); a ``Content-Type`` that is not JSON (:func:`wrong_type`) wins over
        both when the request asked for JSON (a missing one is judged by the body). A body
        over :data:`MAX_JSON_BYTES` is not decoded and not judged.
    """
    if not body or not body.strip():
        return Payload(problem=EMPTY)
    media = _media_type(content_type)
    if media in ("text/html", "application/xhtml+xml") or body.lstrip()[:15].lower().startswith(
        _HTML_START
    ):
        return Payload(problem=HTML)
    if len(body) > MAX_JSON_BYTES:
        return Payload()
    data: Any = None
    problem: str | None = None
    try:
        data = json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        if json_expected or is_json_type(content_type):
            problem = _decode_problem(exc)
    if json_expected and media and not is_json_type(media):
        problem = wrong_type(media)  # JSON was asked for: an XML or text answer is not it
    return Payload(data, problem)


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _decode_problem(exc: ValueError) -> str:
    """TRUNCATED when decoding failed because the document stopped short, else NOT_JSON."""
    if isinstance(exc, UnicodeDecodeError):
        # A UTF-8 sequence cut at the end of the body.
        return TRUNCATED if exc.reason == "unexpected end of data" else NOT_JSON
    if not isinstance(exc, json.JSONDecodeError):
        return NOT_JSON
    if exc.msg.startswith("Unterminated string"):
        return TRUNCATED  # the string runs to the end of the body
    rest = exc.doc[exc.pos :].strip()
    if not rest:
        return TRUNCATED  # nothing left where a value, a comma or a bracket was due
    if exc.msg.startswith("Invalid \\uXXXX escape") and _ESCAPE_TAIL.fullmatch(rest):
        return TRUNCATED  # a \\u escape (or surrogate pair) at the very end
    if any(literal.startswith(rest) for literal in _LITERALS) or _NUMBER_TAIL.fullmatch(rest):
        return TRUNCATED  # "tr", "nul", "1.", "-", "1e+": a literal or number cut short
    return NOT_JSON


def drop_keys(data: Any, keys: frozenset[str]) -> Any:
    """Remove the members named in *keys* from every object of the decoded JSON *data*, at any
    depth, in place; return *data*.

    For what a provider's answers carry and its client never reads (Spotify's
    ``available_markets``, see :attr:`~scrapy_apigw.providers.spec.ProviderSpec.unread_keys`):
    a cached answer is smaller, and a cache hit parses less. Iterative, so a deeply nested body
    cannot exhaust the stack.
    """
    if not keys:
        return data
    pending = [data]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            for key in keys & node.keys():
                del node[key]
            pending.extend(value for value in node.values() if isinstance(value, dict | list))
        elif isinstance(node, list):
            pending.extend(value for value in node if isinstance(value, dict | list))
    return data
