"""Fuzzy matching of (title, artists) pairs across providers, built on rapidfuzz.

DJ track lists and provider catalogues write the same recording differently:
``"We Are The People (ARTBAT Remix)"`` (Beatport style) vs ``"We Are The People - ARTBAT Remix"``
(Spotify style), ``"Titanium (feat. Sia)"`` vs ``"Titanium"``, ``"Röyksopp"`` vs ``"Royksopp"``.
The functions here compare such strings; they never change what is stored (output values keep the
provider's spelling).

Scores are floats 0..100 (rapidfuzz scale). A candidate matches when :func:`match_score` reaches
the threshold (:data:`DEFAULT_THRESHOLD`, 80).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import TypeVar

from rapidfuzz import fuzz

__all__ = [
    "ARTIST_WEIGHT",
    "COMPONENT_FLOOR",
    "DEFAULT_THRESHOLD",
    "TITLE_WEIGHT",
    "VERSION_WEIGHT",
    "artist_parts_score",
    "artist_score",
    "best_match",
    "main_parts",
    "match_score",
    "normalize",
    "normalize_isrc",
    "primary_artist",
    "split_version",
    "strip_featuring",
    "title_score",
]

T = TypeVar("T")

#: Weights of :func:`match_score`: the title decides more than the artist credit, which providers
#: write in more ways (one string "A & B" vs a list, guests credited or not).
TITLE_WEIGHT = 0.6
ARTIST_WEIGHT = 0.4
#: Below this, a title or artist score alone caps :func:`match_score`, so a perfect title cannot
#: make up for a wrong artist (and the reverse).
COMPONENT_FLOOR = 70.0
#: Default acceptance threshold of :func:`best_match`.
DEFAULT_THRESHOLD = 80.0
#: Share of :func:`title_score` given to the version (remixer) when either title names one.
VERSION_WEIGHT = 0.5

# Letters NFKD does not decompose (``ø`` is not ``o`` + a combining mark); applied after casefold.
_FOLD = str.maketrans(
    {"ø": "o", "æ": "ae", "œ": "oe", "ð": "d", "đ": "d", "þ": "th", "ł": "l", "ı": "i"}
)
_FEAT_BRACKET = re.compile(r"[(\[]\s*(?:feat|ft|featuring|with)\b\.?[^)\]]*[)\]]", re.IGNORECASE)
_FEAT_INLINE = re.compile(r"\s+(?:feat|ft|featuring)\b\.?\s.*?(?=\s[-–—]\s|[(\[]|$)", re.IGNORECASE)
_BRACKET = re.compile(r"[(\[]([^()\[\]]*)[)\]]")
_DASH = re.compile(r"\s[-–—]\s")
_APOSTROPHES = re.compile(r"['’`´]")
_NON_WORD = re.compile(r"[\W_]+")
_YEAR = re.compile(r"^\d{4}$")
_ARTIST_SEPARATORS = re.compile(
    r"\s*(?:[,;/&+]|\b(?:feat|ft|vs)\b\.?|\b(?:featuring|and|with|x)\b)\s*", re.IGNORECASE
)
_ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$")

# Words that make a bracketed or " - " suffixed part a version of the song.
_REMIX_WORDS = frozenset(
    {"remix", "remixed", "rmx", "rework", "refix", "flip", "bootleg", "vip", "dub"}
)
_EDIT_WORDS = frozenset({"mix", "edit", "version", "remaster", "remastered", "instrumental"})
# Words describing an edit of the same recording: dropped when comparing versions.
_DESCRIPTORS = _EDIT_WORDS | {"original", "extended", "radio", "club", "re", "short", "long", "by"}
# Entries of the memo of each name normaliser below (pure functions of one string). A crawl
# compares the same few thousand names again and again (every item ranks the candidates of its
# searches, cached answers included), so memoising them makes a warm crawl several times
# faster; bounded, so memory does not grow with the number of items.
_MEMO_SIZE = 8192


@functools.lru_cache(maxsize=_MEMO_SIZE)
def _fold(text: str) -> str:
    """NFKC, casefold, then strip accents (NFKD minus combining marks) and fold ``ø æ œ ...``."""
    text = unicodedata.normalize("NFKC", text).casefold().translate(_FOLD)
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _collapse(text: str) -> str:
    """``&`` -> ``and``, apostrophes removed, other punctuation and whitespace runs -> one space."""
    text = _APOSTROPHES.sub("", text.replace("&", " and "))
    return _NON_WORD.sub(" ", text).strip()


def _version_identity(part: str) -> str | None:
    """Return who/what distinguishes a version part, ``""`` for a plain edit, None if no version.

    ``"ARTBAT Remix"`` -> ``"artbat"``; ``"VIP Mix"`` -> ``"vip"``; ``"Remix"`` -> ``"remix"``;
    ``"Original Mix"``, ``"Radio Edit"``, ``"Remastered 2011"`` -> ``""`` (same recording);
    ``"Live at Wembley"`` -> None (not a version part: it stays in the title).
    """
    words = _collapse(part).split()
    if not any(w in _REMIX_WORDS or w in _EDIT_WORDS for w in words):
        return None
    names = [
        w for w in words if w not in _DESCRIPTORS and w not in _REMIX_WORDS and not _YEAR.match(w)
    ]
    return " ".join(names or [w for w in words if w in _REMIX_WORDS])


@functools.lru_cache(maxsize=_MEMO_SIZE)
def _parse_title(text: str) -> tuple[str, str, str]:
    """Split a title into (base, version identity, version text), all folded and collapsed."""
    text = strip_featuring(_fold(text))
    identities: list[str] = []
    versions: list[str] = []

    def take(match: re.Match[str]) -> str:
        identity = _version_identity(match.group(1))
        if identity is None:
            return match.group(0)
        if identity:
            identities.append(identity)
            versions.append(match.group(1))
        return " "

    parts = _DASH.split(_BRACKET.sub(take, text))
    base = [parts[0]]
    for part in parts[1:]:
        identity = _version_identity(part)
        if identity is None:
            base.append(part)
        elif identity:
            identities.append(identity)
            versions.append(part)
    return _collapse(" ".join(base)), " ".join(identities), _collapse(" ".join(versions))


@functools.lru_cache(maxsize=_MEMO_SIZE)
def strip_featuring(text: str) -> str:
    """Remove featured-artist parts: ``"Titanium (feat. Sia)"`` -> ``"Titanium"``.

    Handles ``(feat. X)``, ``[ft. X]``, ``(featuring X)``, ``(with X)`` (Spotify's style) and an
    unbracketed ``feat. X`` up to a following `` - `` or bracket. Case is kept; whitespace is
    collapsed. Used to build search queries (MusicBrainz and Discogs credit guests separately).
    """
    text = _FEAT_INLINE.sub("", _FEAT_BRACKET.sub(" ", text))
    return " ".join(text.split())


def primary_artist(artist: str, artists: Sequence[str] = ()) -> str:
    """The artist string to search for: *artist* without featured guests, else ``artists[0]``."""
    return strip_featuring(artist) or (strip_featuring(artists[0]) if artists else "")


def normalize(text: str) -> str:
    """Return *text* in the comparison form (never for output).

    Steps: NFKC; casefold; accents stripped (``"Röyksopp"`` -> ``"royksopp"``, also ``ø`` ->
    ``o``); featured artists dropped (``"(feat. Sia)"``, ``" ft. Sia"``); version parts unified,
    so ``"(ARTBAT Remix)"``, ``"[ARTBAT Remix]"`` and ``" - ARTBAT Remix"`` all become
    ``"artbat remix"`` at the end; plain edits of the same recording dropped
    (``"(Original Mix)"``, ``" - Radio Edit"``, ``"(Extended Mix)"``, ``" - Remastered 2011"``);
    ``&`` -> ``and``; apostrophes removed; other punctuation and whitespace collapsed to single
    spaces.
    """
    base, _, version = _parse_title(text)
    return f"{base} {version}".strip()


def split_version(text: str) -> tuple[str, str]:
    """``(base title, version identity)`` of a title, both in the comparison form.

    ``"Song (ARTBAT Remix)"`` -> ``("song", "artbat")``; ``"Song - Original Mix"`` and ``"Song"``
    -> ``("song", "")`` (a plain edit is the same recording); ``"Song (Remixes)"`` ->
    ``("song remixes", "")`` ("remixes" names no version: it stays in the base).
    """
    base, identity, _ = _parse_title(text)
    return base, identity


def title_score(a: str, b: str) -> float:
    """Similarity 0..100 of two track titles, version-aware.

    The base titles (version parts removed) are compared with ``fuzz.ratio``. When either title
    names a version (a remixer, ``VIP``, ``Dub``...), that identity counts for
    :data:`VERSION_WEIGHT` (half) of the score and is compared without the words "remix"/"mix", so
    ``"(ARTBAT Remix)"`` vs ``"(Tale Of Us Remix)"`` scores ~62 and a remix vs the original 50,
    while the same remix written two ways scores 100. Empty titles score 0.
    """
    base_a, id_a, _ = _parse_title(a)
    base_b, id_b, _ = _parse_title(b)
    if not base_a or not base_b:
        return 0.0
    base = fuzz.ratio(base_a, base_b)
    if not id_a and not id_b:
        return base
    version = fuzz.ratio(id_a, id_b) if id_a and id_b else 0.0
    return (1 - VERSION_WEIGHT) * base + VERSION_WEIGHT * version


def _artist_parts(names: Sequence[str]) -> list[str]:
    """Split artist credits into single folded names (``"A feat. B & C"`` -> a, b, c)."""
    return [piece for name in names for piece in _name_parts(name)]


@functools.lru_cache(maxsize=_MEMO_SIZE)
def _name_parts(name: str) -> tuple[str, ...]:
    """The single folded names of one artist credit (see :func:`_artist_parts`)."""
    parts = []
    for piece in _ARTIST_SEPARATORS.split(_fold(name)):
        piece = _collapse(piece)
        if piece.startswith("the "):
            piece = piece[4:]
        if piece:
            parts.append(piece)
    return tuple(parts)


def artist_score(query_artists: Sequence[str], candidate_artists: Sequence[str]) -> float:
    """Similarity 0..100 of two artist credits.

    Both sides are split into single names on ``, ; / & + feat. ft. featuring vs x and with`` (the
    same way on both sides, so ``"Above & Beyond"`` still matches itself) and a leading "the" is
    dropped. The score is the highest of (a) how well every queried name is found among the
    candidate's names (mean of each name's best ``fuzz.ratio``: a candidate crediting extra guests
    is not penalised), (b) the same for the query without its featured guests (``"A feat. B"``
    matches a candidate crediting only A, who then names B in the title) and (c)
    ``fuzz.token_sort_ratio`` of the joined names (robust to splitting differences such as
    ``"Axwell Λ Ingrosso"``). Either side empty scores 0.
    """
    return artist_parts_score(
        _artist_parts(query_artists), main_parts(query_artists), _artist_parts(candidate_artists)
    )


def main_parts(query_artists: Sequence[str]) -> list[str]:
    """The single folded names of *query_artists* without their featured guests (``"A feat.
    B"`` -> a), or all of them when that leaves none: side (b) of :func:`artist_score`."""
    return _artist_parts([strip_featuring(name) for name in query_artists]) or _artist_parts(
        query_artists
    )


def artist_parts_score(
    query: Sequence[str], main: Sequence[str], candidate: Sequence[str]
) -> float:
    """:func:`artist_score` (0..100) from names already split by :func:`_artist_parts`: the
    query's names, the same without featured guests (:func:`main_parts`) and the candidate's.
    For a caller scoring one query against many candidates, which splits the query once."""
    if not query or not candidate:
        return 0.0

    def coverage(names: Sequence[str]) -> float:
        return sum(max(fuzz.ratio(n, c) for c in candidate) for n in names) / len(names)

    joined = fuzz.token_sort_ratio(" ".join(query), " ".join(candidate))
    best = max(coverage(query), joined)
    # Without featured guests the query is usually itself: scored once.
    return best if main == query else max(best, coverage(main))


def match_score(
    title: str,
    artists: Sequence[str],
    cand_title: str,
    cand_artists: Sequence[str],
) -> float:
    """Score 0..100 of a candidate (``cand_title`` by ``cand_artists``) for the queried track.

    ``TITLE_WEIGHT * title_score + ARTIST_WEIGHT * artist_score`` (0.6 / 0.4), except that when
    either part is below :data:`COMPONENT_FLOOR` (70) the score is that part: the same title by
    another artist, or another song by the same artist, can never reach the 80 threshold.
    """
    t = title_score(title, cand_title)
    a = artist_score(artists, cand_artists)
    if min(t, a) < COMPONENT_FLOOR:
        return min(t, a)
    return TITLE_WEIGHT * t + ARTIST_WEIGHT * a


def best_match(
    candidates: Sequence[T],
    title: str,
    artists: Sequence[str],
    get: Callable[[T], tuple[str, Sequence[str]]],
    threshold: float = DEFAULT_THRESHOLD,
) -> tuple[T, float] | None:
    """Return ``(candidate, score)`` of the best-scoring candidate, or None below *threshold*.

    *get* extracts ``(title, artists)`` from a candidate. Equal scores are broken by the literal
    title similarity (so ``"Lyckliga gatan"`` prefers ``"Lyckliga gatan"`` to the equally scored
    ``"Lyckliga gatan - Radio Edit"``), then by order (providers list their best guess first).
    """
    best: tuple[T, float, float] | None = None
    literal_title = _collapse(_fold(title))
    for candidate in candidates:
        cand_title, cand_artists = get(candidate)
        score = match_score(title, artists, cand_title, cand_artists)
        literal = fuzz.ratio(literal_title, _collapse(_fold(cand_title)))
        if best is None or (score, literal) > (best[1], best[2]):
            best = (candidate, score, literal)
    if best is None or best[1] < threshold:
        return None
    return best[0], best[1]


def normalize_isrc(value: object) -> str | None:
    """Return an ISRC in canonical form (``"GBSMU4566095"``), or None if *value* is not one.

    Upper-cases and removes hyphens and spaces (``"GB-SMU-45-66095"`` is how some catalogues print
    it), then checks ISO 3901's shape: 2-letter country, 3 alphanumeric registrant, 2-digit year,
    5-digit designation (``^[A-Z]{2}[A-Z0-9]{3}\\d{7}$``).
    """
    if not isinstance(value, str):
        return None
    code = value.upper().replace("-", "").replace(" ", "").strip()
    return code if _ISRC.match(code) else None
