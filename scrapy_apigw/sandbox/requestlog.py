"""The record of every provider request the sandbox received, without credentials.

One record per request (admin requests excluded)::

    {"t": 12.5031, "wall": 1767200000.12, "provider": "spotify", "method": "GET",
     "path": "/spotify/v1/search", "query": {"q": "...", "type": "track"},
     "status": 200, "rate_limited": false, "fault": null, "user_agent": "..."}

``t`` is the sandbox's monotonic clock (seconds), ``wall`` the epoch time. ``status`` is
``null`` when no answer was sent (``fault`` ``"reset"`` or ``"hang"``); ``fault`` names the
fault applied (``outage``, ``forced_429``, ``quota``, ``error``, ``malformed``, ``latency``, or a
connection fault: ``reset``, ``reset_mid_body``, ``hang``, ``trickle``). Query parameters
that carry credentials (:data:`CREDENTIAL_PARAMS`) are recorded as ``"***"``; headers and
bodies are never recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["CREDENTIAL_PARAMS", "MASK", "RequestLog", "mask_query"]

MASK = "***"
#: Query parameters whose values are secrets (Last.fm ``api_key``, Discogs ``token``,
#: ``key``/``secret``, OAuth ``client_secret``/``access_token``).
CREDENTIAL_PARAMS = frozenset(
    {"api_key", "token", "client_secret", "access_token", "key", "secret", "api_sig", "sk"}
)


def mask_query(query: Mapping[str, list[str]]) -> dict[str, str | list[str]]:
    """Query parameters as recorded: one value as a string, several as a list; secrets masked."""
    out: dict[str, str | list[str]] = {}
    for name, values in query.items():
        shown = [MASK] * len(values) if name.lower() in CREDENTIAL_PARAMS else list(values)
        out[name] = shown[0] if len(shown) == 1 else shown
    return out


class RequestLog:
    """An append-only list of request records (see the module docstring)."""

    def __init__(self) -> None:
        self._records: list[dict[str, Any]] = []

    def add(self, record: dict[str, Any]) -> None:
        """Append one record."""
        self._records.append(record)

    def records(
        self, provider: str | None = None, since: float | None = None
    ) -> list[dict[str, Any]]:
        """Copies of the records, optionally of one provider and with ``t >= since``."""
        return [
            dict(r)
            for r in self._records
            if (provider is None or r["provider"] == provider)
            and (since is None or r["t"] >= since)
        ]

    def clear(self) -> None:
        """Forget every record."""
        self._records.clear()

    def __len__(self) -> int:
        return len(self._records)
