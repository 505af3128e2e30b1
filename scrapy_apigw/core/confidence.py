"""Match confidence 0..1 of a provider's candidate for a scraped track (pure, no I/O).

A DJ cares that ``"Strobe (Club Edit)"`` is not ``"Strobe"``: a wrong BPM or key is worse than
none. :func:`confidence` therefore weighs five things:

- **title**: the base titles (version parts and featured guests removed), transliterated to
  ASCII (:func:`translit`: ``"Beyoncé"`` = ``"Beyonce"``, ``"Мумий Тролль"`` ~
  ``"Mumiy Troll"``), compared with ``fuzz.ratio``;
- **artists**: order-free and feat.-aware (``"A feat. B"`` = ``"A & B"`` = ``"B, A"``; a guest
  named in the candidate's title counts as credited), :func:`scrapy_apigw.core.matching.
  artist_score`;
- **version**: the set of version tags of each side (:func:`version_tags`): a remix (and by
  whom), ``radio``/``club``/``extended`` edits, ``live``, ``acoustic``, ``instrumental``,
  ``vip``, ``sped up``/``slowed``, ``dub``, ``demo``, ``atmos`` and ``mono`` mixes, ``clean``
  (censored) edits, ``cover`` (karaoke,
  tribute, "in the style of"). Different tags reject the candidate (confidence at most
  :data:`VERSION_MISMATCH_CAP`) unless the scraped side names that version. ``"(Original
  Mix)"``, ``"Single Version"``, ``"Album Version"`` name no version. A **remaster** is the same
  recording (the same performance and mix, re-mastered: MusicBrainz' recording guidelines keep
  remasters on the original recording, and its tempo and key are those of the original), so it
  is accepted, slightly behind the original (:data:`REMASTER_FACTOR`);
- **duration**, when both sides know it: within :data:`DURATION_TOLERANCE_S` seconds it costs
  nothing, then confidence falls (:func:`duration_factor`);
- **credits**: a candidate crediting an artist the scraped side does not name (a guest, a
  remixer not named in the title: :data:`EXTRA_ARTIST_FACTOR`), or not crediting one it names
  (:data:`MISSING_ARTIST_FACTOR`), is ranked behind the exact credit;
- **ISRC**, when both sides know it: agreement pulls the confidence towards 1, disagreement
  lowers it a little (one recording may carry several ISRCs, one per release).

A compilation appearance (Spotify ``album_type: compilation``, a MusicBrainz recording only on
``Compilation`` release groups) is the same recording, so it is a correct match for the
recording's identifiers, ranked just behind the original release (:data:`COMPILATION_FACTOR`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from anyascii import anyascii
from rapidfuzz import fuzz

from scrapy_apigw.core.matching import (
    _artist_parts,
    _collapse,
    _fold,
    artist_parts_score,
    main_parts,
    normalize_isrc,
)

__all__ = [
    "COMPILATION_FACTOR",
    "DEFAULT_MIN_CONFIDENCE",
    "DURATION_TOLERANCE_S",
    "EXTRA_ARTIST_FACTOR",
    "MISSING_ARTIST_FACTOR",
    "REMASTER_FACTOR",
    "UNKNOWN_NOTE_FACTOR",
    "VERSION_MISMATCH_CAP",
    "Candidate",
    "Wanted",
    "best_candidate",
    "confidence",
    "confidences",
    "duration_factor",
    "note_tags",
    "parse_title",
    "translit",
    "version_factor",
    "version_tags",
]

T = TypeVar("T")

#: Default of ``APIGW_MIN_MATCH_CONFIDENCE``: a candidate below is "not found". 0.8 keeps a
#: typo or punctuation difference in the title (ratio ~0.9), a missing guest credit and a
#: remaster (0.97) or compilation appearance (0.98), and rejects every other version (capped
#: at 0.4), another artist (the artist part, below 0.7, caps the score), another title (the
#: title part, below 0.85, caps it) and a duration more than ~12 s off (:func:`duration_factor`).
DEFAULT_MIN_CONFIDENCE = 0.8
#: Weights of title and artists in the base confidence (the title decides more: providers
#: write artist credits in more ways).
TITLE_WEIGHT = 0.6
ARTIST_WEIGHT = 0.4
#: Below this, the artist part alone is the confidence (a perfect title never makes up for
#: another artist).
COMPONENT_FLOOR = 0.7
#: Below this, the title part alone is the confidence: another song of the same artist never
#: makes it up with the artist (``"Gatan"`` vs ``"Gatan Upp"``: 0.71), while a typo or a
#: spelling difference stays above (``"Strobe"`` vs ``"Strob"``: 0.91).
TITLE_FLOOR = 0.85
#: Highest confidence of a candidate of another version than the scraped one.
VERSION_MISMATCH_CAP = 0.4
#: Artist part when only the first scraped artist is credited (``"A vs B"``, ``["A", "B"]``
#: against a candidate crediting A alone).
MAIN_ONLY_FACTOR = 0.9
#: Factor of a candidate crediting an artist the scraped track does not name (``"Title (feat.
#: G)"`` by A, G for a scraped ``"A - Title"``): often the same track (lists leave guests
#: out), so accepted alone (0.85) when nothing else is in doubt, but behind a plain credit, and
#: refused when the duration or the title also differ (a guest version is another recording).
EXTRA_ARTIST_FACTOR = 0.85
#: Factor of a candidate not crediting an artist the scraped side names (``"A vs B"`` against
#: a credit of A alone).
MISSING_ARTIST_FACTOR = 0.95
#: Factor of a remaster when the scraped title names none (or the other way round).
REMASTER_FACTOR = 0.97
#: Factor of a compilation appearance (same recording, the original release preferred).
COMPILATION_FACTOR = 0.98
#: Factor of a candidate whose version note (MusicBrainz ``disambiguation``) says something
#: this module cannot classify ("take 2", "1994 recording"): kept, behind a clean one.
UNKNOWN_NOTE_FACTOR = 0.9
#: Factor of an unnamed scraped remix (``"Song (Remix)"``) matched to a named one.
UNNAMED_REMIX_FACTOR = 0.9
#: Factor of an unmarked candidate taken for the wanted version by its length (see
#: :attr:`Candidate.marks_versions`).
UNMARKED_FACTOR = 0.9
#: Durations this close (seconds) are the same recording (providers round and trim silence:
#: the sandbox's own spread is under 2 s).
DURATION_TOLERANCE_S = 3.0
#: ISRC agreement keeps this share of the remaining doubt (confidence 0.9 -> 0.975).
ISRC_AGREE_DOUBT = 0.25
#: Factor of an ISRC disagreement.
ISRC_DISAGREE_FACTOR = 0.9

#: A bracketed guest: "(feat. X)", "[ft. X]", "(with X)" (Spotify), "(med X)" (Swedish,
#: Norwegian and Danish "with", as Spotify's Scandinavian credits write it).
_FEAT_BRACKET = re.compile(
    r"[(\[]\s*(?:feat|ft|featuring|with|med)\b\.?\s*([^)\]]*)[)\]]", re.IGNORECASE
)
_FEAT_INLINE = re.compile(
    r"\s+(?:feat|ft|featuring)\b\.?\s+(.*?)(?=\s[-–—]\s|[(\[]|$)", re.IGNORECASE
)
_BRACKET = re.compile(r"[(\[]([^()\[\]]*)[)\]]")
_DASH = re.compile(r"\s[-–—]\s")
_YEAR = re.compile(r"^(?:19|20)\d\d$")
_ARTIST_SPLIT = re.compile(r"\s*(?:,|&|\band\b|\bx\b|\bvs\b\.?)\s*", re.IGNORECASE)

_COVER_PHRASES = (
    "karaoke",
    "tribute",
    "in the style of",
    "made famous by",
    "originally performed by",
    "as performed by",
    "cover",
)
#: Words of a remix part (the other words name the remixer).
_REMIX_WORDS = frozenset(
    {"remix", "remixed", "rmx", "rework", "reworked", "refix", "flip", "bootleg", "mashup"}
)
#: Simple tags: word -> tag.
_WORD_TAGS = {
    "live": "live",
    "acoustic": "acoustic",
    "unplugged": "acoustic",
    "instrumental": "instrumental",
    "acapella": "acapella",
    "vip": "vip",
    "sped": "sped up",
    "nightcore": "sped up",
    "slowed": "slowed",
    "atmos": "atmos",
    "spatial": "atmos",
    "demo": "demo",
    "dub": "dub",
    "mono": "mono",
    "clean": "clean",
    "censored": "clean",
    "edited": "clean",
    "extended": "extended",
    "club": "club",
    "radio": "radio",
}
_REMASTER_WORDS = frozenset({"remaster", "remastered", "stereo"})
#: Words that make a bracket or `` - `` part a version part at all.
_VERSION_WORDS = (
    frozenset({"mix", "edit", "version"}) | _REMIX_WORDS | _REMASTER_WORDS | frozenset(_WORD_TAGS)
)
#: Words naming no version (the original, or a release's name for it).
_NEUTRAL = frozenset({"original", "album", "single", "main", "explicit", "lp", "full", "the"})
_DESCRIPTORS = _VERSION_WORDS | _NEUTRAL | {"short", "long", "re", "by", "s", "and", "speed", "up"}


@functools.lru_cache(maxsize=8192)
def translit(text: str) -> str:
    """*text* folded (NFKC, casefold, accents stripped) and transliterated to ASCII (anyascii).

    ``"Beyoncé"`` -> ``"beyonce"``, ``"Sigur Rós"`` -> ``"sigur ros"``, ``"Мумий Тролль"`` ->
    ``"mumiy troll'"``. For comparison only; output values keep the provider's spelling.
    """
    folded = _fold(text)
    return folded if folded.isascii() else anyascii(folded).casefold()


def _part_tags(part: str) -> frozenset[str] | None:
    """Version tags of one bracket or `` - `` part; ``frozenset()`` for a part naming the
    original (``"Original Mix"``); None when the part is no version (``"Overdrive"``)."""
    text = _collapse(translit(part))
    words = text.split()
    if any(phrase in f" {text} " for phrase in (f" {p} " for p in _COVER_PHRASES)):
        return frozenset({"cover"})
    sped = "speed up" in f" {text} " or "sped up" in f" {text} "
    if not sped and not any(w in _VERSION_WORDS for w in words):
        return None
    tags = {_WORD_TAGS[w] for w in words if w in _WORD_TAGS}
    if sped:
        tags.add("sped up")
    if any(w in _REMASTER_WORDS for w in words):
        tags.add("remaster")
    names = " ".join(w for w in words if w not in _DESCRIPTORS and not _YEAR.match(w))
    if any(w in _REMIX_WORDS for w in words):
        tags.add(f"remix:{names}")
    elif names and ("mix" in words or "edit" in words) and not tags:
        tags.add(f"remix:{names}")  # "ARTBAT Mix", "Dimitri Vegas Edit": someone's version
    elif "edit" in words and not tags:
        tags.add("radio")  # a bare "Edit" is the short edit
    return frozenset(tags)


@functools.lru_cache(maxsize=8192)
def parse_title(title: str) -> tuple[str, frozenset[str], tuple[str, ...]]:
    """``(base, version tags, featured guests)`` of a title, base in comparison form.

    ``"Strobe (Club Edit)"`` -> ``("strobe", {"club"}, ())``; ``"Titanium (feat. Sia) - Radio
    Edit"`` -> ``("titanium", {"radio"}, ("sia",))``; ``"Song (Original Mix)"`` ->
    ``("song", {}, ())``; ``"Gecko (Overdrive)"`` keeps ``"overdrive"`` in the base.
    """
    text = translit(title)
    guests = [g for m in _FEAT_BRACKET.finditer(text) for g in _split_names(m.group(1))]
    text = _FEAT_BRACKET.sub(" ", text)
    guests += [g for m in _FEAT_INLINE.finditer(text) for g in _split_names(m.group(1))]
    text = _FEAT_INLINE.sub("", text)
    tags: set[str] = set()

    def take(match: re.Match[str]) -> str:
        found = _part_tags(match.group(1))
        if found is None:
            return f" {match.group(1)} "
        tags.update(found)
        return " "

    parts = _DASH.split(_BRACKET.sub(take, text))
    base = [parts[0]]
    for part in parts[1:]:
        found = _part_tags(part)
        if found is None:
            base.append(part)
        else:
            tags.update(found)
    return _collapse(" ".join(base)), frozenset(tags), tuple(guests)


def _split_names(text: str) -> list[str]:
    return [n.strip() for n in _ARTIST_SPLIT.split(text) if n.strip()]


def version_tags(title: str) -> frozenset[str]:
    """The version tags of *title* (see :func:`parse_title`)."""
    return parse_title(title)[1]


def note_tags(note: str) -> frozenset[str]:
    """Version tags of a provider's version note (MusicBrainz ``disambiguation``).

    ``"live, 2003-07-12: Budokan"`` -> ``{"live"}``; ``"radio edit"`` -> ``{"radio"}``;
    ``""``, ``"single version"``, ``"explicit"``, ``"original mix"`` -> ``{}``; a note saying
    something else (``"take 2"``) -> ``{"other"}``.
    """
    text = _collapse(translit(note))
    if not text:
        return frozenset()
    tags = _part_tags(text)
    if tags is not None:
        return tags
    if all(w in _NEUTRAL for w in text.split()):
        return frozenset()
    return frozenset({"other"})


def version_factor(wanted: frozenset[str], found: frozenset[str]) -> float:
    """1.0 when *found* is the version *wanted*, 0.0 when it is another one, between for a
    remaster (:data:`REMASTER_FACTOR`), an unclassified note (:data:`UNKNOWN_NOTE_FACTOR`) or an
    unnamed wanted remix matched to a named one.

    Remixers are compared fuzzily (``ratio >= 85``: ``"remix:artbat"`` = ``"remix:art bat"``).
    """
    factor = 1.0
    if ("remaster" in wanted) != ("remaster" in found):
        factor *= REMASTER_FACTOR
    if "other" in found and "other" not in wanted:
        factor *= UNKNOWN_NOTE_FACTOR
    want = {t for t in wanted if t not in ("remaster", "other")}
    have = {t for t in found if t not in ("remaster", "other")}
    if {t for t in want if not t.startswith("remix:")} != {
        t for t in have if not t.startswith("remix:")
    }:
        return 0.0
    want_remix = sorted(t[6:] for t in want if t.startswith("remix:"))
    have_remix = sorted(t[6:] for t in have if t.startswith("remix:"))
    if len(want_remix) != len(have_remix):
        return 0.0
    for name in want_remix:
        if not name:  # "(Remix)": any one remix
            factor *= UNNAMED_REMIX_FACTOR
            continue
        if not any(other and fuzz.ratio(name, other) >= 85 for other in have_remix):
            return 0.0
    return factor


def duration_factor(wanted_ms: int | None, found_ms: int | None) -> float:
    """1.0 within :data:`DURATION_TOLERANCE_S` (3 s) or when either side is unknown, then 0.02
    less per second up to 10 s (0.86), then 0.02 per second more, never below 0.3.

    5 s -> 0.96, 10 s -> 0.86, 20 s -> 0.66, 60 s -> 0.3 (a radio edit of a 6-minute track).
    """
    if not wanted_ms or not found_ms or wanted_ms <= 0 or found_ms <= 0:
        return 1.0
    diff = abs(wanted_ms - found_ms) / 1000.0
    if diff <= DURATION_TOLERANCE_S:
        return 1.0
    return max(0.3, 1.0 - 0.02 * (diff - DURATION_TOLERANCE_S))


@dataclass(frozen=True)
class Wanted:
    """The scraped track (or what the waterfall knows of it).

    Attributes:
        title: scraped title (versions understood, see :func:`parse_title`).
        artists: credited artists (any order; ``"A feat. B"`` is split).
        duration_ms: duration in milliseconds when known (input, or an earlier provider).
        isrc: ISRC when known.
    """

    title: str
    artists: Sequence[str]
    duration_ms: int | None = None
    isrc: str | None = None


@dataclass(frozen=True)
class Candidate:
    """One provider candidate.

    Attributes:
        title: the provider's title (Spotify/Discogs put the version here).
        artists: the provider's credited artist names.
        duration_ms: its duration in milliseconds, when the provider gives one.
        isrcs: its ISRCs, when the provider gives them.
        notes: version notes outside the title (MusicBrainz ``disambiguation``; release-group
            secondary types turned into words, e.g. ``"live"``), see :func:`note_tags`.
        compilation: True for a compilation appearance (ranked behind the original release).
    """

    title: str
    artists: Sequence[str]
    duration_ms: int | None = None
    isrcs: Sequence[str] = ()
    notes: Sequence[str] = ()
    compilation: bool = False
    #: False for a provider that keeps titles clean and marks versions only "usually" in a note
    #: (MusicBrainz): a candidate with no version mark at all is then the wanted version when
    #: the durations agree (within :data:`DURATION_TOLERANCE_S`), at :data:`UNMARKED_FACTOR`.
    marks_versions: bool = True
    #: Release date of the candidate's release (ISO, reduced precision allowed): between
    #: equally confident candidates the earlier release (the original) is preferred.
    released: str | None = None


_COVER_ARTIST = re.compile(r"karaoke|tribute|various artists|cover band|in the style of", re.I)


@functools.lru_cache(maxsize=8192)
def _comparable(name: str) -> str:
    """*name* transliterated; a name of punctuation only (``"!!!"``), which would compare as
    nothing, as a word spelling its characters' code points instead."""
    text = translit(name)
    if _collapse(text):
        return text
    return "u" + "u".join(f"{ord(c):x}" for c in name.strip())


def _candidate_tags(candidate: Candidate) -> frozenset[str]:
    tags = set(parse_title(candidate.title)[1])
    for note in candidate.notes:
        tags |= note_tags(note)
    if any(_COVER_ARTIST.search(translit(a)) for a in candidate.artists):
        tags.add("cover")
    return frozenset(tags)


@dataclass(frozen=True)
class _WantedView:
    """What :func:`confidence` needs of a :class:`Wanted`, computed once per scraped track and
    reused for each of its candidates (a search answers up to ten)."""

    base: str  # the title's base, comparison form
    tags: frozenset[str]  # version tags, plus "cover" when the wanted artists are a cover act
    query: list[str]  # the artists' single names
    main: list[str]  # the same without featured guests
    first: tuple[list[str], list[str]] | None  # (query, main) of the first name alone, if several
    expected: list[str]  # every name the track credits: artists, remixers, title guests
    duration_ms: int | None
    isrc: str | None


def _view(wanted: Wanted) -> _WantedView:
    base, tags, guests = parse_title(wanted.title)
    names = [_comparable(a) for a in wanted.artists if a]
    query = _artist_parts(names)
    first = None
    if len(query) > 1:  # a guest or second act the provider does not credit costs a little
        first = (_artist_parts(query[:1]), main_parts(query[:1]))
    expected = _artist_parts(
        query
        + [name for tag in tags if tag.startswith("remix:") for name in [tag[6:]] if name]
        + [translit(g) for g in guests]
    )
    if any(_COVER_ARTIST.search(translit(a)) for a in wanted.artists):
        tags = tags | {"cover"}
    return _WantedView(
        base, tags, query, main_parts(names), first, expected, wanted.duration_ms,
        normalize_isrc(wanted.isrc),
    )


def confidence(wanted: Wanted, candidate: Candidate) -> float:
    """Confidence 0..1 that *candidate* is the scraped *wanted* track (module docstring).

    ``0.6 * title + 0.4 * artists`` (each 0..1), but at most the title part when it is below
    0.85 and at most the artist part when it is below 0.7;
    then at most 0.4 for another version, else times :func:`version_factor`,
    :func:`duration_factor` and the compilation factor; then the ISRC adjustment. Empty titles
    or artists give 0.
    """
    return _confidence(_view(wanted), candidate)


def confidences(wanted: Wanted, candidates: Iterable[Candidate]) -> list[float]:
    """:func:`confidence` of each candidate, in order, reading *wanted* once (a release's
    tracklist is a candidate per track)."""
    want = _view(wanted)
    return [_confidence(want, candidate) for candidate in candidates]


def _confidence(want: _WantedView, candidate: Candidate) -> float:
    have_base, _, guests = parse_title(candidate.title)
    if not want.base or not have_base:
        return 0.0
    title = fuzz.ratio(want.base, have_base) / 100.0
    credited = _artist_parts([_comparable(a) for a in candidate.artists] + list(guests))
    artists = artist_parts_score(want.query, want.main, credited) / 100.0
    if want.first is not None:
        alone = artist_parts_score(*want.first, credited) / 100.0
        artists = max(artists, MAIN_ONLY_FACTOR * alone)
    score = TITLE_WEIGHT * title + ARTIST_WEIGHT * artists
    if title < TITLE_FLOOR:
        score = min(score, title)
    if artists < COMPONENT_FLOOR:
        score = min(score, artists)
    have_tags = _candidate_tags(candidate)
    version = version_factor(want.tags, have_tags)
    if (
        version == 0.0
        and not candidate.marks_versions
        and not have_tags
        and "cover" not in want.tags
        and want.duration_ms
        and candidate.duration_ms
        and abs(want.duration_ms - candidate.duration_ms) <= DURATION_TOLERANCE_S * 1000
    ):
        version = UNMARKED_FACTOR  # no mark, but the wanted version's length
    if version == 0.0:
        return round(min(score, VERSION_MISMATCH_CAP), 4)
    score *= version * duration_factor(want.duration_ms, candidate.duration_ms)
    if candidate.compilation:
        score *= COMPILATION_FACTOR
    if artists >= COMPONENT_FLOOR:  # credits differ: the exact credit first
        if any(not any(fuzz.ratio(n, k) >= 85 for k in want.expected) for n in credited):
            score *= EXTRA_ARTIST_FACTOR
        elif any(not any(fuzz.ratio(n, h) >= 85 for h in credited) for n in want.expected):
            score *= MISSING_ARTIST_FACTOR
    isrcs = {code for code in (normalize_isrc(i) for i in candidate.isrcs) if code}
    if want.isrc and isrcs:
        if want.isrc in isrcs:
            score = 1.0 - (1.0 - score) * ISRC_AGREE_DOUBT
        else:
            score *= ISRC_DISAGREE_FACTOR
    return round(max(0.0, min(1.0, score)), 4)


def _spelling(wanted: Sequence[str], found: Sequence[str]) -> int:
    """1 when *found* spells the artists as the scraped side does, accents included, or keeps
    accents the scraped side lost (a plain-ASCII ``"Sigur Ros"`` is how lists write ``"Sigur
    Rós"``, while an ASCII credit next to the accented one is another act, a sound-alike);
    else 0."""
    want = " ".join(a.casefold() for a in wanted)
    have = " ".join(a.casefold() for a in found)
    if not want.isascii():
        return int(want == have)
    return int(not have.isascii())


def _earlier(released: str | None) -> str:
    """A tie-break key that is larger for an earlier date (unknown dates last)."""
    if not released or not released[:4].isdigit():
        return ""
    return "".join(chr(ord("9") - ord(c) + ord("0")) if c.isdigit() else c for c in released)


def best_candidate(
    items: Iterable[T],
    wanted: Wanted,
    describe: Callable[[T], Candidate],
    minimum: float = DEFAULT_MIN_CONFIDENCE,
) -> tuple[T, float] | None:
    """``(item, confidence)`` of the most confident item, or None when below *minimum*.

    *describe* turns a provider item into a :class:`Candidate`. Equal confidences are broken by
    the earlier release date when both candidates have one (see :attr:`Candidate.released`:
    the original release before a later compilation), after the artists' spelling
    (:func:`_spelling`), after
    the literal title similarity (case and accents folded, punctuation kept: ``"Gecko
    (Overdrive) [Radio Edit]"`` before ``"Gecko (Overdrive) - Radio Edit"``), then by the
    provider's order.
    """
    best: tuple[T, float, tuple[float, int, str]] | None = None
    literal = " ".join(translit(wanted.title).split())
    want = _view(wanted)
    for item in items:
        candidate = describe(item)
        score = _confidence(want, candidate)
        tie = (
            fuzz.ratio(literal, " ".join(translit(candidate.title).split())),
            _spelling(wanted.artists, candidate.artists),
            _earlier(candidate.released),
        )
        if best is None or (score, tie) > (best[1], best[2]):
            best = (item, score, tie)
    if best is None or best[1] < minimum:
        return None
    return best[0], best[1]
