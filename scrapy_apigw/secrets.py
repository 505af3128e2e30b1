"""A wrapper that keeps credentials out of logs, reprs, stats and exceptions."""

from __future__ import annotations

import re
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
