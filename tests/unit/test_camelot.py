"""Camelot wheel <-> Spotify key/mode, both directions (PROVIDERS.md section 1, "Camelot wheel")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scrapy_apigw.core.camelot import camelot_from_spotify, key_name, spotify_from_camelot

# The 24 keys of the Camelot wheel: code, Spotify (key, mode), key name (ASCII sharps).
WHEEL = [
    ("1A", (8, 0), "G# minor"),
    ("2A", (3, 0), "D# minor"),
    ("3A", (10, 0), "A# minor"),
    ("4A", (5, 0), "F minor"),
    ("5A", (0, 0), "C minor"),
    ("6A", (7, 0), "G minor"),
    ("7A", (2, 0), "D minor"),
    ("8A", (9, 0), "A minor"),
    ("9A", (4, 0), "E minor"),
    ("10A", (11, 0), "B minor"),
    ("11A", (6, 0), "F# minor"),
    ("12A", (1, 0), "C# minor"),
    ("1B", (11, 1), "B major"),
    ("2B", (6, 1), "F# major"),
    ("3B", (1, 1), "C# major"),
    ("4B", (8, 1), "G# major"),
    ("5B", (3, 1), "D# major"),
    ("6B", (10, 1), "A# major"),
    ("7B", (5, 1), "F major"),
    ("8B", (0, 1), "C major"),
    ("9B", (7, 1), "G major"),
    ("10B", (2, 1), "D major"),
    ("11B", (9, 1), "A major"),
    ("12B", (4, 1), "E major"),
]

PROVIDERS_MD = Path(__file__).resolve().parents[2].parent / "shared" / "design" / "PROVIDERS.md"


@pytest.mark.parametrize(("code", "spotify", "name"), WHEEL)
def test_spotify_to_camelot_and_back_for_every_wheel_key(
    code: str, spotify: tuple[int, int], name: str
) -> None:
    assert camelot_from_spotify(*spotify) == code
    assert spotify_from_camelot(code) == spotify
    assert key_name(*spotify) == name


def test_wheel_covers_all_24_keys_once() -> None:
    assert len({c for c, _, _ in WHEEL}) == 24
    assert len({s for _, s, _ in WHEEL}) == 24


@pytest.mark.parametrize("key", range(12))
@pytest.mark.parametrize("mode", [0, 1])
def test_conversion_agrees_with_closed_form(key: int, mode: int) -> None:
    number = (7 * key + (8 if mode else 5)) % 12 or 12
    assert camelot_from_spotify(key, mode) == f"{number}{'B' if mode else 'A'}"
    assert spotify_from_camelot(f"{number}{'B' if mode else 'A'}") == (key, mode)


def test_conversion_agrees_with_the_table_in_providers_md() -> None:
    if not PROVIDERS_MD.exists():
        pytest.skip(f"{PROVIDERS_MD} absent: the design documents are not checked out")
    rows = re.findall(
        r"^\| (\d+) \| [^|]+\| \((\d+),(\d)\) \| [^|]+\| \((\d+),(\d)\) \|$",
        PROVIDERS_MD.read_text(encoding="utf-8"),
        flags=re.MULTILINE,
    )
    assert len(rows) == 12
    for number, minor_key, minor_mode, major_key, major_mode in rows:
        assert camelot_from_spotify(int(minor_key), int(minor_mode)) == f"{number}A"
        assert camelot_from_spotify(int(major_key), int(major_mode)) == f"{number}B"
        assert spotify_from_camelot(f"{number}A") == (int(minor_key), int(minor_mode))
        assert spotify_from_camelot(f"{number}B") == (int(major_key), int(major_mode))


def test_spotify_audio_features_fixture_key_5_mode_0_is_f_minor_4a() -> None:
    assert key_name(5, 0) == "F minor"
    assert camelot_from_spotify(5, 0) == "4A"


@pytest.mark.parametrize(("key", "mode"), [(-1, 0), (-1, 1), (12, 0), (3, 2), (3, -1), (True, 1)])
def test_no_key_detected_or_out_of_range_gives_none(key: int, mode: int) -> None:
    assert camelot_from_spotify(key, mode) is None
    assert key_name(key, mode) is None


@pytest.mark.parametrize("code", ["8a", " 8A ", "8A"])
def test_camelot_parsing_is_case_insensitive_and_trims(code: str) -> None:
    assert spotify_from_camelot(code) == (9, 0)


@pytest.mark.parametrize("code", ["", "0A", "13B", "8C", "A8", "8", "08A", "8AB", "eight A"])
def test_bad_camelot_code_raises_value_error(code: str) -> None:
    with pytest.raises(ValueError, match="Camelot"):
        spotify_from_camelot(code)


def test_non_string_camelot_code_raises_value_error() -> None:
    with pytest.raises(ValueError):
        spotify_from_camelot(8)  # type: ignore[arg-type]
