"""The cache backend interface, cache keys and the stored format of an answer.

Nothing here touches the network, the disk or the reactor: backends live in :mod:`.redis` and
:mod:`.embedded`, the failure-tolerant front in :mod:`.resilient`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from typing import Protocol, runtime_checkable
from urllib.parse import quote

import orjson

from scrapy_apigw.providers.base import ApiAnswer, ApiCall
from scrapy_apigw.secrets import SECRET_PARAMS

__all__ = [
    "CACHEABLE_KINDS",
    "KEY_VERSION",
    "CacheBackend",
    "CacheError",
    "CorruptEntry",
    "cache_key",
    "decode_answer",
    "decode_entry",
    "encode_answer",
    "generation_scope",
    "parse_entry_key",
    "refusal_key",
]

#: Bumped when the key layout or the stored format changes, so old entries are never misread.
KEY_VERSION = "v1"

#: Answer kinds worth caching: data, and negative answers ("there is no such thing", RFC 9110
#: §15.1 makes 404 heuristically cacheable). 403 and other refusals depend on our credentials and
#: request, so they are asked again.
CACHEABLE_KINDS = frozenset({"ok", "not_found"})

# Header names that carry credentials; an ApiCall never has them (the auth layer adds them on the
# wire), and a key must not depend on, or reveal, a credential.
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})


class CacheError(Exception):
    """A backend operation failed (unreachable, timed out, refused, disk error).

    Messages are log-safe: no password, no cached value.
    """


class CorruptEntry(ValueError):
    """A stored value cannot be decoded into an answer."""


@runtime_checkable
class CacheBackend(Protocol):
    """Where answers are stored: a key-value store with per-entry expiry.

    Keys are ``str`` (see :func:`cache_key`), values opaque ``bytes``. Every method may raise
    :class:`CacheError` (or any other exception: :class:`~.resilient.ResponseCache` treats every
    exception from a backend as "cache unavailable").

    Attributes:
        name: short backend name for stats and logs, ``"redis"`` or ``"embedded"``.
    """

    name: str

    async def open(self) -> None:
        """Connect or open the store; raise if it is not usable."""
        ...

    async def close(self) -> None:
        """Release connections, threads and files. Safe to call twice or without open()."""
        ...

    async def get(self, key: str) -> bytes | None:
        """Return the value stored under *key*, or ``None`` if absent or expired."""
        ...

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store *value* under *key* for *ttl* seconds (> 0), replacing any previous value."""
        ...

    async def delete(self, key: str) -> None:
        """Remove *key* (no error if absent)."""
        ...

    def describe(self) -> str:
        """Return a log-safe description (never a password), e.g. ``redis://127.0.0.1:6379/0``."""
        ...


def check_no_credentials(call: ApiCall) -> None:
    """Refuse a *call* that carries a credential: one may never become part of a cache key.

    Raises:
        ValueError: a parameter named in :data:`scrapy_apigw.secrets.SECRET_PARAMS`, or an
            ``Authorization``-like header (naming it, never showing its value).
    """
    for name, _ in call.params:
        if name.lower() in SECRET_PARAMS:
            raise ValueError(
                f"{call.provider} call carries credential parameter {name!r}; "
                "credentials must be added by the auth layer, never cached"
            )
    for name, _ in call.headers:
        if name.lower() in _SECRET_HEADERS or name.lower() in SECRET_PARAMS:
            raise ValueError(
                f"{call.provider} call carries credential header {name!r}; "
                "credentials must be added by the auth layer, never cached"
            )


def generation_scope(provider: str, data_type: str) -> str:
    """The name under which the cache generation of *provider*'s *data_type* answers is kept,
    ``"{provider}:{data_type}"`` (each part percent-encoded as in :func:`cache_key`)."""
    return f"{_quoted(provider)}:{_quoted(data_type)}"


def parse_entry_key(rest: str) -> tuple[str, str, int] | None:
    """``(provider, data_type, generation)`` of an answer's key with the
    ``"{namespace}:v1:"`` prefix removed (see :func:`cache_key`); None for any other key (a
    remembered refusal, the counters). Provider and data type stay percent-encoded."""
    parts = rest.split(":")
    if len(parts) == 3 and parts[1] != "refusal":
        return parts[0], parts[1], 0
    if len(parts) == 4 and parts[1] != "refusal" and parts[2][:1] == "g" and parts[2][1:].isdigit():
        return parts[0], parts[1], int(parts[2][1:])
    return None


def cache_key(
    call: ApiCall, namespace: str = "apigw", generation: int = 0, *, checked: bool = False
) -> str:
    """Return the cache key of *call*: ``"{namespace}:v1:{provider}:{data_type}:{digest}"``,
    or ``"{namespace}:v1:{provider}:{data_type}:g{generation}:{digest}"`` once the answers of
    that provider and data type were invalidated (*generation* > 0, see
    :meth:`~scrapy_apigw.cache.resilient.ResponseCache.invalidate`): an entry of an older
    generation is never read again and simply expires.

    The digest is the first 32 hex digits (128 bits) of the SHA-256 of the canonical request:
    upper-case method, path, parameters sorted by name then value, headers with lower-cased names,
    sorted. So the order in which a client lists parameters does not matter, while any change to
    what is asked does. Provider and data type stay readable (one can count or drop a provider's
    entries with ``SCAN MATCH apigw:v1:spotify:*``); they are percent-encoded so a ``:`` in a
    user-defined provider name cannot blur the layout.

    *checked* is True when the caller has just run :func:`check_no_credentials` on *call* (a
    cache read checks before anything else), so the check is not run twice per lookup.

    Raises:
        ValueError: the call carries a credential (a parameter named in
            :data:`scrapy_apigw.secrets.SECRET_PARAMS`, or an ``Authorization``-like header).
            Calls never do by contract; this is defence in depth, so that a key never depends on
            or reveals a credential.
    """
    if not checked:
        check_no_credentials(call)
    headers = call.headers
    request = [
        call.method.upper(),
        call.path,
        sorted(call.params),
        sorted((name.lower(), value) for name, value in headers) if headers else [],
    ]
    try:
        # orjson writes the very bytes of the compact stdlib form below (non-ASCII as UTF-8,
        # the same escapes), several times faster: a warm crawl makes a key per lookup.
        canonical = orjson.dumps(request)
    except orjson.JSONEncodeError:
        # What orjson refuses (a lone surrogate): the stdlib's answer, an error included.
        canonical = _COMPACT_JSON.encode(request).encode("utf-8")
    digest = hashlib.sha256(canonical).hexdigest()[:32]
    provider, data_type = _quoted(call.provider), _quoted(call.data_type)
    if generation:
        return f"{namespace}:{KEY_VERSION}:{provider}:{data_type}:g{int(generation)}:{digest}"
    return f"{namespace}:{KEY_VERSION}:{provider}:{data_type}:{digest}"


#: ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))`` made once: ``json.dumps``
#: with options builds a new encoder per call. Same output.
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


@functools.lru_cache(maxsize=256)
def _quoted(name: str) -> str:
    """``quote(name, safe="")`` of a provider or data type name: a few names, asked per key."""
    return quote(name, safe="")


_ANSWER_KEYS = frozenset({"kind", "status", "data"})
_ENTRY_KEYS = _ANSWER_KEYS | {"fresh_until"}
_REFUSAL_WHAT = re.compile(r"^[A-Za-z0-9_.:/-]{1,100}$")


def refusal_key(provider: str, what: str, namespace: str = "apigw") -> str:
    """Return the key under which a refusal is remembered,
    ``"{namespace}:v1:{provider}:refusal:{what}"``
    (e.g. ``"apigw:v1:spotify:refusal:audio_features"``).

    *what* names the refused thing (an endpoint, ``"credentials"``), never a credential or a
    value derived from one: the key is readable by anyone who can list the cache.

    Raises:
        ValueError: *what* is not 1..100 characters of ``A-Z a-z 0-9 _ . : / -``.
    """
    if not _REFUSAL_WHAT.match(what):
        raise ValueError(f"a refusal name must be 1..100 of [A-Za-z0-9_.:/-], got {what!r}")
    return f"{namespace}:{KEY_VERSION}:{quote(provider, safe='')}:refusal:{what}"


def encode_answer(answer: ApiAnswer, fresh_until: float | None = None) -> bytes:
    """Serialize *answer* as UTF-8 JSON ``{"kind", "status", "data"}`` (``from_cache`` is dropped),
    plus ``"fresh_until"`` (wall-clock seconds since the epoch) when given: an entry kept past
    its TTL to be served stale while the provider fails (``APIGW_STALE_TTL``) says until when
    it was fresh.

    Raises:
        TypeError, ValueError: ``answer.data`` is not JSON-serializable.
    """
    document: dict[str, object] = {
        "kind": answer.kind,
        "status": answer.status,
        "data": answer.data,
    }
    if fresh_until is not None:
        document["fresh_until"] = fresh_until
    return _COMPACT_JSON.encode(document).encode("utf-8")


def decode_answer(value: bytes) -> ApiAnswer:
    """Parse a value written by :func:`encode_answer`; the answer has ``from_cache=True``.

    Raises:
        CorruptEntry: see :func:`decode_entry`.
    """
    return decode_entry(value)[0]


def decode_entry(value: bytes) -> tuple[ApiAnswer, float | None]:
    """Parse a value written by :func:`encode_answer`: the answer (``from_cache=True``) and its
    ``fresh_until`` (None for an entry written without one: fresh until the backend drops it).

    Raises:
        CorruptEntry: not UTF-8 JSON, not an object, an uncacheable kind, a bad status or a bad
            ``fresh_until``.
    """
    try:
        # orjson: a warm crawl's hits spend most of their decoding time here (~4x faster than
        # json on the providers' answers). What it refuses beyond RFC 8259 (NaN) json reads;
        # it reads an integer over 64 bits as a float (no provider answer holds one).
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        try:
            document = json.loads(value.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise CorruptEntry(f"not UTF-8 JSON: {exc}") from None
    if not isinstance(document, dict) or not (
        document.keys() == _ANSWER_KEYS or document.keys() == _ENTRY_KEYS
    ):
        raise CorruptEntry("not an answer object")
    kind, status = document["kind"], document["status"]
    if kind not in CACHEABLE_KINDS:
        raise CorruptEntry(f"uncacheable kind {kind!r}")
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise CorruptEntry(f"bad status {status!r}")
    fresh_until = document.get("fresh_until")
    if fresh_until is not None and (
        isinstance(fresh_until, bool) or not isinstance(fresh_until, int | float)
    ):
        raise CorruptEntry(f"bad fresh_until {fresh_until!r}")
    answer = ApiAnswer(kind=kind, status=status, data=document["data"], from_cache=True)
    return answer, None if fresh_until is None else float(fresh_until)
