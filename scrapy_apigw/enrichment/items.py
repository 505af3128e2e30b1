"""Reading a track from any item type, and writing enrichment back without losing anything.

Items are accessed through itemadapter, so dicts, ``scrapy.Item``, dataclasses, attrs and
pydantic items all work. An item class that does not declare an output field simply does not
get it (one warning per class and field set).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from itemadapter import ItemAdapter

from scrapy_apigw.core.scraped import split_artists, split_line, strip_label, unidentified
from scrapy_apigw.providers.base import TrackContext

logger = logging.getLogger(__name__)

_SPACE = re.compile(r"\s+")
#: item class -> undeclared fields already warned about (warn once per class, and again only
#: for a field not yet mentioned)
_warned: dict[type, set[str]] = {}


def clean_text(value: Any) -> str:
    """A printable, whitespace-collapsed string from a scraped value ('' for None/non-text).

    Control characters (category C*) are dropped: they are never part of a real name and some
    servers reject them in URLs. Those that are whitespace (tab, newline) separate words as a
    space does (``"Daft\tPunk"`` is ``"Daft Punk"``).
    """
    if not isinstance(value, str):
        return ""
    # A printable string has no C* character (str.isprintable): nothing to drop, and most
    # scraped values are; the per-character check is for the others.
    text = (
        value
        if value.isprintable()
        else "".join(
            " " if ch.isspace() else ch
            for ch in value
            if ch.isspace() or not unicodedata.category(ch).startswith("C")
        )
    )
    return _SPACE.sub(" ", text).strip()


def read_track(adapter: ItemAdapter, fields: Mapping[str, str]) -> TrackContext:
    """Build the lookup context from an item.

    Args:
        adapter: the item, adapted.
        fields: logical name (``artist``, ``title``, ``spotify_id``, ``isrc``) -> item field.

    ``artist`` may be a string or a list of strings (every credited artist); anything else
    counts as missing. Values that are not strings are ignored rather than guessed at.
    """
    raw_artist = adapter.get(fields["artist"])
    artists: tuple[str, ...]
    if isinstance(raw_artist, (list, tuple)):
        artists = tuple(a for a in (clean_text(x) for x in raw_artist) if a)
    else:
        single = clean_text(raw_artist)
        artists = (single,) if single else ()
    spotify_id = clean_text(adapter.get(fields["spotify_id"])) or None
    isrc = clean_text(adapter.get(fields["isrc"])) or None
    # DJ-tracklist spellings (core/scraped.py): "Artist - Title" in the title field alone,
    # "A vs B", "Title [Label]", "ID - ID". The item itself is never changed.
    artist, title = split_line(
        artists[0] if artists else "", clean_text(adapter.get(fields["title"]))
    )
    if not artists and artist:
        artists = (artist,)
    artists = tuple(name for credit in artists for name in split_artists(credit))
    return TrackContext(
        artist=artists[0] if artists else "",
        title=strip_label(title),
        artists=artists,
        spotify_id=spotify_id,
        isrc=isrc,
        unidentified=unidentified(artist, title),
    )


def write_fields(adapter: ItemAdapter, values: Mapping[str, Any]) -> None:
    """Set *values* on the item; fields the item class does not declare are left out.

    A value already present and non-empty on the item (scraped data, or an identifier given as
    input) is kept: enrichment fills gaps, it never overwrites what the spider scraped. The
    ``enrichment_*`` and ``enriched_at`` fields are the pipeline's own and always set.
    """
    rejected = []
    # The fields set on the item, read once: asking for an unset field of a scrapy.Item raises
    # (and catches) a KeyError, once per field written.
    present = set(adapter.keys())
    for name, value in values.items():
        own = name.startswith("enrich")
        if not own and name in present and adapter[name] not in (None, "", [], {}):
            continue
        try:
            adapter[name] = value
        except KeyError:
            rejected.append(name)
    warned = _warned.setdefault(type(adapter.item), set())
    new = set(rejected) - warned
    if new:
        warned.update(new)
        logger.warning(
            "apigw: %s does not declare field(s) %s: those enrichment values are not set "
            "(declare them to receive them)",
            type(adapter.item).__name__,
            ", ".join(sorted(new)),
        )
