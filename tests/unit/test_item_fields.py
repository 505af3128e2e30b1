"""Reading a track from an item and writing enrichment back (enrichment/items.py)."""

from __future__ import annotations

import dataclasses

import pytest
import scrapy
from itemadapter import ItemAdapter

from scrapy_apigw.enrichment.items import clean_text, read_track, write_fields
from scrapy_apigw.settings import DEFAULT_INPUT_FIELDS


class Track(scrapy.Item):
    artist = scrapy.Field()
    title = scrapy.Field()
    isrc = scrapy.Field()
    label = scrapy.Field()
    bpm = scrapy.Field()
    enrichment_status = scrapy.Field()


@dataclasses.dataclass
class TrackRecord:
    artist: str = ""
    title: str = ""
    label: str | None = None
    enrichment_status: str | None = None


def test_clean_text_drops_control_characters_and_collapses_whitespace() -> None:
    assert clean_text("  Daft\tPunk \n") == "Daft Punk"  # whitespace controls separate words
    assert clean_text("One\u200bMore\x00 Time") == "OneMore Time"  # Cf and Cc dropped
    assert clean_text("Sigur\u00a0Rós") == "Sigur Rós"  # a no-break space is a space
    assert clean_text("Röyksopp  -  Eple") == "Röyksopp - Eple"
    assert clean_text(None) == "" and clean_text(42) == ""


def test_a_track_is_read_from_a_scrapy_item_without_its_unset_fields() -> None:
    track = read_track(
        ItemAdapter(Track(artist="Faithless", title="Insomnia")), DEFAULT_INPUT_FIELDS
    )
    assert (track.artist, track.title, track.isrc, track.spotify_id) == (
        "Faithless",
        "Insomnia",
        None,
        None,
    )


def test_enrichment_fills_unset_and_empty_fields_and_keeps_scraped_ones() -> None:
    item = Track(artist="Faithless", title="Insomnia", label="", bpm=None, isrc="GBARL9500034")
    write_fields(
        ItemAdapter(item),
        {"label": "Cheeky", "bpm": 127, "isrc": "XX0000000000", "enrichment_status": "completed"},
    )
    # Empty and None scraped values are gaps; a scraped ISRC is kept as scraped.
    assert dict(item) == {
        "artist": "Faithless",
        "title": "Insomnia",
        "label": "Cheeky",
        "bpm": 127,
        "isrc": "GBARL9500034",
        "enrichment_status": "completed",
    }


def test_the_pipelines_own_fields_are_always_set() -> None:
    item = Track(artist="A", title="B", enrichment_status="skipped")
    write_fields(ItemAdapter(item), {"enrichment_status": "completed"})
    assert item["enrichment_status"] == "completed"


def test_fields_an_item_class_does_not_declare_are_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    record = TrackRecord(artist="Moby", title="Porcelain")
    write_fields(ItemAdapter(record), {"label": "Mute", "camelot_key": "8A"})
    assert record.label == "Mute"
    assert not hasattr(record, "camelot_key")
    assert "does not declare field(s) camelot_key" in caplog.text


def test_a_dict_item_takes_every_field() -> None:
    item = {"artist": "Moby", "title": "Porcelain", "label": None}
    write_fields(ItemAdapter(item), {"label": "Mute", "bpm": 96})
    assert item == {"artist": "Moby", "title": "Porcelain", "label": "Mute", "bpm": 96}
