"""Tidying the scraped side of a match: DJ-tracklist spellings (pure, no I/O).

Tracklist sites write tracks the way DJs do:

- ``"Artist - Title (Original Mix)"`` in one field: split on the first `` - `` when there is no
  artist field (:func:`split_line`); ``"(Original Mix)"`` names the original, so the search
  query leaves it out (:func:`search_title`);
- ``"Title [Label]"``: a trailing square bracket naming no version and no guest is the record
  label, not part of the title (:func:`strip_label`);
- ``"Artist1 vs Artist2"``, ``"Artist1 x Artist2"``: both artists are credited
  (:func:`split_artists`);
- ``"ID - ID"``, ``"Artist - ID"``: an unidentified track (the DJ did not say), nothing to
  search (:func:`unidentified`);
- other casings (``"DEADMAU5"``): the matching folds case anyway.
"""

from __future__ import annotations

import re

from scrapy_apigw.core.confidence import _part_tags
from scrapy_apigw.core.matching import strip_featuring

__all__ = [
    "UNIDENTIFIED_NAMES",
    "search_title",
    "split_artists",
    "split_line",
    "strip_label",
    "unidentified",
]

#: Folded names a tracklist writes for an unidentified artist or title.
UNIDENTIFIED_NAMES = frozenset({"id", "?", "??", "???", "unknown", "unknown artist", "tba", "n/a"})

_TRAILING_SQUARE = re.compile(r"\s*\[([^\[\]]*)\]\s*$")
_FEAT = re.compile(r"^\s*(?:feat|ft|featuring|with)\b", re.IGNORECASE)
_VS = re.compile(r"\s+(?:[vV][sS]\.?|x)\s+")
_DASH = re.compile(r"\s[-–—]\s")
_ORIGINAL = re.compile(
    r"\s*(?:[(\[]\s*original(?:\s+(?:mix|version))?\s*[)\]]|\s[-–—]\s+original\s+(?:mix|version))"
    r"\s*$",
    re.IGNORECASE,
)


def strip_label(title: str) -> str:
    """*title* without a trailing ``[Label]``: ``"Strobe [mau5trap]"`` -> ``"Strobe"``;
    ``"Strobe [Radio Edit]"`` and ``"Strobe [feat. X]"`` are kept (a version, a guest)."""
    match = _TRAILING_SQUARE.search(title)
    if not match or _FEAT.match(match.group(1)) or _part_tags(match.group(1)) is not None:
        return title
    stripped = title[: match.start()].rstrip()
    return stripped or title


def search_title(title: str, keep_featuring: bool = False) -> str:
    """The title to put in a search query: no label bracket, no featured guests (providers
    credit them apart; kept with *keep_featuring*, for Last.fm, which keys tracks by their
    full names), no ``"(Original Mix)"`` (providers write the original plainly)."""
    text = strip_label(title) if keep_featuring else strip_featuring(strip_label(title))
    return _ORIGINAL.sub("", text).strip() or text


def split_artists(artist: str) -> tuple[str, ...]:
    """``"A vs B"`` / ``"A vs. B"`` / ``"A x B"`` -> ``("A", "B")``; any other credit ->
    ``(artist,)`` (``"Above & Beyond"`` is one act: "&" is not split here; an upper-case
    ``" X "`` is left alone, it may be part of a name)."""
    parts = tuple(p.strip() for p in _VS.split(artist) if p.strip())
    return parts or ((artist,) if artist else ())


def split_line(artist: str, title: str) -> tuple[str, str]:
    """``(artist, title)``: when *artist* is empty and *title* reads ``"Artist - Title"``, the
    two halves (first `` - ``); else both as given."""
    if artist or not _DASH.search(title):
        return artist, title
    left, right = _DASH.split(title, maxsplit=1)
    if not left.strip() or not right.strip():
        return artist, title
    return left.strip(), right.strip()


def _is_unknown(name: str) -> bool:
    return " ".join(name.casefold().split()) in UNIDENTIFIED_NAMES


def unidentified(artist: str, title: str) -> str | None:
    """Why a scraped track names no findable track, or None.

    ``("ID", "ID")`` -> ``"unidentified track (ID - ID)"``; ``("deadmau5", "ID")`` ->
    ``"unidentified title (ID)"``; ``("ID", "Strobe")`` -> ``"unidentified artist (ID)"``;
    ``("deadmau5", "ID (Remix)")`` too (a title that is ID plus a version).
    """
    title_base = re.sub(r"\s*[(\[][^()\[\]]*[)\]]\s*", " ", title).strip()
    bad_title = bool(title) and _is_unknown(title_base or title)
    bad_artist = bool(artist) and _is_unknown(artist)
    if bad_title and bad_artist:
        return "unidentified track (ID - ID)"
    if bad_title:
        return "unidentified title (ID)"
    if bad_artist:
        return "unidentified artist (ID)"
    return None
