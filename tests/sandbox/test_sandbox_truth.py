"""The messy tracklist site, the ground truth behind it, and the admin endpoint serving it."""

from __future__ import annotations

from collections import Counter

import pytest

from scrapy_apigw.sandbox.catalog import Catalog
from scrapy_apigw.sandbox.config import SandboxConfig
from scrapy_apigw.sandbox.dispatch import Dispatcher
from scrapy_apigw.sandbox.site import build_tracklists, display_artist
from scrapy_apigw.sandbox.text import ascii_spelling
from scrapy_apigw.sandbox.truth import TRUTH_FIELDS, ground_truth


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def test_messy_off_by_default_and_deterministic(catalog: Catalog) -> None:
    plain = build_tracklists(catalog)
    assert build_tracklists(catalog, 0.0) == plain
    assert all(row.style is None for t in plain for row in t.rows)
    assert build_tracklists(catalog, 0.3) == build_tracklists(catalog, 0.3)


def test_messy_styles_as_dj_tracklists_write_them(catalog: Catalog) -> None:
    lists = build_tracklists(catalog, 1.0)
    rows = [row for t in lists for row in t.rows if row.track is not None]
    assert Counter(row.style for row in rows) == {
        "casing": 116, "label": 84, "original_mix": 81, "spelling": 49, "id_id": 46,
        "vs": 21, "reordered": 18,
    }  # fmt: skip
    for row in rows:
        track = row.track
        assert track is not None
        if row.style == "original_mix":
            assert row.artist == display_artist(track)
            assert row.title == f"{track.title} (Original Mix)"
        elif row.style == "label":
            assert track.discogs is not None
            assert row.title == f"{track.title} [{track.discogs.label}]"
        elif row.style == "vs":
            assert row.artist == " vs ".join(track.artists)
        elif row.style == "reordered":
            assert row.artist == ", ".join((*track.artists[1:], track.artists[0]))
        elif row.style == "casing":
            assert row.artist in (display_artist(track).upper(), display_artist(track).lower())
        elif row.style == "spelling":
            credit = display_artist(track)
            assert row.artist in (ascii_spelling(credit), credit.replace(" & ", " and "))
            assert row.artist != credit
        else:
            assert (row.artist, row.title) == ("ID", "ID")
    sigur = next(r for r in rows if r.track is not None and r.track.title == "Hoppípolla")
    assert (sigur.artist, sigur.style) == ("Sigur Ros", "spelling")


def test_ground_truth_per_row(catalog: Catalog) -> None:
    lists = build_tracklists(catalog, 1.0)
    truth = ground_truth(lists)
    assert len(truth) == sum(len(t.rows) for t in lists)
    first = lists[0]
    for row, expected in zip(first.rows, truth, strict=False):
        assert (expected["tracklist"], expected["position"]) == (1, row.position)
        assert expected["path"] == "/site/tracklists/1"
    by_style = Counter((r["style"], r["findable"]) for r in truth if r["catalog_index"] is not None)
    assert by_style[("id_id", False)] == 46 and by_style[("id_id", True)] == 0
    bad = [r for r in truth if r["catalog_index"] is None]  # the site's own bad rows
    assert bad and not any(r["findable"] for r in bad)
    assert all(r[f] is None for r in bad for f in TRUTH_FIELDS)
    track = next(t for t in catalog if t.title == "Strobe (Radio Edit)")
    row = next(r for r in truth if r["findable"] and r["catalog_index"] == track.index)
    assert row["spotify_id"] == track.spotify.id and row["isrc"] == track.isrc
    assert row["musicbrainz_id"] == track.musicbrainz.recording_id
    assert row["discogs_id"] == (track.discogs.release_id if track.discogs else None)
    assert row["lastfm_listeners"] == track.lastfm.listeners
    assert row["lastfm"]["artist"] == "deadmau5" and row["lastfm"]["title"] == "Strobe (Radio Edit)"
    missing = next(r for r in truth if r["findable"] and r["discogs_id"] is None)
    assert catalog.tracks[missing["catalog_index"]].discogs is None


def _admin(dispatcher: Dispatcher, path: str) -> object:
    delivery = dispatcher.handle("GET", f"/_sandbox/{path}", "", {}, b"", "http://sandbox")
    assert delivery.reply.status == 200
    return delivery.reply.json()


def test_admin_serves_truth_and_decoys() -> None:
    dispatcher = Dispatcher(SandboxConfig())  # the defaults: decoys 0.3, messy rows 0.3
    truth = _admin(dispatcher, "truth")
    assert isinstance(truth, dict) and truth["count"] == 441 == len(truth["rows"])
    assert sum(r["findable"] for r in truth["rows"]) == 407
    catalog = _admin(dispatcher, "catalog")
    assert isinstance(catalog, dict)
    assert catalog["count"] == 376 and len(catalog["decoys"]) == 901
    assert Counter(d["family"] for d in catalog["decoys"])["transliteration"] == 13
    health = _admin(dispatcher, "health")
    assert isinstance(health, dict) and health["decoys"] == 901
    plain = Dispatcher(SandboxConfig(decoys=0, messy_site=0))
    assert _admin(plain, "catalog")["decoys"] == []  # type: ignore[index]
    plain_truth = _admin(plain, "truth")
    assert isinstance(plain_truth, dict) and plain_truth["count"] == 438
