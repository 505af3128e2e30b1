"""Spotify key/mode <-> Camelot wheel codes and readable key names.

Spotify encodes a key as a pitch class ``key`` (0 = C, 1 = C#/Db, ..., 11 = B; -1 = no key detected)
and ``mode`` (1 = major, 0 = minor): OpenAPI ``Key``/``Mode`` schemas, PROVIDERS.md section 1.

The Camelot wheel numbers keys 1-12 around the circle of fifths, ``A`` for minor and ``B`` for major
(PROVIDERS.md, "Camelot wheel" table). One step of the wheel is a fifth, i.e. 7 semitones, which
gives the closed form used here (checked against the 24-row table in the tests)::

    major: n = (7 * key + 8) % 12, letter B
    minor: n = (7 * key + 5) % 12, letter A     (n == 0 is written 12)

and, since 7 * 7 = 49 = 1 (mod 12), its inverse ``key = 7 * (n - 8) % 12`` (B) or
``key = 7 * (n - 5) % 12`` (A).
"""

from __future__ import annotations

import re

__all__ = ["PITCH_CLASSES", "camelot_from_spotify", "key_name", "spotify_from_camelot"]

#: Pitch-class names, index = Spotify ``key``. ASCII sharps only (``"F#"``, never ``"Gb"`` or
#: ``"F♯"``), so values are stable, sortable and easy to type; Spotify's docs list the sharp first.
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")

_MODE_NAMES = {0: "minor", 1: "major"}
_CAMELOT_RE = re.compile(r"^(1[0-2]|[1-9])([AB])$")


def _valid(key: object, mode: object) -> bool:
    """True when *key* is a pitch class 0..11 and *mode* is 0 or 1 (bools rejected)."""
    return (
        isinstance(key, int)
        and not isinstance(key, bool)
        and isinstance(mode, int)
        and not isinstance(mode, bool)
        and 0 <= key <= 11
        and mode in (0, 1)
    )


def camelot_from_spotify(key: int, mode: int) -> str | None:
    """Return the Camelot code (``"8A"``, ``"12B"``) of a Spotify ``key``/``mode`` pair.

    Returns ``None`` for ``key == -1`` (Spotify: no key detected), a key outside 0..11, or a mode
    other than 0 (minor) / 1 (major).
    """
    if not _valid(key, mode):
        return None
    if mode == 1:
        number, letter = (7 * key + 8) % 12, "B"
    else:
        number, letter = (7 * key + 5) % 12, "A"
    return f"{number or 12}{letter}"


def key_name(key: int, mode: int) -> str | None:
    """Return a readable key name such as ``"A minor"``, ``"F# major"`` or ``"C# minor"``.

    Sharps are written with ASCII ``#`` and enharmonic flats are never used (``"G# minor"``, not
    ``"Ab minor"``). Returns ``None`` where :func:`camelot_from_spotify` does.
    """
    if not _valid(key, mode):
        return None
    return f"{PITCH_CLASSES[key]} {_MODE_NAMES[mode]}"


def spotify_from_camelot(code: str) -> tuple[int, int]:
    """Return the Spotify ``(key, mode)`` pair of a Camelot code (``"4a"`` -> ``(5, 0)``).

    Case-insensitive; surrounding whitespace is ignored.

    Raises:
        ValueError: *code* is not a number 1..12 followed by ``A`` or ``B``.
    """
    match = _CAMELOT_RE.match(code.strip().upper()) if isinstance(code, str) else None
    if match is None:
        raise ValueError(f"not a Camelot code: {code!r} (expected 1A..12A or 1B..12B)")
    number, letter = int(match.group(1)), match.group(2)
    if letter == "B":
        return 7 * (number - 8) % 12, 1
    return 7 * (number - 5) % 12, 0
