"""A wrapper that keeps credentials out of logs, reprs, stats and exceptions."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


class Secret:
    """An opaque credential (client secret, token, API key).

    ``str()``, ``repr()`` and formatting never show the value; call :meth:`reveal` at the single
    place where the value is put on the wire. Equality compares the hidden values.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the real value. Use only to build an outgoing request."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


#: Query parameters whose values are credentials (Last.fm ``api_key``, Discogs ``token``, ...).
SECRET_PARAMS = frozenset({"api_key", "token", "key", "secret", "client_secret", "access_token"})

_AUTH_RE = re.compile(r"//[^/@]*@")


def redact_url(url: str) -> str:
    """Return *url* with credential query values replaced by ``***`` and userinfo removed.

    >>> redact_url("https://ws.audioscrobbler.com/2.0/?method=track.getInfo&api_key=abc")
    'https://ws.audioscrobbler.com/2.0/?method=track.getInfo&api_key=%2A%2A%2A'
    """
    parts = urlsplit(_AUTH_RE.sub("//", url))
    if not parts.query:
        return urlunsplit(parts)
    query = [
        (k, "***" if k.lower() in SECRET_PARAMS else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


#: PBKDF2-HMAC-SHA256 iterations of a credentials verifier: about 60 ms on one core, paid once
#: per provider and crawl, and by anyone testing one guess against a stored verifier.
VERIFIER_ITERATIONS = 100_000


def _credentials_text(provider: str, credentials: Mapping[str, Any]) -> bytes:
    fields = sorted(
        (name, value.reveal() if isinstance(value, Secret) else str(value))
        for name, value in credentials.items()
    )
    return repr((provider, fields)).encode("utf-8")


def credentials_verifier(
    provider: str, credentials: Mapping[str, Any], *, salt: bytes | None = None
) -> str:
    """A salted, slow one-way verifier of *provider*'s *credentials*, to recognise the same
    credentials later without storing them: ``"pbkdf2-sha256$<iterations>$<salt>$<digest>"``
    (hex). Like a password hash (RFC 8018 §5.2), it reveals nothing usable: each guess costs
    :data:`VERIFIER_ITERATIONS` HMACs, and the salt (random, 16 bytes) makes every verifier
    different, so equal credentials cannot be spotted across entries or machines.

    Args:
        provider: provider name (part of what is hashed).
        credentials: field -> value (:class:`Secret` or str), e.g. ``{"api_key": Secret(...)}``.
        salt: for tests only; default: 16 random bytes.
    """
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.pbkdf2_hmac(
        "sha256", _credentials_text(provider, credentials), salt, VERIFIER_ITERATIONS
    )
    return f"pbkdf2-sha256${VERIFIER_ITERATIONS}${salt.hex()}${digest.hex()}"


def verifies(verifier: Any, provider: str, credentials: Mapping[str, Any]) -> bool:
    """True when *verifier* (from :func:`credentials_verifier`) was made from these very
    credentials; False for other credentials, or anything that is not such a verifier."""
    if not isinstance(verifier, str):
        return False
    parts = verifier.split("$")
    if len(parts) != 4 or parts[0] != "pbkdf2-sha256" or not parts[1].isdigit():
        return False
    iterations = int(parts[1])
    if not 1 <= iterations <= 10 * VERIFIER_ITERATIONS:
        return False
    try:
        salt, expected = bytes.fromhex(parts[2]), bytes.fromhex(parts[3])
    except ValueError:
        return False
    text = _credentials_text(provider, credentials)
    digest = hashlib.pbkdf2_hmac("sha256", text, salt, iterations)
    return hmac.compare_digest(digest, expected)
