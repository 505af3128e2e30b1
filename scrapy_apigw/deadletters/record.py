"""One dead letter: a track whose enrichment ended ``failed`` or ``partial``, kept to be replayed.

Pure data, no I/O: built by :class:`~scrapy_apigw.deadletters.queue.DeadLetterQueue`, stored by
the backends (:mod:`.store_redis`, :mod:`.store_file`), selected for replay by
:mod:`.schedule`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DeadLetter", "jsonable", "track_key"]

#: Item fields the pipeline writes about the enrichment itself: never part of the inputs.
_OWN_PREFIXES = ("enrichment_", "enriched_at")


def jsonable(value: Any) -> Any:
    """*value* as JSON can hold it: str/int/float/bool/None kept, lists and tuples as lists,
    mappings with str keys, anything else as its ``str()``."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    return str(value)


def item_inputs(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The scraped fields of an item as it reached the pipeline (JSON-able), without the
    pipeline's own ``enrichment_*`` / ``enriched_at`` and without empty values."""
    return {
        str(name): jsonable(value)
        for name, value in fields.items()
        if not str(name).startswith(_OWN_PREFIXES) and value not in (None, "", [], {})
    }


def track_key(inputs: Mapping[str, Any], input_fields: Mapping[str, str]) -> str:
    """The dead letter's identity: a hex SHA-1 (40 chars) of the track's input fields.

    Only ``artist``, ``title``, ``spotify_id`` and ``isrc`` (item field names from
    ``APIGW_INPUT_FIELDS``) count, so the same track scraped again, or replayed, updates the
    same record (its attempts grow) whatever else the item carries. Text is compared
    case-folded and whitespace-collapsed.
    """

    def norm(value: Any) -> Any:
        if isinstance(value, str):
            return " ".join(value.casefold().split())
        if isinstance(value, list):
            return [norm(v) for v in value]
        return value

    canonical = {
        logical: norm(inputs.get(item_field))
        for logical, item_field in sorted(input_fields.items())
    }
    blob = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()


@dataclass
class DeadLetter:
    """A track whose last enrichment attempt ended ``failed`` or ``partial``.

    Attributes:
        key: :func:`track_key` of :attr:`inputs`.
        inputs: the scraped fields of the item as it reached the pipeline (what a replay yields).
        status: ``failed`` (every provider failed) or ``partial`` (some did).
        errors: provider name -> why it failed (log-safe reasons, as in ``enrichment_errors``).
        attempts: enrichment attempts that ended failed or partial, this one included (>= 1).
        last_attempt: when the last attempt ended, epoch seconds (the queue's injected clock).
        first_attempt: when the first one ended, epoch seconds.
    """

    key: str
    inputs: dict[str, Any]
    status: str
    errors: dict[str, str] = field(default_factory=dict)
    attempts: int = 1
    last_attempt: float = 0.0
    first_attempt: float = 0.0

    def to_json(self) -> str:
        """One line of JSON (UTF-8 text, no newline)."""
        return json.dumps(
            {
                "key": self.key,
                "inputs": self.inputs,
                "status": self.status,
                "errors": self.errors,
                "attempts": self.attempts,
                "last_attempt": self.last_attempt,
                "first_attempt": self.first_attempt,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> DeadLetter:
        """Parse :meth:`to_json`'s output.

        Raises:
            ValueError: not JSON, or a field missing or of the wrong type.
        """
        data = json.loads(text)
        try:
            return cls(
                key=str(data["key"]),
                inputs=dict(data["inputs"]),
                status=str(data["status"]),
                errors={str(k): str(v) for k, v in dict(data.get("errors") or {}).items()},
                attempts=int(data.get("attempts", 1)),
                last_attempt=float(data.get("last_attempt", 0.0)),
                first_attempt=float(data.get("first_attempt", data.get("last_attempt", 0.0))),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a dead-letter record: {exc}") from None
