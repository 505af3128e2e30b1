"""Reading a catalog of tracks lazily: JSON Lines, CSV or a JSON list, one track at a time.

Each reader yields ``(line, track)`` for every good record and ``(line, BadLine)`` for every
bad one, *line* being the 1-based line of the file where the record starts. Nothing is read
ahead beyond one buffer (64 KiB; more only for a single record longer than that), so a file of
any length is read in bounded memory. A bad record never stops the reading.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

__all__ = ["FORMATS", "BadLine", "detect_format", "read_tracks"]

#: ``-a format=`` values.
FORMATS = ("jsonl", "csv", "json")
_CHUNK = 65536
#: A single record may take at most this many characters.
_MAX_RECORD = 16 * 1024 * 1024


@dataclass(frozen=True)
class BadLine:
    """Why a record was skipped (log-safe: the reason, never the line's text)."""

    reason: str


Row = tuple[int, "dict[str, Any] | BadLine"]


def detect_format(name: str, head: str) -> str:
    """The format of a file named *name* whose first characters are *head*: ``csv`` for a
    ``.csv`` name, ``json`` when the first non-blank character is ``[``, else ``jsonl``."""
    if name.lower().endswith((".csv", ".tsv")):
        return "csv"
    return "json" if head.lstrip().startswith("[") else "jsonl"


def read_tracks(
    stream: IO[str], fmt: str, input_fields: Mapping[str, str] | None = None
) -> Iterator[Row]:
    """Yield ``(line, track or BadLine)`` from *stream* in format *fmt* (see :data:`FORMATS`).

    With *input_fields* (``APIGW_INPUT_FIELDS``), a record with nothing to look up (no artist
    and title, no Spotify ID, no ISRC) is a :class:`BadLine` too.

    Raises:
        ValueError: an unknown *fmt*.
    """
    readers = {"jsonl": _jsonl, "csv": _csv, "json": _json_list}
    if fmt not in readers:
        raise ValueError(f"unknown input format {fmt!r}; known: {', '.join(FORMATS)}")
    for line, row in readers[fmt](stream):
        if input_fields is not None and isinstance(row, dict) and not _has_track(row, input_fields):
            row = BadLine("no artist and title, nor a spotify_id or an isrc")
        yield line, row


def _has_track(row: Mapping[str, Any], fields: Mapping[str, str]) -> bool:
    def given(name: str) -> bool:
        value = row.get(fields.get(name, name))
        return bool(value.strip()) if isinstance(value, str) else bool(value)

    return (given("artist") and given("title")) or given("spotify_id") or given("isrc")


def _object(value: Any) -> dict[str, Any] | BadLine:
    if isinstance(value, dict):
        return value
    return BadLine(f"a JSON {type(value).__name__}, not an object")


def _jsonl(stream: IO[str]) -> Iterator[Row]:
    for line, text in enumerate(stream, 1):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            yield line, BadLine(f"invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        yield line, _object(value)


def _csv(stream: IO[str]) -> Iterator[Row]:
    reader = csv.DictReader(stream)
    try:
        header = reader.fieldnames  # reads the first line
    except csv.Error as exc:
        yield 1, BadLine(f"invalid CSV header: {exc}")
        return
    if not header:
        return
    width = len(header)
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, BadLine(f"invalid CSV: {exc}")
            start = reader.line_num + 1
            continue
        line, start = start, reader.line_num + 1
        extra = row.pop(None, None)
        if extra is not None or any(value is None for value in row.values()):
            got = width + len(extra or ()) - sum(value is None for value in row.values())
            yield line, BadLine(f"{got} field(s), the header has {width}")
            continue
        yield line, {k: v for k, v in row.items() if v != ""}


def _json_list(stream: IO[str]) -> Iterator[Row]:
    """A JSON array of objects, decoded element by element (``raw_decode``) as the buffer
    fills. After an element that does not decode, reading resumes at the next line starting
    with ``{`` (or the closing ``]``), as in Scrapy's JSON feeds (one element per line)."""
    decoder = json.JSONDecoder()
    buf, pos, base_line, eof = "", 0, 1, False

    def more() -> bool:
        nonlocal buf, pos, base_line, eof
        if eof:
            return False
        chunk = stream.read(_CHUNK)
        if not chunk:
            eof = True
            return False
        if pos > _CHUNK:  # drop what was consumed, counting its lines
            base_line += buf.count("\n", 0, pos)
            buf, pos = buf[pos:], 0
        buf += chunk
        return True

    def line_at(offset: int) -> int:
        return base_line + buf.count("\n", 0, offset)

    def skip_blank() -> bool:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n,":
                pos += 1
            if pos < len(buf) or not more():
                return pos < len(buf)

    if not skip_blank():
        return
    if buf[pos] != "[":
        yield line_at(pos), BadLine("not a JSON list (no '[' first)")
        return
    pos += 1
    while skip_blank():
        if buf[pos] == "]":
            return
        start = pos
        try:
            value, end = decoder.raw_decode(buf, pos)
        except json.JSONDecodeError as exc:
            truncated = exc.pos >= len(buf) - 1 or exc.msg.startswith("Unterminated")
            if truncated and len(buf) - start < _MAX_RECORD and more():
                continue  # the element goes on in the next chunk
            yield line_at(start), BadLine(f"invalid JSON: {exc.msg}")
            pos = _resync(buf, max(exc.pos, start + 1))
            while pos >= len(buf) and more():
                pos = _resync(buf, max(0, pos - 1))
            continue
        pos = end
        yield line_at(start), _object(value)


def _resync(buf: str, offset: int) -> int:
    """The offset of the next line of *buf* after *offset* that starts with ``{`` or ``]``
    (blanks before it allowed), or ``len(buf)``."""
    while True:
        newline = buf.find("\n", offset)
        if newline < 0:
            return len(buf)
        offset = newline + 1
        stripped = buf[offset:].lstrip(" \t")
        if stripped[:1] in ("{", "]"):
            return len(buf) - len(stripped)
