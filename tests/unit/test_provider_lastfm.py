"""LastFmClient: getInfo + getTopTags calls, parsing, and errors carried in 200 bodies.

Answered from real recorded Last.fm bodies (LastFM.swift, koel and navidrome test data); the
fake fetch decides each answer's kind with the client's own ``classify``, as the transport does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from provider_harness import FakeFetch, enrich, load

from scrapy_apigw.core.outcome import Outcome
from scrapy_apigw.exceptions import ProviderUnavailable
from scrapy_apigw.providers.base import ApiCall, ProviderResult, TrackContext
from scrapy_apigw.providers.lastfm import LastFmClient, count, is_stub_track

INFO = "lastfm/LastFM.swift_track.getInfo_withTrackArtist_noUsername_noMBID.json"
INFO_MBID = "lastfm/LastFM.swift_track.getInfo_withMBID_noUsername.json"
TAGS = "lastfm/LastFM.swift_track.getTopTags.json"
ERROR_6 = "lastfm/koel_artist-notfound.json"


def by_method(**table: tuple[int, Any]) -> Callable[[ApiCall], tuple[int, Any]]:
    """Route on the ``method`` parameter (every Last.fm call is ``GET /``)."""

    def route(call: ApiCall) -> tuple[int, Any]:
        assert call.path == "/"
        method = dict(call.params)["method"].replace("track.", "")
        if method not in table:
            raise AssertionError(f"unexpected call {call}")
        return table[method]

    return route


def test_info_and_top_tags_by_artist_and_track() -> None:
    client = LastFmClient()
    fetch = FakeFetch(client, by_method(getInfo=(200, load(INFO)), getTopTags=(200, load(TAGS))))
    result = enrich(client, TrackContext(artist="Some Artist", title="Some Track"), fetch)
    identity = (("artist", "Some Artist"), ("track", "Some Track"), ("autocorrect", "1"))
    assert fetch.calls == [
        ApiCall(
            "lastfm", "info", "/", (("method", "track.getInfo"), *identity, ("format", "json"))
        ),
        ApiCall(
            "lastfm", "tags", "/", (("method", "track.getTopTags"), *identity, ("format", "json"))
        ),
    ]
    assert result == ProviderResult(
        "ok", {"lastfm_playcount": 136, "lastfm_listeners": 19, "lastfm_tags": ["tag-a", "tag-b"]}
    )


def test_5000_character_values_are_truncated_to_200() -> None:
    client = LastFmClient()
    fetch = FakeFetch(client, by_method(getInfo=(200, load(ERROR_6))))
    enrich(client, TrackContext(artist="A" * 5000, title="Ü" * 5000), fetch)
    params = dict(fetch.calls[0].params)
    assert (params["artist"], params["track"]) == ("A" * 200, "Ü" * 200)


def test_recorded_getinfo_toptags_are_the_tags_and_no_gettoptags_call_is_made() -> None:
    client = LastFmClient()
    fetch = FakeFetch(client, by_method(getInfo=(200, load(INFO_MBID))))
    track = TrackContext(artist="Some Artist", title="Some Track", musicbrainz_id="someTrackMBID")
    result = enrich(client, track, fetch)
    identity = (("artist", "Some Artist"), ("track", "Some Track"), ("autocorrect", "1"))
    assert [c.params for c in fetch.calls] == [
        (("method", "track.getInfo"), *identity, ("format", "json")),
    ]
    assert result == ProviderResult(
        "ok",
        {
            "lastfm_playcount": 136,
            "lastfm_listeners": 19,
            "lastfm_tags": ["tag1", "tag2", "tag3", "tag4"],  # getInfo's order (no counts)
        },
        calls_saved={"toptags_from_getinfo": 1},
    )


def test_getinfo_tags_are_capped_at_max_tags_in_lastfm_order() -> None:
    client = LastFmClient(max_tags=2)
    fetch = FakeFetch(client, by_method(getInfo=(200, load(INFO_MBID))))
    result = enrich(client, TrackContext(artist="Some Artist", title="Some Track"), fetch)
    assert result.fields["lastfm_tags"] == ["tag1", "tag2"]
    assert len(fetch.calls) == 1


def test_names_unknown_stub_then_the_mbid_and_tags_asked_by_the_mbid() -> None:
    client = LastFmClient()
    info = copy.deepcopy(load(INFO_MBID))
    info["track"]["toptags"]["tag"] = []
    info_answers = iter([(200, stub_body()), (200, info)])
    fetch = FakeFetch(
        client,
        lambda call: (
            next(info_answers)
            if dict(call.params)["method"] == "track.getInfo"
            else (200, load(TAGS))
        ),
    )
    track = TrackContext(artist="Some Artist", title="Some Track", musicbrainz_id="someTrackMBID")
    result = enrich(client, track, fetch)
    identity = (("artist", "Some Artist"), ("track", "Some Track"), ("autocorrect", "1"))
    assert [c.params for c in fetch.calls] == [
        (("method", "track.getInfo"), *identity, ("format", "json")),
        (("method", "track.getInfo"), ("mbid", "someTrackMBID"), ("format", "json")),
        (("method", "track.getTopTags"), ("mbid", "someTrackMBID"), ("format", "json")),
    ]
    assert result == ProviderResult(
        "ok", {"lastfm_playcount": 136, "lastfm_listeners": 19, "lastfm_tags": ["tag-a", "tag-b"]}
    )


def test_names_unknown_to_lastfm_error_6_in_200_fall_back_to_the_mbid() -> None:
    client = LastFmClient(autocorrect=False)
    info_answers = iter([(200, load(ERROR_6)), (200, load(INFO_MBID))])
    fetch = FakeFetch(client, lambda call: next(info_answers))
    track = TrackContext(artist="Some Artist", title="Some Track", musicbrainz_id="someTrackMBID")
    result = enrich(client, track, fetch)
    assert [dict(c.params).get("mbid") for c in fetch.calls] == [None, "someTrackMBID"]
    assert dict(fetch.calls[0].params)["autocorrect"] == "0"
    assert result.status == "ok"


def test_error_6_in_a_200_body_is_not_found_without_a_tags_call() -> None:
    client = LastFmClient()
    fetch = FakeFetch(client, by_method(getInfo=(200, load(ERROR_6))))
    result = enrich(client, TrackContext(artist="Nobody", title="Nothing"), fetch)
    assert result.status == "not_found"
    assert len(fetch.calls) == 1


def stub_body() -> dict[str, Any]:
    """Last.fm's answer to an unknown pair (PROVIDERS.md section 4): a recorded getInfo body
    reduced to the stub's values: listeners "2", duration "0", no tags, album or mbid."""
    body = copy.deepcopy(load("lastfm/LastFM.swift_track.getInfo_noAlbum.json"))
    body["track"].update(listeners="2", playcount="2", duration="0", toptags={"tag": []})
    return body  # type: ignore[no-any-return]


def test_stub_track_for_an_unknown_pair_is_not_found_without_a_tags_call() -> None:
    client = LastFmClient()
    fetch = FakeFetch(client, by_method(getInfo=(200, stub_body())))
    result = enrich(client, TrackContext(artist="Nobody", title="Nothing"), fetch)
    assert result == ProviderResult("not_found", reason="track not found (stub track)")
    assert [dict(c.params)["method"] for c in fetch.calls] == ["track.getInfo"]


def test_stub_for_the_names_then_unknown_mbid_is_not_found() -> None:
    client = LastFmClient()
    answers = iter([(200, stub_body()), (200, load(ERROR_6))])
    fetch = FakeFetch(client, lambda call: next(answers))
    result = enrich(
        client, TrackContext(artist="Nobody", title="Nothing", musicbrainz_id="m-1"), fetch
    )
    assert result.status == "not_found" and len(fetch.calls) == 2


@pytest.mark.parametrize(
    ("change", "stub"),
    [
        ({}, True),
        ({"listeners": "3"}, False),  # a real, obscure track
        ({"duration": "157000"}, False),
        ({"mbid": "bf7845cc-1111-4222-8333-444455556666"}, False),
        ({"toptags": {"tag": [{"name": "house", "url": "u"}]}}, False),
        ({"album": {"artist": "A", "title": "T"}}, False),
    ],
)
def test_is_stub_track_needs_every_stub_trait(change: dict[str, Any], stub: bool) -> None:
    info = {**stub_body()["track"], **change}
    assert is_stub_track(info) is stub


def test_recorded_track_without_album_mbid_or_tags_is_not_a_stub() -> None:
    assert not is_stub_track(load("lastfm/LastFM.swift_track.getInfo_noAlbum.json")["track"])


def test_empty_tag_list_sets_no_lastfm_tags_field() -> None:
    client = LastFmClient()
    empty = copy.deepcopy(load(TAGS))
    empty["toptags"]["tag"] = []
    fetch = FakeFetch(client, by_method(getInfo=(200, load(INFO)), getTopTags=(200, empty)))
    result = enrich(client, TrackContext(artist="Some Artist", title="Some Track"), fetch)
    assert result.fields == {"lastfm_playcount": 136, "lastfm_listeners": 19}


def test_missing_or_garbage_counts_are_left_out() -> None:
    client = LastFmClient()
    info = copy.deepcopy(load("lastfm/LastFM.swift_track.getInfo_noAlbum.json"))
    info["track"]["playcount"] = "n/a"
    del info["track"]["listeners"]
    fetch = FakeFetch(client, by_method(getInfo=(200, info), getTopTags=(200, load(TAGS))))
    result = enrich(client, TrackContext(artist="Some Artist", title="Some Track"), fetch)
    assert result.fields == {"lastfm_tags": ["tag-a", "tag-b"]}


def test_track_with_no_counts_and_no_tags_is_not_found() -> None:
    client = LastFmClient()
    info = {"track": {"name": "Some Track"}}
    fetch = FakeFetch(
        client, by_method(getInfo=(200, info), getTopTags=(200, {"toptags": {"tag": []}}))
    )
    result = enrich(client, TrackContext(artist="A", title="B"), fetch)
    assert result.status == "not_found"


def test_tags_are_sorted_by_count_deduplicated_and_capped() -> None:
    client = LastFmClient(max_tags=2)
    data = copy.deepcopy(load(TAGS))
    tags = data["toptags"]["tag"]
    data["toptags"]["tag"] = [
        tags[1],
        {"count": "7", "name": "Tag-A "},
        tags[0],
        {"count": 5, "name": "low"},
        {"name": "no count"},
    ]
    assert client.top_tags(data) == ["tag-a", "tag-b"]
    assert LastFmClient().top_tags(data) == ["tag-a", "tag-b", "low", "no count"]


def test_a_single_tag_object_instead_of_a_list_is_accepted() -> None:
    data = {"toptags": {"tag": {"count": 100, "name": "techno"}}}
    assert LastFmClient().top_tags(data) == ["techno"]


def test_nothing_to_look_up_is_skipped() -> None:
    client = LastFmClient()
    fetch = FakeFetch(client, by_method())
    assert enrich(client, TrackContext(isrc="GBAAA9900303"), fetch).status == "skipped"


def test_invalid_method_error_3_is_a_refused_request() -> None:
    client = LastFmClient()
    fetch = FakeFetch(
        client, by_method(getInfo=(400, load("lastfm/navidrome_lastfm.artist.error3.json")))
    )
    result = enrich(client, TrackContext(artist="A", title="B"), fetch)
    assert result.status == "failed"


def test_rate_limit_error_29_in_a_200_body_propagates() -> None:
    client = LastFmClient()
    body = {"error": 29, "message": "Rate Limit Exceded", "links": []}
    fetch = FakeFetch(client, by_method(getInfo=(200, body)))
    with pytest.raises(ProviderUnavailable, match="rate_limited"):
        enrich(client, TrackContext(artist="A", title="B"), fetch)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1315650", 1315650),
        (" 19 ", 19),
        (42, 42),
        ("", None),
        ("n/a", None),
        ("-3", None),
        (-3, None),
        (None, None),
        (True, None),
        (1.5, None),
    ],
)
def test_counts_sent_as_strings_are_parsed_and_garbage_rejected(
    value: Any, expected: int | None
) -> None:
    assert count(value) == expected


@pytest.mark.parametrize(
    ("status", "code", "outcome"),
    [
        (200, 29, Outcome.RATE_LIMITED),
        (429, 29, Outcome.RATE_LIMITED),
        (200, 11, Outcome.SERVER_ERROR),
        (200, 16, Outcome.SERVER_ERROR),
        (200, 8, Outcome.SERVER_ERROR),
        (200, 6, Outcome.NOT_FOUND),
        (400, 6, Outcome.NOT_FOUND),
        (200, "6", Outcome.NOT_FOUND),
        (403, 10, Outcome.AUTH_FAILED),
        (200, 26, Outcome.AUTH_FAILED),
        (200, 4, Outcome.AUTH_FAILED),
        (200, 9, Outcome.AUTH_FAILED),
        (200, 2, Outcome.CLIENT_ERROR),
        (400, 3, Outcome.CLIENT_ERROR),
        (200, 5, Outcome.CLIENT_ERROR),
        (200, 7, Outcome.CLIENT_ERROR),
        (200, 13, Outcome.CLIENT_ERROR),
        (200, 17, Outcome.CLIENT_ERROR),
        (200, 99, Outcome.CLIENT_ERROR),
        (503, 99, Outcome.SERVER_ERROR),
        (200, None, Outcome.SUCCESS),
        (429, None, Outcome.RATE_LIMITED),
        (500, None, Outcome.SERVER_ERROR),
        (404, None, Outcome.NOT_FOUND),
    ],
)
def test_classification_table(status: int, code: int | str | None, outcome: Outcome) -> None:
    body = {"track": {}} if code is None else {"error": code, "message": "...", "links": []}
    assert LastFmClient().classify(status, body) is outcome


@pytest.mark.parametrize(
    ("fixture", "outcome"),
    [
        ("lastfm/LastFM.swift_errorInvalidAPIKey.json", Outcome.AUTH_FAILED),
        ("lastfm/koel_artist-notfound.json", Outcome.NOT_FOUND),
        ("lastfm/navidrome_lastfm.artist.error6.json", Outcome.NOT_FOUND),
        ("lastfm/navidrome_lastfm.artist.error3.json", Outcome.CLIENT_ERROR),
        ("lastfm/LastFM.swift_artist.getTopTracksBadParams.json", Outcome.NOT_FOUND),
        (INFO, Outcome.SUCCESS),
        (TAGS, Outcome.SUCCESS),
    ],
)
def test_recorded_bodies_classify_with_http_200(fixture: str, outcome: Outcome) -> None:
    assert LastFmClient().classify(200, load(fixture)) is outcome
