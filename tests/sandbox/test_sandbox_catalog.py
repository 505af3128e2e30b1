"""The catalog and its deterministic provider records (no server involved)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from scrapy_apigw.sandbox.catalog import Catalog, CatalogError, load_entries
from scrapy_apigw.sandbox.records import derive_record, release_title_of

SPOTIFY_ID = re.compile(r"^[0-9A-Za-z]{22}$")
ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def test_default_catalog_is_large_and_varied(catalog: Catalog) -> None:
    assert len(catalog) >= 260
    names = [t.title + " " + " ".join(t.artists) for t in catalog]
    assert sum(not n.isascii() for n in names) >= 12
    titles = " ".join(t.title for t in catalog)
    for char in ":!/&[]\"'()-":
        assert char in titles, f"no title with {char!r}"
    assert any(" - " in t.title and "Mix" in t.title for t in catalog)
    assert all(t.genre for t in catalog)


def test_records_have_the_real_id_formats(catalog: Catalog) -> None:
    for track in catalog:
        assert SPOTIFY_ID.match(track.spotify.id)
        assert len(track.isrc) == 12 and ISRC.match(track.isrc)
        assert uuid.UUID(track.musicbrainz.recording_id).version == 5
        features = track.spotify.features
        assert -1 <= features.key <= 11 and features.mode in (0, 1)
        assert 3 <= features.time_signature <= 7
        assert track.spotify.release_date_precision in ("day", "month", "year")
    assert len({t.spotify.id for t in catalog}) == len(catalog)
    assert len({t.isrc for t in catalog}) == len(catalog)
    assert any(t.spotify.features.key == -1 for t in catalog)


def test_deliberate_gaps_stay_small(catalog: Catalog) -> None:
    n = len(catalog)
    no_discogs = sum(t.discogs is None for t in catalog)
    no_isrc = sum(not t.musicbrainz.isrc_listed for t in catalog)
    assert 0.03 * n <= no_discogs <= 0.05 * n
    assert 0.02 * n <= no_isrc <= 0.045 * n
    # "fully findable": every provider has it (an unlisted ISRC is still found by search)
    assert (n - no_discogs) / n >= 0.95


def test_records_are_pinned_across_runs_and_machines(catalog: Catalog) -> None:
    """Golden values: hashlib-derived, so a change here breaks every stored cache and test."""
    strobe = next(t for t in catalog if t.title == "Strobe (Radio Edit)")
    assert strobe.spotify.id == "6cFR82CPaM8AtXCGb1drL8"
    assert strobe.isrc == "DEMWH0666259"
    assert strobe.musicbrainz.recording_id == "8f3450e6-543b-55b3-bd2d-ebee2de4fa5a"
    assert strobe.discogs is not None and strobe.discogs.release_id == 9109960
    assert (strobe.spotify.features.key, strobe.spotify.features.tempo) == (5, 127.421)
    hoppipolla = next(t for t in catalog if t.title == "Hoppípolla")
    assert hoppipolla.spotify.id == "01G9GeRArtacAbSQJn5uG2"


def test_records_depend_on_the_track_only(catalog: Catalog) -> None:
    track = catalog.tracks[10]
    again = derive_record(99, track.title, track.artists, track.genre)
    assert again.spotify == track.spotify and again.discogs == track.discogs
    assert again.musicbrainz == track.musicbrainz and again.lastfm == track.lastfm
    shuffled = Catalog([(t.title, t.artists, t.genre) for t in reversed(catalog.tracks)])
    assert {t.spotify.id: t.isrc for t in shuffled} == {t.spotify.id: t.isrc for t in catalog}
    # case and accents of the input do not change the identity
    folded = derive_record(0, track.title.upper(), [a.upper() for a in track.artists], track.genre)
    assert folded.spotify.id == track.spotify.id


def test_load_entries_validates_and_deduplicates(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(
        json.dumps(
            [
                {"title": "One", "artists": ["A"], "genre": "house", "bpm": 120},
                {"title": "one", "artists": ["a"]},
                {"title": "Two", "artists": ["B", "C"]},
            ]
        )
    )
    assert load_entries(path) == [("One", ("A",), "house"), ("Two", ("B", "C"), "")]
    bad_cases = [
        ({"x": 1}, "JSON list"),
        ([{"artists": ["A"]}], "title"),
        ([{"title": "T", "artists": []}], "artists"),
        ([{"title": "T", "artists": [1]}], "artists"),
        ([{"title": "T", "artists": ["A"], "genre": 3}], "genre"),
        ([], "no tracks"),
    ]
    for data, message in bad_cases:
        path.write_text(json.dumps(data))
        with pytest.raises(CatalogError, match=message):
            load_entries(path)
    path.write_text("{not json")
    with pytest.raises(CatalogError, match="cannot read"):
        load_entries(path)


@pytest.mark.parametrize(
    ("title", "release"),
    [
        ("Strobe (Radio Edit)", "Strobe"),
        ("Losing It - Extended Mix", "Losing It"),
        ("Gecko (Overdrive) [Radio Edit]", "Gecko (Overdrive)"),
        ("Lady (Hear Me Tonight)", "Lady (Hear Me Tonight)"),
        ("Silence (Tiësto's In Search of Sunrise Remix)", "Silence"),
        ("Trans-Europe Express", "Trans-Europe Express"),
    ],
)
def test_release_title_drops_mix_names(title: str, release: str) -> None:
    assert release_title_of(title) == release
