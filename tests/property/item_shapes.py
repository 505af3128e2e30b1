"""Scraped items of any shape: the input of the "no item is ever lost" runs.

One generator, :func:`make_item`, two sources of choices:

- :func:`items` wraps it as a Hypothesis strategy (``test_pipeline_property.py``; Hypothesis
  picks, and shrinks a failing item to a small one);
- :class:`RandomChooser` drives it from a seeded :class:`random.Random`
  (``bench/bench_items.py``: 100,000 items, the same ones for the same seed; drawing that many
  through Hypothesis would take about 15 ms each).

An item is a dict, a ``scrapy.Item``, a dataclass or an attrs instance (the item types of
``tests/integration/test_inputs_and_secrets.py``). Its input fields (``artist``, ``title``,
``spotify_id``, ``isrc``) are each missing, a real catalog value, junk (blank, control
characters, Lucene syntax, operators, unicode, longer than any query may be), arbitrary text, a
non-string (``None``, numbers, bytes, NaN, lists, nested dicts and tuples), or a list of those
for ``artist``. Dicts also get extra fields of any value, output field names included, and
some share huge values (a 10,000-element list, a 100,000-character string).

Provider traffic stays small and real: strings come from a small pool of the sandbox catalog
(:data:`POOL_SIZE` tracks: titles, artists, Spotify ids, ISRCs) and the fixed
:data:`JUNK_TEXTS`, arbitrary text only now and then (``free_text`` in :data:`STRING_WEIGHTS`
parts), so once the few hundred pairs have been seen nearly every lookup is a cache hit.
Arbitrary values without strings (numbers, bytes, nested lists...) may be in any input field.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

import attr
import scrapy
from hypothesis import strategies as st

from scrapy_apigw.sandbox.catalog import Catalog
from scrapy_apigw.sandbox.records import TrackRecord

__all__ = [
    "INPUT_NAMES",
    "JUNK_TEXTS",
    "POOL_SIZE",
    "Chooser",
    "Pool",
    "RandomChooser",
    "TrackAttrs",
    "TrackData",
    "TrackItem",
    "catalog_pool",
    "items",
    "make_item",
]

T = TypeVar("T")

#: Catalog tracks whose names and identifiers the items use.
POOL_SIZE = 8
#: The item fields the pipeline reads (its default ``APIGW_INPUT_FIELDS``).
INPUT_NAMES = ("artist", "title", "spotify_id", "isrc")

#: Strings that are not names: blank, control characters, Lucene syntax, operators, unicode,
#: longer than any query may be, identifiers of the wrong shape.
JUNK_TEXTS = (
    "",
    "   ",
    "\t\n\r\x00\x1f\x7f\u200b",
    "x" * 5000,
    "Daft Punk " * 300,
    'Title ( ) [ ] : " ! / - & \\ * ? ~ ^ {} || && +',
    "AND",
    "\\",
    "Röyksopp Ærø 坂本龍一 🎵",
    "NOT-A-REAL-ISRC",
)

#: Weights of a string input's sources: the pool, the junk, arbitrary text (per 100). Each
#: arbitrary text in a name means a lookup no cache has seen: four provider calls or so.
STRING_WEIGHTS = {"pool": 60, "junk": 39, "free_text": 1}

#: Huge values shared by many items (identity is what is checked, so sharing is fine).
_HUGE: tuple[Any, ...] = (
    list(range(10_000)),
    {"deep": [[[[["nested"] * 10] * 10] * 10]]},
    "y" * 100_000,
)
_FLOATS = (0.0, -0.0, 1.5, -1e308, float("inf"), float("-inf"), float("nan"))
# Characters arbitrary text is made of in the random chooser: ASCII, Lucene specials,
# whitespace and controls, accents, CJK, emoji (astral), combining marks, RTL.
_ALPHABET = (
    "abcXYZ019 .,;'_"
    '+-&|!(){}[]^"~*?:\\/'
    "\t\n\r\x00\x1f\x7f\x85\xa0\u2028\u3000\u200b\ufeff"
    "éÆøßİı坂本龍一🎵😀\U0001d11e\u0301\u0308ـعربي"
)


class Chooser(Protocol):
    """Where :func:`make_item` gets its choices from."""

    def pick(self, options: Sequence[T]) -> T:
        """One of *options* (repeat an option to make it likelier)."""
        ...

    def integer(self, low: int, high: int) -> int:
        """An int in ``[low, high]``."""
        ...

    def floating(self) -> float:
        """Any float, NaN and infinities included."""
        ...

    def text(self, max_size: int) -> str:
        """Any text of at most *max_size* code points (no surrogates)."""
        ...


class RandomChooser:
    """Choices from ``random.Random(seed)``: the same items for the same seed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def pick(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def floating(self) -> float:
        if self.rng.random() < 0.5:
            return self.pick(_FLOATS)
        return self.rng.uniform(-1e6, 1e6)

    def text(self, max_size: int) -> str:
        size = self.rng.randint(0, max_size)
        return "".join(self.rng.choice(_ALPHABET) for _ in range(size))


class _HypothesisChooser:
    """Choices drawn by Hypothesis (inside :func:`st.composite`)."""

    def __init__(self, draw: Any) -> None:
        self.draw = draw

    def pick(self, options: Sequence[T]) -> T:
        return self.draw(st.sampled_from(options))

    def integer(self, low: int, high: int) -> int:
        return self.draw(st.integers(low, high))

    def floating(self) -> float:
        return self.draw(st.floats())

    def text(self, max_size: int) -> str:
        return self.draw(st.text(max_size=max_size))


@dataclasses.dataclass(frozen=True)
class Pool:
    """The catalog values the items draw from."""

    tracks: tuple[TrackRecord, ...]

    @property
    def artists(self) -> list[str]:
        return sorted({a for t in self.tracks for a in t.artists})

    @property
    def titles(self) -> list[str]:
        return [t.title for t in self.tracks]

    @property
    def spotify_ids(self) -> list[str]:
        return [t.spotify.id for t in self.tracks]

    @property
    def isrcs(self) -> list[str]:
        return [t.isrc for t in self.tracks]


def catalog_pool(size: int = POOL_SIZE) -> Pool:
    """*size* tracks spread over the default sandbox catalog (the same ones every time)."""
    tracks = list(Catalog.load())
    step = max(1, len(tracks) // size)
    return Pool(tuple(tracks[::step][:size]))


class TrackItem(scrapy.Item):
    """A declared item: fields it does not declare are not set (and nothing is lost)."""

    artist = scrapy.Field()
    title = scrapy.Field()
    spotify_id = scrapy.Field()
    isrc = scrapy.Field()
    enrichment_status = scrapy.Field()
    enrichment_errors = scrapy.Field()


@dataclasses.dataclass
class TrackData:
    """A dataclass item; its types are not enforced, so any value can be given."""

    artist: Any = None
    title: Any = None
    spotify_id: Any = None
    isrc: Any = None
    enrichment_status: Any = None
    bpm: Any = None


@attr.s(auto_attribs=True)
class TrackAttrs:
    """An attrs item (no ``spotify_id`` field)."""

    artist: Any = None
    title: Any = None
    isrc: Any = None
    enrichment_status: Any = None
    musicbrainz_id: Any = None


def any_value(c: Chooser, depth: int = 0, strings: bool = True) -> Any:
    """A JSON-like value (and bytes, tuples, NaN), nested at most 3 deep.

    With ``strings=False`` it holds no str at any depth (for input fields: a string there is a
    name to look up, and names come from :func:`_string`).
    """
    kind = c.integer(0, 9 if depth < 3 else 6)
    if kind == 0 or (kind in (5, 6) and not strings):
        return None
    if kind == 1:
        return c.pick((True, False))
    if kind == 2:
        return c.integer(-(2**70), 2**70)
    if kind == 3:
        return c.floating()
    if kind == 4:
        return c.text(8).encode("utf-8")
    if kind in (5, 6):
        return c.text(12)
    if kind == 7:
        return [any_value(c, depth + 1, strings) for _ in range(c.integer(0, 3))]
    if kind == 8:
        return (any_value(c, depth + 1, strings), any_value(c, depth + 1, strings))
    keys = (c.text(6) for _ in range(c.integer(0, 3)))
    return {key: any_value(c, depth + 1, strings) for key in keys}


def _string(c: Chooser, pool_values: Sequence[str], free_text: int) -> str:
    source = c.pick(
        ["pool"] * STRING_WEIGHTS["pool"]
        + ["junk"] * STRING_WEIGHTS["junk"]
        + ["free_text"] * free_text
    )
    if source == "pool":
        return c.pick(pool_values)
    if source == "junk":
        return c.pick(JUNK_TEXTS)
    return c.text(40)


def _input(c: Chooser, pool_values: Sequence[str], free_text: int) -> Any:
    """An input field's value: mostly strings, else any value without strings."""
    if c.integer(0, 3):
        return _string(c, pool_values, free_text)
    return any_value(c, strings=False)


def _artist_list(c: Chooser, pool: Pool) -> list[Any]:
    """A list given as ``artist``: names (few, so few distinct lookups), blanks, non-strings."""
    names = [*pool.artists[:2], *JUNK_TEXTS[:4]]
    return [
        c.pick(names) if c.integer(0, 1) else any_value(c, strings=False)
        for _ in range(c.integer(0, 2))
    ]


def _known_track(c: Chooser, pool: Pool) -> dict[str, Any]:
    """A real catalog pair (artist as credit, first artist or list), maybe with its ids."""
    track = c.pick(pool.tracks)
    artist: Any = c.pick((track.credit, track.artists[0], list(track.artists)))
    fields: dict[str, Any] = {"artist": artist, "title": track.title}
    if c.integer(0, 3) == 0:
        fields["spotify_id"] = track.spotify.id
    if c.integer(0, 3) == 0:
        fields["isrc"] = track.isrc
    return fields


def _any_fields(c: Chooser, pool: Pool, free_text: int) -> dict[str, Any]:
    """Each input field missing (one time in four) or holding anything."""
    sources = {
        "artist": pool.artists,
        "title": pool.titles,
        "spotify_id": pool.spotify_ids,
        "isrc": pool.isrcs,
    }
    fields: dict[str, Any] = {}
    for name, values in sources.items():
        if not c.integer(0, 3):
            continue
        if name == "artist" and c.integer(0, 4) == 0:
            fields[name] = _artist_list(c, pool)
        else:
            fields[name] = _input(c, values, free_text)
    return fields


def make_item(c: Chooser, pool: Pool, free_text: int = STRING_WEIGHTS["free_text"]) -> Any:
    """One item of any shape (see the module docstring): half known tracks, half anything.

    Args:
        c: the source of choices.
        pool: the catalog values to use.
        free_text: weight (per about 100) of arbitrary text among string inputs.
    """
    fields = _known_track(c, pool) if c.integer(0, 1) else _any_fields(c, pool, free_text)
    container = c.pick(("dict", "dict", "scrapy.Item", "dataclass", "attrs"))
    if container == "dict":
        extra: dict[str, Any] = {}
        for _ in range(c.integer(0, 2)):
            name = c.pick(("n", "url", "bpm", "label", "enrichment_status", "")) or c.text(10)
            extra[name] = c.pick(_HUGE) if c.integer(0, 9) == 0 else any_value(c)
        return {**extra, **fields}
    if container == "scrapy.Item":
        return TrackItem(**fields)
    if container == "dataclass":
        return TrackData(**fields)
    return TrackAttrs(**{k: v for k, v in fields.items() if k != "spotify_id"})


def items(pool: Pool, free_text: int = STRING_WEIGHTS["free_text"]) -> st.SearchStrategy[Any]:
    """:func:`make_item` as a Hypothesis strategy."""

    @st.composite
    def strategy(draw: Any) -> Any:
        return make_item(_HypothesisChooser(draw), pool, free_text)

    return strategy()
