"""Match-quality scoring: exact counts on constructed items, on the sandbox's own tiny decoy
catalog, and on the real recorded search answers of ``../shared/fixtures``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fixtures_sandbox import load_shared_fixture

from scrapy_apigw.sandbox.catalog import Catalog
from scrapy_apigw.sandbox.config import SandboxConfig
from scrapy_apigw.sandbox.recorded import (
    RECORDED_CASES,
    candidate_ids,
    first_candidate,
    score_recorded,
)
from scrapy_apigw.sandbox.scoring import breakdown, format_table, item_key, score_items
from scrapy_apigw.sandbox.site import build_tracklists
from scrapy_apigw.sandbox.spotify import Spotify
from scrapy_apigw.sandbox.truth import ground_truth

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
URL = "http://127.0.0.1:1/site/tracklists/"


def truth_row(position: int, **ids: Any) -> dict[str, Any]:
    row = {
        "tracklist": 1, "position": position, "findable": bool(ids), "spotify_id": None,
        "isrc": None, "musicbrainz_id": None, "discogs_id": None, "lastfm_listeners": None,
    }  # fmt: skip
    row.update(ids)
    return row


def item(position: int, **fields: Any) -> dict[str, Any]:
    return {"tracklist_url": f"{URL}1", "position": position, **fields}


def test_counts_on_constructed_items() -> None:
    truth = [
        truth_row(1, spotify_id="S1", isrc="GBAAA0000001", discogs_id=11, lastfm_listeners=50),
        truth_row(2, spotify_id="S2", isrc="GBAAA0000002", discogs_id=None, lastfm_listeners=7),
        truth_row(3),  # "ID - ID": nothing to find
        truth_row(4, spotify_id="S4", isrc="GBAAA0000004", discogs_id=44, lastfm_listeners=9),
    ]
    items = [
        item(1, spotify_id="S1", isrc="gbaaa0000001", discogs_id=11, lastfm_listeners=50),
        item(2, spotify_id="DECOY", isrc="GBAAA0000002", discogs_id=22, lastfm_listeners=2),
        item(3, spotify_id="GUESS"),  # a value where nothing was findable: wrong
        item(4, isrc="", discogs_id="44"),  # an empty string is not filled; "44" == 44
        {"tracklist_url": f"{URL}9", "position": 1, "spotify_id": "X"},  # no truth row
    ]
    scores, unmatched = score_items(items, truth)
    assert unmatched == 1
    got = {p: (s.filled, s.correct, s.wrong, s.missed, s.findable) for p, s in scores.items()}
    assert got == {
        "spotify": (3, 1, 2, 1, 3),
        "isrc": (2, 2, 0, 1, 3),
        "musicbrainz": (0, 0, 0, 0, 0),
        "discogs": (3, 2, 1, 0, 2),
        "lastfm": (2, 1, 1, 1, 3),
    }
    assert scores["spotify"].wrong_match_rate == pytest.approx(2 / 3)
    assert scores["spotify"].recall == pytest.approx(1 / 3)
    assert scores["discogs"].recall == 1.0 and scores["musicbrainz"].recall == 0.0
    assert scores["isrc"].wrong_match_rate == 0.0 and not scores["isrc"].meets_targets()
    table = format_table(scores)
    assert "| spotify | `spotify_id` | 3 | 1 | 2 | 1 | 3 | 66.7 % | 33.3 % |" in table


def test_breakdown_names_the_decoy_family_and_the_row_style() -> None:
    truth = [
        {**truth_row(1, spotify_id="S1", musicbrainz_id="m1"), "style": None},
        {**truth_row(2, spotify_id="S2", musicbrainz_id="m2"), "style": "original_mix"},
        {**truth_row(3), "style": "id_id"},
        {**truth_row(4, spotify_id="S4", musicbrainz_id="m4"), "style": "label"},
    ]
    decoys = [
        {"family": "compilation", "spotify_id": "C1", "musicbrainz_recording_id": None},
        {"family": "isrc_shared", "spotify_id": None, "musicbrainz_recording_id": "X1"},
    ]
    items = [
        item(1, spotify_id="C1", musicbrainz_id="X1"),
        item(2, musicbrainz_id="m2"),
        item(3, spotify_id="S4"),  # another catalog track where nothing was findable
        item(4, spotify_id="S2"),  # another catalog track
    ]
    why = breakdown(items, truth, decoys)
    assert why["spotify"] == {
        "wrong": {"compilation": 1, "not findable": 1, "other": 1},
        "missed": {"original_mix": 1},
    }
    assert why["musicbrainz"] == {"wrong": {"isrc_shared": 1}, "missed": {"label": 1}}
    assert why["discogs"] == {"wrong": {}, "missed": {}}


def test_item_key() -> None:
    assert item_key(item(7)) == (1, 7)
    assert item_key({"tracklist_url": f"{URL}12?x=1", "position": 3}) == (12, 3)
    assert item_key({"tracklist_url": "http://x/other", "position": 3}) is None
    assert item_key({"tracklist_url": f"{URL}2", "position": "3"}) is None


def test_naive_first_result_on_the_tiny_decoy_catalog() -> None:
    """The real generator: Strobe, Hoppípolla, Do It Again and the 3 Cyrillic tracks with every
    decoy family; a matcher taking Spotify's first hit is wrong 4 times out of 6."""
    entries = [
        ("Strobe", ("deadmau5",), "progressive house"),
        ("Hoppípolla", ("Sigur Rós",), "ambient"),
        ("Do It Again", ("Röyksopp", "Robyn"), "electronica"),
    ]
    catalog = Catalog(entries, decoys=1.0)
    spotify = Spotify(catalog, SandboxConfig())
    tracklists = build_tracklists(catalog)
    truth = ground_truth(tracklists)
    assert [(r["artist"], r["title"], r["findable"]) for r in truth] == [
        ("Röyksopp & Robyn", "Do It Again", True), ("Кино", "Группа крови", True),
        ("Sigur Rós", "Hoppípolla", True), ("Земфира", "Искала", True),
        ("Мумий Тролль", "Владивосток 2000", True), ("ID", "ID", False),
        ("deadmau5", "Strobe", True),
    ]  # fmt: skip
    items = []
    for row in truth:
        found = spotify.search(f'track:"{row["title"]}" artist:"{row["artist"]}"')
        top = found[0] if found else None
        items.append(
            item(
                row["position"],
                spotify_id=top.spotify.id if top else None,
                isrc=top.isrc if top else None,
                chosen=top.decoy.family if top and top.decoy else None,
            )
        )
    assert [i["chosen"] for i in items] == [
        "compilation", "compilation", "transliteration", None, "compilation", None, None
    ]  # fmt: skip
    scores, unmatched = score_items(items, truth)
    assert unmatched == 0
    s, isrc = scores["spotify"], scores["isrc"]
    assert (s.filled, s.correct, s.wrong, s.missed, s.findable) == (6, 2, 4, 0, 6)
    # A compilation appearance shares the ISRC: the id is wrong, the ISRC still right.
    assert (isrc.filled, isrc.correct, isrc.wrong, isrc.missed, isrc.findable) == (6, 5, 1, 0, 6)


def _load(relative: str) -> Any:
    return load_shared_fixture(SHARED, relative)


def test_recorded_answers_first_candidate_baseline() -> None:
    scores, outcomes = score_recorded(first_candidate, _load)
    got = {p: (s.filled, s.correct, s.wrong, s.missed, s.findable) for p, s in scores.items()}
    assert got == {
        "spotify": (10, 2, 8, 0, 9),
        "musicbrainz": (1, 1, 0, 0, 1),
        "discogs": (4, 2, 2, 0, 3),
    }
    first = next(o for o in outcomes if o[0].title == "Lyckliga gatan" and o[0].true_ids)
    assert first[1:] == ("3q8WojYJVZsGClFGFBYdTc", "wrong")  # "Satan i gatan", ranked first


def test_recorded_answers_perfect_chooser() -> None:
    """A chooser that knows the answer scores 100 %: the cases' true ids are candidates."""
    truth = {(c.fixture, c.artist, c.title): c.true_ids for c in RECORDED_CASES}

    def oracle(provider: str, answer: Any, artist: str, title: str) -> str | None:
        ids = candidate_ids(provider, answer)
        right = [i for i in ids if i in truth[next(k for k in truth if k[1:] == (artist, title))]]
        return right[0] if right else None

    scores, outcomes = score_recorded(oracle, _load)
    assert all(s.recall == 1.0 and s.wrong == 0 for s in scores.values())
    assert [o[2] for o in outcomes].count("rejected") == 2
