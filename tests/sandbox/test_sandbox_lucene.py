"""The server-side Lucene parser: MusicBrainz rejects what it cannot parse."""

from __future__ import annotations

import pytest

from scrapy_apigw.sandbox.catalog import Catalog
from scrapy_apigw.sandbox.lucene import (
    And,
    LuceneSyntaxError,
    Not,
    Or,
    SearchDoc,
    Term,
    escape,
    parse,
    score,
)
from scrapy_apigw.sandbox.text import fold, tokens


@pytest.mark.parametrize(
    "query",
    [
        "foo-bar",  # unescaped '-' inside a term
        "recording:Strobe - Radio Edit",  # lone '-'
        "+foo",
        "foo*",
        "fo?",
        "foo~",
        "foo^2",
        "AC/DC",
        "!foo",
        "a[b",
        "a]b",
        "a{b",
        "a}b",
        'foo"bar',
        "a&&b",
        "a||b",
        "recording:a:b",
        ":foo",
        "recording:",
        '"unbalanced',
        'recording:"We Are \\"',
        "(foo",
        "foo)",
        "recording:(foo",
        "()",
        "foo AND",
        "AND foo",
        "foo OR",
        "NOT",
        "foo\\",
        "",
        "   ",
    ],
)
def test_invalid_queries_are_rejected(query: str) -> None:
    with pytest.raises(LuceneSyntaxError):
        parse(query)


@pytest.mark.parametrize(
    ("query", "tree"),
    [
        (
            'recording:"We Are The People \\(ARTBAT Remix\\)"',
            Term("recording", "We Are The People (ARTBAT Remix)", True),
        ),
        (
            "recording:We\\ Are\\ The\\ People\\ \\(ARTBAT\\ Remix\\)",
            Term("recording", "We Are The People (ARTBAT Remix)"),
        ),
        ('recording:"Say \\"Hello\\" \\\\ bye"', Term("recording", 'Say "Hello" \\ bye', True)),
        ('recording:"Strobe (Radio Edit)"', Term("recording", "Strobe (Radio Edit)", True)),
        (
            'recording:"Strobe" AND artist:"deadmau5"',
            And((Term("recording", "Strobe", True), Term("artist", "deadmau5", True))),
        ),
        ("a OR b c", Or((Term(None, "a"), Term(None, "b"), Term(None, "c")))),
        ("a && b || c", Or((And((Term(None, "a"), Term(None, "b"))), Term(None, "c")))),
        ("a AND NOT b", And((Term(None, "a"), Not(Term(None, "b"))))),
        ("recording:(a b)", Or((Term("recording", "a"), Term("recording", "b")))),
        ("isrc:GBAAA9900303", Term("isrc", "GBAAA9900303")),
        ("format:\\-", Term("format", "-")),
        ("and or", Or((Term(None, "and"), Term(None, "or")))),  # lower case: plain words
    ],
)
def test_valid_queries_parse(query: str, tree: object) -> None:
    assert parse(query) == tree


def test_every_catalog_title_survives_escaping() -> None:
    for track in Catalog.load():
        phrase = track.title.replace("\\", "\\\\").replace('"', '\\"')
        assert parse(f'recording:"{phrase}"') == Term("recording", track.title, True)
        bare = escape(track.title).replace(" ", "\\ ")
        assert parse(f"recording:{bare}") == Term("recording", track.title)
        assert parse(escape(track.title))  # escaped words, implicit OR: valid too


def _doc(title: str, artists: list[str]) -> SearchDoc:
    return SearchDoc(
        text={"recording": [tokens(title)], "artist": [tokens(a) for a in artists]},
        raw={"recording": [fold(title)], "artist": [fold(a) for a in artists]},
        ids={"isrc": ["gbaaa9900303"]},
    )


def test_scoring() -> None:
    doc = _doc("Strobe (Radio Edit)", ["deadmau5"])
    assert score(parse('recording:"Strobe (Radio Edit)" AND artist:deadmau5'), doc) == 1.0
    partial = score(parse('recording:"Strobe" AND artist:deadmau5'), doc)
    assert 0 < partial < 1
    assert score(parse('recording:"Strobe" AND artist:"Eric Prydz"'), doc) == 0
    assert score(parse("recording:Strobe AND NOT artist:deadmau5"), doc) == 0
    assert score(parse('recording:"Radio Strobe"'), doc) == 0  # phrases keep word order
    assert score(parse("isrc:gbaaa9900303"), doc) == 1.0
    either = score(parse("strobe OR nothing"), doc)  # OR: matches, fewer matches score less
    assert 0 < either < score(parse("strobe OR radio"), doc)
    assert score(parse("Röyksopp"), _doc("Eple", ["Röyksopp"])) == 1.0
    assert score(parse("royksopp"), _doc("Eple", ["Röyksopp"])) == 1.0  # folded
    assert score(parse('artist:"\\!\\!\\!"'), _doc("Me and Giuliani", ["!!!"])) == 1.0
