"""Lucene query building for the MusicBrainz search API (``/ws/2/recording?query=...``).

Rules from PROVIDERS.md section 2 ("Escaping") and the MusicBrainz search documentation:

- the specials ``+ - && || ! ( ) { } [ ] ^ " ~ * ? : \\ /`` are escaped with a backslash; like
  musicbrainzngs we escape every single special character with the regex
  ``([+\\-&|!(){}\\[\\]\\^"~*?:\\\\\\/])`` (so ``&&`` becomes ``\\&\\&``);
- values are searched as quoted phrases (``recording:"Strobe"``); inside a phrase only ``"`` and
  ``\\`` strictly need escaping, but escaping every special is harmless there and keeps one rule;
- operators (``AND``) must be upper case.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["DEFAULT_MAX_LENGTH", "build_query", "escape", "phrase"]

_SPECIALS = re.compile(r'([+\-&|!(){}\[\]\^"~*?:\\\/])')

#: Longest phrase content, in characters, before escaping.
DEFAULT_MAX_LENGTH = 200


def escape(text: str) -> str:
    """Backslash-escape every Lucene special character of *text*; other characters are kept.

    Non-ASCII text is left untouched (``"Röyksopp"`` stays ``"Röyksopp"``).
    """
    return _SPECIALS.sub(r"\\\1", text)


def phrase(text: str, max_length: int = DEFAULT_MAX_LENGTH) -> str:
    """Return *text* as a quoted Lucene phrase: ``"We Are The People \\(ARTBAT Remix\\)"``.

    Whitespace runs are collapsed to one space and the ends stripped, then the content is cut to
    *max_length* characters BEFORE escaping. Cutting first bounds the query whatever the input
    (escaping at most doubles it): scraped titles can be garbage thousands of characters long, and
    real servers answer ``414 URI Too Long`` to huge URLs - a refused request instead of a search.
    The cut is made between words: a phrase of the first whole words still finds the recording,
    a cut word would be another word and match nothing (Lucene phrases match whole terms). Only
    a first word longer than *max_length* is cut inside (such a "word" is garbage anyway).
    """
    collapsed = " ".join(text.split())
    kept = collapsed[:max_length]
    if len(collapsed) > max_length and collapsed[max_length] != " " and " " in kept:
        kept = kept[: kept.rindex(" ")]  # the cut fell inside a word: drop that word
    return f'"{escape(kept.rstrip())}"'


def build_query(fields: Sequence[tuple[str, str]], max_length: int = DEFAULT_MAX_LENGTH) -> str:
    """Join ``(field, value)`` pairs into ``field:"value" AND field:"value"``.

    Pairs whose value is empty or blank are skipped; field names are used as given (they are ours,
    e.g. ``recording``, ``artist``). Returns ``""`` when every value is empty.
    """
    return " AND ".join(
        f"{name}:{phrase(value, max_length)}" for name, value in fields if value and value.strip()
    )
