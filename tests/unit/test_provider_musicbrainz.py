"""MusicBrainzClient: ISRC lookup, search fallback, Lucene query, classification.

Answered from real recorded MusicBrainz bodies (the server's own ISRC lookup JSON, Picard's
recording lookup, the transcribed 400/404/503 bodies); the fake fetch decides each answer's kind
with the client's own ``classify``, as the transport does.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from provider_harness import FakeFetch, enrich, load, routes

from scrapy_apigw.core.outcome import Outcome
from scrapy_apigw.exceptions import ProviderUnavailable
from scrapy_apigw.providers.base import ApiCall, ProviderResult, TrackContext
from scrapy_apigw.providers.musicbrainz import MusicBrainzClient

ISRC = "musicbrainz/TRANSCRIBED_mbserver_isrc_GBAAA9900303.json"
NOT_FOUND = "musicbrainz/TRANSCRIBED_error_404_not_found.json"
HEY_BOY = "bf7845cc-eac3-48a3-8b06-543b4b7ba117"
THINKING = "cb2cc207-8125-445c-9ef9-6ea44eee959a"


def search_body(*recordings: dict[str, Any], score: int = 100) -> dict[str, Any]:
    """A /recording search body (PROVIDERS.md shape) around recorded recording objects."""
    hits = [dict(copy.deepcopy(r), score=score) for r in recordings]
    return {"created": "2026-01-01T00:00:00Z", "count": len(hits), "offset": 0, "recordings": hits}


def test_isrc_lookup_builds_the_call_and_reads_mbid_and_first_release_date() -> None:
    client = MusicBrainzClient()
    fetch = FakeFetch(client, routes({"/isrc/GBAAA9900303": (200, load(ISRC))}))
    track = TrackContext(
        artist="The Chemical Brothers", title="Hey Boy Hey Girl", isrc="gb-aaa-99-00303"
    )
    result = enrich(client, track, fetch)
    assert fetch.calls == [
        ApiCall(
            "musicbrainz",
            "isrc",
            "/isrc/GBAAA9900303",
            (("inc", "artist-credits"), ("fmt", "json")),
        )
    ]
    # The ISRC was already known: MusicBrainz does not report it again.
    assert result == ProviderResult("ok", {"musicbrainz_id": HEY_BOY, "release_date": "1999-06-21"})
    assert track.musicbrainz_id == HEY_BOY


def test_isrc_mapping_to_several_recordings_picks_the_matching_one() -> None:
    client = MusicBrainzClient()
    body = copy.deepcopy(load(ISRC))
    body["recordings"].append(load("musicbrainz/picard_recording.json"))
    fetch = FakeFetch(client, routes({"/isrc/GBAAA9900303": (200, body)}))
    track = TrackContext(artist="Ed Sheeran", title="Thinking Out Loud", isrc="GBAAA9900303")
    assert enrich(client, track, fetch).fields["musicbrainz_id"] == THINKING


def test_isrc_mapping_to_several_recordings_without_a_match_takes_the_first() -> None:
    client = MusicBrainzClient()
    body = copy.deepcopy(load(ISRC))
    body["recordings"].append(load("musicbrainz/picard_recording.json"))
    fetch = FakeFetch(client, routes({"/isrc/GBAAA9900303": (200, body)}))
    track = TrackContext(isrc="GBAAA9900303")
    assert enrich(client, track, fetch).fields["musicbrainz_id"] == HEY_BOY


def test_unknown_isrc_404_falls_back_to_search() -> None:
    client = MusicBrainzClient()
    picard = load("musicbrainz/picard_recording.json")
    fetch = FakeFetch(
        client,
        routes(
            {"/isrc/GBAHS1499999": (404, load(NOT_FOUND)), "/recording": (200, search_body(picard))}
        ),
    )
    track = TrackContext(artist="Ed Sheeran", title="Thinking Out Loud", isrc="GBAHS1499999")
    result = enrich(client, track, fetch)
    assert [c.path for c in fetch.calls] == ["/isrc/GBAHS1499999", "/recording"]
    assert result.fields == {"musicbrainz_id": THINKING, "release_date": "2014-06-20"}


def test_search_builds_the_lucene_query_and_reports_the_isrc_when_none_was_known() -> None:
    client = MusicBrainzClient(search_limit=3)
    picard = load("musicbrainz/picard_recording.json")
    fetch = FakeFetch(client, routes({"/recording": (200, search_body(picard))}))
    track = TrackContext(artist="Ed Sheeran", title="Thinking Out Loud")
    result = enrich(client, track, fetch)
    assert fetch.calls == [
        ApiCall(
            "musicbrainz",
            "search",
            "/recording",
            (
                ("query", 'recording:"Thinking Out Loud" AND artist:"Ed Sheeran"'),
                ("limit", "3"),
                ("fmt", "json"),
            ),
        )
    ]
    assert result.fields == {
        "musicbrainz_id": THINKING,
        "release_date": "2014-06-20",
        "isrc": "GBAHS1400099",
    }
    assert (track.musicbrainz_id, track.isrc) == (THINKING, "GBAHS1400099")


@pytest.mark.parametrize("bad_isrc", ["12345", "GBAHS14000", "GB AHS 14 0009 9X"])
def test_invalid_isrc_is_ignored_and_search_is_used(bad_isrc: str) -> None:
    client = MusicBrainzClient()
    picard = load("musicbrainz/picard_recording.json")
    fetch = FakeFetch(client, routes({"/recording": (200, search_body(picard))}))
    track = TrackContext(artist="Ed Sheeran", title="Thinking Out Loud", isrc=bad_isrc)
    result = enrich(client, track, fetch)
    assert [c.path for c in fetch.calls] == ["/recording"]
    assert result.fields["isrc"] == "GBAHS1400099"
    assert track.isrc == "GBAHS1400099"  # the invalid input ISRC is replaced


def test_search_hit_below_min_score_is_not_found() -> None:
    client = MusicBrainzClient(min_score=90)
    picard = load("musicbrainz/picard_recording.json")
    fetch = FakeFetch(client, routes({"/recording": (200, search_body(picard, score=85))}))
    result = enrich(client, TrackContext(artist="Ed Sheeran", title="Thinking Out Loud"), fetch)
    assert result.status == "not_found"
    assert result.fields == {}


def test_search_hit_by_another_artist_is_not_found() -> None:
    client = MusicBrainzClient()
    picard = load("musicbrainz/picard_recording.json")
    fetch = FakeFetch(client, routes({"/recording": (200, search_body(picard))}))
    track = TrackContext(artist="Ed Sheeran Tribute Band", title="Thinking Out Loud")
    assert enrich(client, track, fetch).status == "not_found"
    assert track.musicbrainz_id is None


def test_query_escapes_lucene_specials_keeps_non_ascii_and_drops_featuring() -> None:
    client = MusicBrainzClient()
    fetch = FakeFetch(client, routes({"/recording": (200, search_body())}))
    title = 'Eple (Live) [Edit]: "Yes"! 1/2 - A&B (feat. Robyn)'
    enrich(client, TrackContext(artist="Röyksopp feat. Robyn", title=title), fetch)
    assert fetch.calls[0].params[0] == (
        "query",
        'recording:"Eple \\(Live\\) \\[Edit\\]\\: \\"Yes\\"\\! 1\\/2 \\- A\\&B"'
        ' AND artist:"Röyksopp"',
    )


def test_5000_character_title_builds_a_bounded_query() -> None:
    client = MusicBrainzClient()
    fetch = FakeFetch(client, routes({"/recording": (200, search_body())}))
    enrich(client, TrackContext(artist="Artist", title="x" * 5000), fetch)
    query = fetch.calls[0].params[0][1]
    assert query == 'recording:"' + "x" * 200 + '" AND artist:"Artist"'


def test_nothing_to_look_up_is_skipped() -> None:
    client = MusicBrainzClient()
    fetch = FakeFetch(client, routes({}))
    assert enrich(client, TrackContext(title="Only a title"), fetch).status == "skipped"
    assert fetch.calls == []


def test_refused_search_is_a_failure() -> None:
    client = MusicBrainzClient()
    fetch = FakeFetch(
        client,
        routes({"/recording": (400, load("musicbrainz/TRANSCRIBED_error_400_invalid_mbid.json"))}),
    )
    result = enrich(client, TrackContext(artist="A", title="B"), fetch)
    assert result.status == "failed"


def test_rate_limit_503_propagates_as_provider_unavailable() -> None:
    client = MusicBrainzClient()
    body = load("musicbrainz/TRANSCRIBED_error_503_rate_limit.json")
    fetch = FakeFetch(client, routes({"/recording": (503, body)}))
    with pytest.raises(ProviderUnavailable, match="rate_limited"):
        enrich(client, TrackContext(artist="A", title="B"), fetch)


@pytest.mark.parametrize("limit", [0, 101])
def test_search_limit_outside_1_to_100_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match="search_limit"):
        MusicBrainzClient(search_limit=limit)


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, None, Outcome.SUCCESS),
        (400, "musicbrainz/TRANSCRIBED_error_400_invalid_mbid.json", Outcome.CLIENT_ERROR),
        (401, None, Outcome.AUTH_FAILED),
        (403, None, Outcome.FORBIDDEN),
        (404, NOT_FOUND, Outcome.NOT_FOUND),
        (406, None, Outcome.CLIENT_ERROR),
        (429, None, Outcome.RATE_LIMITED),
        (500, None, Outcome.SERVER_ERROR),
        (502, None, Outcome.SERVER_ERROR),
        (503, "musicbrainz/TRANSCRIBED_error_503_rate_limit.json", Outcome.RATE_LIMITED),
        (503, None, Outcome.SERVER_ERROR),
        (503, NOT_FOUND, Outcome.SERVER_ERROR),
    ],
)
def test_classification_table(status: int, body: str | None, outcome: Outcome) -> None:
    data = load(body) if body else None
    assert MusicBrainzClient().classify(status, data) is outcome


def test_503_with_another_message_is_a_server_error_not_a_rate_limit() -> None:
    client = MusicBrainzClient()
    assert (
        client.classify(503, {"error": "Service temporarily unavailable"}) is Outcome.SERVER_ERROR
    )
    assert (
        client.classify(503, "<html>exceeding the allowable rate limit</html>")
        is Outcome.RATE_LIMITED
    )
