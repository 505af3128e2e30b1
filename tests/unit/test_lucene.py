"""Lucene escaping and query building for MusicBrainz search (PROVIDERS.md section 2)."""

from __future__ import annotations

import re

import pytest

from scrapy_apigw.core.lucene import build_query, escape, phrase

SPECIALS = list('+-&|!(){}[]^"~*?:\\/')


def unescape(text: str) -> str:
    """Reference unescaper: a backslash makes the next character literal."""
    return re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL)


@pytest.mark.parametrize("char", SPECIALS)
def test_every_lucene_special_is_backslash_escaped(char: str) -> None:
    assert escape(f"a{char}b") == f"a\\{char}b"


def test_double_operators_escape_each_character_like_musicbrainzngs() -> None:
    assert escape("a && b || c") == "a \\&\\& b \\|\\| c"


def test_plain_and_non_ascii_text_is_untouched() -> None:
    text = "Röyksopp Ærø Ünïcødé 坂本龍一 Björk . , ; ' @ # $ % = < > _"
    assert escape(text) == text


@pytest.mark.parametrize(
    "text",
    [
        'Say "Hello" (Club Mix) [Live]: Part 1/2 - A&B! ~x^2 {y}? *z* \\ end',
        "\\\\\\",
        "AC/DC - T.N.T.",
        "",
    ],
)
def test_escape_round_trips_through_a_reference_unescaper(text: str) -> None:
    assert unescape(escape(text)) == text


def test_phrase_quotes_escapes_and_collapses_whitespace() -> None:
    assert phrase('  We  Are\tThe\nPeople (ARTBAT "Remix")  ') == (
        '"We Are The People \\(ARTBAT \\"Remix\\"\\)"'
    )


def test_phrase_of_5000_chars_is_truncated_before_escaping() -> None:
    result = phrase("(" * 5000)
    # 200 characters kept, each escaped to 2, plus the quotes: the query stays bounded.
    assert result == '"' + "\\(" * 200 + '"'
    assert len(phrase("x" * 5000)) == 202


def test_phrase_truncation_respects_a_custom_max_length_and_strips_the_cut() -> None:
    assert phrase("abc def", max_length=4) == '"abc"'


def test_a_long_phrase_is_cut_between_words_never_inside_one() -> None:
    # Found by tests/property/test_lucene_property.py: the 200-character cut fell inside the last
    # word, and 199 zeros are another word than the title's 200 zeros: the search found nothing.
    assert phrase("0 " + "0" * 200) == '"0"'
    title = "Strobe (Radio Edit) " * 11  # 220 characters: the cut at 200 falls inside "Strobe"
    assert phrase(title) == '"' + "Strobe \\(Radio Edit\\) " * 9 + 'Strobe \\(Radio Edit\\)"'
    assert phrase("abcdef ghijkl", max_length=9) == '"abcdef"'
    assert phrase("abcdef ghijkl", max_length=7) == '"abcdef"'  # the cut is on the space
    # A first word longer than the limit has no word boundary to cut at: it is cut inside.
    assert phrase("abcdefghij klm", max_length=4) == '"abcd"'


def test_build_query_joins_fields_with_upper_case_and() -> None:
    assert build_query([("recording", "Strobe"), ("artist", "deadmau5")]) == (
        'recording:"Strobe" AND artist:"deadmau5"'
    )


def test_build_query_skips_empty_values() -> None:
    assert build_query([("recording", "Strobe"), ("artist", "  "), ("release", "")]) == (
        'recording:"Strobe"'
    )
    assert build_query([]) == ""


def test_build_query_escapes_titles_with_every_kind_of_punctuation() -> None:
    query = build_query(
        [("recording", 'Hold On (Part 1/2) [Edit]: "Live"! - A&B'), ("artist", "AC/DC")]
    )
    assert query == (
        'recording:"Hold On \\(Part 1\\/2\\) \\[Edit\\]\\: \\"Live\\"\\! \\- A\\&B"'
        ' AND artist:"AC\\/DC"'
    )
