"""Cross-checks between providers (enrichment/crosscheck.py) and what the item says of them
(``enrichment_match``, ``enrichment_conflicts``, ``enrichment_skip_reason``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted
from itemadapter import ItemAdapter

from scrapy_apigw.enrichment.crosscheck import cross_check
from scrapy_apigw.enrichment.items import read_track
from scrapy_apigw.enrichment.waterfall import Waterfall
from scrapy_apigw.providers.base import ApiAnswer, ProviderResult, TrackContext
from scrapy_apigw.providers.spotify import SpotifyClient

FIELDS = {"artist": "artist", "title": "title", "spotify_id": "spotify_id", "isrc": "isrc"}


class Named:
    """A client stand-in: the waterfall's verdict only needs the names, in order."""

    def __init__(self, name: str) -> None:
        self.name = name


def ok(by: str, isrcs: list[str] | None = None, duration: int | None = None, **fields):
    evidence: dict = {}
    if isrcs is not None:
        evidence["isrcs"] = isrcs
    if duration is not None:
        evidence["duration_ms"] = duration
    return ProviderResult("ok", fields, match={"confidence": 0.9, "by": by}, evidence=evidence)


def test_agreeing_providers_have_no_conflict() -> None:
    results = {
        "spotify": ok("search", ["GBAAA9900303"], 289000),
        "musicbrainz": ok("search", ["GBAAA9900303", "GBAAA9900304"], 290500),
    }
    assert cross_check(results) == ([], {})


def test_isrc_and_duration_disagreements_are_listed() -> None:
    results = {
        "spotify": ok("search", ["GBAAA9900303"], 289000),
        "musicbrainz": ok("search", ["GBAAA9900999"], 295001),
    }
    conflicts, withheld = cross_check(results)
    assert conflicts == [
        {
            "field": "isrc",
            "providers": ["spotify", "musicbrainz"],
            "values": ["GBAAA9900303", "GBAAA9900999"],
        },
        {
            "field": "duration_ms",
            "providers": ["spotify", "musicbrainz"],
            "values": [289000, 295001],
        },
    ]
    assert withheld == {}  # both text searches: reported, both kept


def test_exactly_five_seconds_apart_is_no_conflict() -> None:
    results = {
        "spotify": ok("search", duration=289000),
        "musicbrainz": ok("search", duration=294000),
    }
    assert cross_check(results) == ([], {})


def test_the_identifier_lookup_wins_over_the_text_search_and_the_item_says_so() -> None:
    results = {
        "spotify": ok("search", ["GBAAA9900999"], 215000, spotify_id="x" * 22, isrc="GBAAA9900999"),
        "musicbrainz": ok("isrc", ["GBAAA9900303"], 289946, musicbrainz_id="mb-1"),
    }
    waterfall = Waterfall([Named("spotify"), Named("musicbrainz")], fetch=None)  # type: ignore[list-item]
    verdict = waterfall.verdict(results)
    assert verdict.fields == {"musicbrainz_id": "mb-1"}  # Spotify's fields withheld
    assert verdict.results["spotify"].status == "not_found"
    assert verdict.results["spotify"].reason == "disagrees with musicbrainz (isrc)"
    assert verdict.status == "completed"
    item = verdict.item_fields()
    assert item["enrichment_match"] == {
        "spotify": {"confidence": 0.9, "by": "search", "withheld": True},
        "musicbrainz": {"confidence": 0.9, "by": "isrc"},
    }
    assert item["enrichment_conflicts"] == [
        {"field": "isrc", "providers": ["spotify", "musicbrainz"],
         "values": ["GBAAA9900999", "GBAAA9900303"]},
        {"field": "duration_ms", "providers": ["spotify", "musicbrainz"],
         "values": [215000, 289946]},
    ]  # fmt: skip
    assert item["enrichment_sources"] == ["musicbrainz"]


def test_a_lookup_by_an_isrc_an_earlier_provider_found_is_not_preferred() -> None:
    results = {
        "spotify": ok("search", ["GBAAA9900303"], 215000, spotify_id="x" * 22),
        "musicbrainz": ProviderResult(
            "ok",
            {"musicbrainz_id": "mb-1"},
            match={"confidence": 0.9, "by": "isrc", "via": "spotify"},
            evidence={"isrcs": ["GBAAA9900303"], "duration_ms": 289946},
        ),
    }
    conflicts, withheld = cross_check(results)
    assert [c["field"] for c in conflicts] == ["duration_ms"]
    assert withheld == {}


def test_no_match_no_enrichment_match_field() -> None:
    waterfall = Waterfall([Named("spotify")], fetch=None)  # type: ignore[list-item]
    item = waterfall.verdict({"spotify": ProviderResult("not_found")}).item_fields()
    assert "enrichment_match" not in item and "enrichment_conflicts" not in item


def test_spotify_match_by_id_and_by_isrc_is_the_identifiers() -> None:
    client = SpotifyClient()
    answer = ApiAnswer("ok", 200, {"tracks": {"items": [{"id": "4" * 22, "name": "Strobe"}]}})
    track = TrackContext(isrc="CA5KR0900037")
    assert client.pick(answer, track, by_isrc=True) == ({"id": "4" * 22, "name": "Strobe"}, 1.0)


@pytest.mark.parametrize(
    ("artist", "title", "expected"),
    [
        ("ID", "ID", ("ID", "ID", ("ID",), "unidentified track (ID - ID)")),
        ("deadmau5", "ID", ("deadmau5", "ID", ("deadmau5",), "unidentified title (ID)")),
        ("deadmau5 vs Kaskade", "Strobe [mau5trap]",
         ("deadmau5", "Strobe", ("deadmau5", "Kaskade"), None)),
        (None, "DEADMAU5 - Strobe (Original Mix)",
         ("DEADMAU5", "Strobe (Original Mix)", ("DEADMAU5",), None)),
    ],
)  # fmt: skip
def test_read_track_tidies_the_scraped_side_without_changing_the_item(artist, title, expected):
    item = {"artist": artist, "title": title}
    track = read_track(ItemAdapter(item), FIELDS)
    assert (track.artist, track.title, track.artists, track.unidentified) == expected
    assert item == {"artist": artist, "title": title}


def test_an_unidentified_track_has_no_query_unless_it_has_an_identifier() -> None:
    assert not TrackContext(artist="ID", title="ID", unidentified="x").has_query
    assert TrackContext(artist="ID", title="ID", unidentified="x", isrc="CA5KR0900037").has_query


def test_docs_list_the_new_fields() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "fields.md").read_text()
    for name in ("enrichment_match", "enrichment_conflicts", "enrichment_skip_reason"):
        assert f"`{name}`" in docs


class Seeing:
    name = "spotify"

    def __init__(self) -> None:
        self.seen: list[float] = []

    async def enrich(self, track, fetch):
        self.seen.append(track.min_confidence)
        return ProviderResult("not_found")


@pytest_twisted.ensureDeferred
async def test_the_waterfall_gives_the_clients_the_minimum_confidence():
    client = Seeing()
    await Waterfall([client], fetch=None, min_confidence=0.93).enrich(  # type: ignore[list-item]
        TrackContext(artist="a", title="t")
    )
    assert client.seen == [0.93]
