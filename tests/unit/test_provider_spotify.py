"""SpotifyClient: calls built and fields parsed, answered from real recorded Spotify responses.

The fake ``fetch`` plays the transport: it records each ApiCall and answers it with a recorded
body, the answer's kind decided by the client's own ``classify`` as the real transport does.
"""

from __future__ import annotations

import copy
import logging

import pytest
from provider_harness import FakeFetch, enrich, load, routes

from scrapy_apigw.core.outcome import Outcome
from scrapy_apigw.exceptions import ProviderUnavailable
from scrapy_apigw.providers.base import ApiCall, TrackContext
from scrapy_apigw.providers.spotify import SpotifyClient, audio_feature_fields, is_spotify_id

FEATURES = "spotify/spotify-web-api-js_track_audio_features.json"
SEARCH = "spotify/spotify-web-api-js_search_track.json"
FEATURE_FIELDS = {
    "bpm": 98.0,
    "key": "F minor",
    "camelot_key": "4A",
    "energy": 0.578,
    "danceability": 0.735,
    "valence": 0.624,
    "acousticness": 0.514,
    "instrumentalness": 0.0902,
    "liveness": 0.159,
    "speechiness": 0.0461,
    "loudness": -11.84,
    "time_signature": 4,
}


def test_text_search_builds_the_quoted_query_and_reads_track_and_audio_features() -> None:
    client = SpotifyClient()
    features = load(FEATURES)
    fetch = FakeFetch(
        client,
        routes(
            {
                "/search": (200, load(SEARCH)),
                "/audio-features/3q8WojYJVZsGClFGFBYdTc": (200, features),
            }
        ),
    )
    track = TrackContext(artist="Veronica Maggio", title="Satan i gatan")
    result = enrich(client, track, fetch)
    assert fetch.calls == [
        ApiCall(
            "spotify",
            "search",
            "/search",
            (
                ("q", 'track:"Satan i gatan" artist:"Veronica Maggio"'),
                ("type", "track"),
                ("limit", "5"),
            ),
        ),
        ApiCall("spotify", "audio_features", "/audio-features/3q8WojYJVZsGClFGFBYdTc"),
    ]
    assert result.status == "ok"
    assert result.fields == {
        "spotify_id": "3q8WojYJVZsGClFGFBYdTc",
        "isrc": "SEUM71100167",
        "spotify_popularity": 0,
        **FEATURE_FIELDS,
    }
    assert (track.spotify_id, track.isrc, track.duration_ms) == (
        "3q8WojYJVZsGClFGFBYdTc",
        "SEUM71100167",
        195146,
    )


def test_search_picks_the_requested_artist_among_same_titles_not_the_first_item() -> None:
    client = SpotifyClient()
    fetch = FakeFetch(
        client,
        routes(
            {"/search": (200, load(SEARCH)), "/audio-features/6VKhjanHmI88gbeAJfGBns": (404, None)}
        ),
    )
    result = enrich(client, TrackContext(artist="Anna-Lena Löfgren", title="Lyckliga gatan"), fetch)
    assert result.fields["spotify_id"] == "6VKhjanHmI88gbeAJfGBns"
    assert result.fields["isrc"] == "SEPQB6710020"


def test_search_prefers_the_literal_title_over_a_radio_edit_of_the_same_recording() -> None:
    client = SpotifyClient()
    fetch = FakeFetch(
        client,
        routes(
            {"/search": (200, load(SEARCH)), "/audio-features/3od3TT0urEB8HMaFZhaEYW": (404, None)}
        ),
    )
    result = enrich(client, TrackContext(artist="Timo Räisänen", title="Lyckliga gatan"), fetch)
    assert result.fields["spotify_id"] == "3od3TT0urEB8HMaFZhaEYW"


def test_search_with_wrong_artist_for_existing_title_is_not_found() -> None:
    client = SpotifyClient()
    fetch = FakeFetch(client, routes({"/search": (200, load(SEARCH))}))
    track = TrackContext(artist="Veronica Maggio", title="Lyckliga gatan")
    result = enrich(client, track, fetch)
    assert result.status == "not_found"
    assert result.fields == {}
    assert fetch.paths == ["/search"]
    assert track.spotify_id is None


def test_empty_search_result_is_not_found() -> None:
    client = SpotifyClient()
    fetch = FakeFetch(
        client, routes({"/search": (200, load("spotify/beets_missing_request.json"))})
    )
    result = enrich(client, TrackContext(artist="duifhjslkef", title="lkajsdflakjsd"), fetch)
    assert result.status == "not_found"


def test_valid_spotify_id_is_looked_up_with_market_and_gives_album_release_date() -> None:
    client = SpotifyClient(market="US")
    fetch = FakeFetch(
        client,
        routes(
            {
                "/tracks/6NPVjNh8Jhru9xOmyQigds": (200, load("spotify/beets_track_info.json")),
                "/audio-features/6NPVjNh8Jhru9xOmyQigds": (200, load(FEATURES)),
            }
        ),
    )
    track = TrackContext(spotify_id="6NPVjNh8Jhru9xOmyQigds")
    result = enrich(client, track, fetch)
    assert fetch.calls[0] == ApiCall(
        "spotify", "track", "/tracks/6NPVjNh8Jhru9xOmyQigds", (("market", "US"),)
    )
    assert fetch.calls[1].params == ()  # audio features take no market
    assert result.fields == {
        "spotify_id": "6NPVjNh8Jhru9xOmyQigds",
        "isrc": "USQ4E1300686",
        "spotify_popularity": 1,
        "release_date": "2013-06-18",
        **FEATURE_FIELDS,
    }
    assert (track.isrc, track.duration_ms) == ("USQ4E1300686", 233305)


def test_hyphenated_isrc_from_spotify_is_normalized() -> None:
    client = SpotifyClient()
    fetch = FakeFetch(
        client,
        routes(
            {
                "/tracks/6sjZfVJworBX6TqyjkxIJ1": (
                    200,
                    load("spotify/beets_multiartist_track.json"),
                ),
                "/audio-features/6sjZfVJworBX6TqyjkxIJ1": (404, None),
            }
        ),
    )
    track = TrackContext(spotify_id="6sjZfVJworBX6TqyjkxIJ1")
    result = enrich(client, track, fetch)
    assert result.fields["isrc"] == "GBSMU4566095"  # recorded as "GB-SMU-45-66095"
    assert track.isrc == "GBSMU4566095"
    assert "bpm" not in result.fields  # audio features 404: track fields only, still ok
    assert result.status == "ok"


@pytest.mark.parametrize(
    "bad_id",
    ["6NPVjNh8Jhru9xOmyQigd", "6NPVjNh8Jhru9xOmyQigds1", "6NPVjNh8Jhru9xOmyQig-s", "../../me/x"],
)
def test_invalid_spotify_id_is_ignored_and_the_track_is_searched(bad_id: str) -> None:
    client = SpotifyClient()
    fetch = FakeFetch(
        client, routes({"/search": (200, load("spotify/beets_missing_request.json"))})
    )
    result = enrich(client, TrackContext(artist="A", title="B", spotify_id=bad_id), fetch)
    assert fetch.paths == ["/search"]
    assert result.status == "not_found"
    assert not is_spotify_id(bad_id)


def test_unknown_spotify_id_404_falls_back_to_search() -> None:
    client = SpotifyClient()
    body = {"error": {"status": 404, "message": "Not found"}}
    fetch = FakeFetch(
        client,
        routes(
            {
                "/tracks/0000000000000000000000": (404, body),
                "/search": (200, load(SEARCH)),
                "/audio-features/3q8WojYJVZsGClFGFBYdTc": (200, load(FEATURES)),
            }
        ),
    )
    track = TrackContext(
        artist="Veronica Maggio", title="Satan i gatan", spotify_id="0000000000000000000000"
    )
    result = enrich(client, track, fetch)
    assert fetch.paths[:2] == ["/tracks/0000000000000000000000", "/search"]
    assert track.spotify_id == "3q8WojYJVZsGClFGFBYdTc"  # replaced by the id found
    assert result.status == "ok"


def test_isrc_search_is_normalized_and_picks_the_matching_item() -> None:
    client = SpotifyClient(search_limit=10)
    fetch = FakeFetch(
        client,
        routes(
            {"/search": (200, load(SEARCH)), "/audio-features/5MEuFY2DxrozPEgGpR8Fji": (404, None)}
        ),
    )
    track = TrackContext(artist="Veronica Maggio", title="Välkommen in", isrc="seum-71100344")
    result = enrich(client, track, fetch)
    assert fetch.calls[0].params == (("q", "isrc:SEUM71100344"), ("type", "track"), ("limit", "10"))
    assert result.fields["spotify_id"] == "5MEuFY2DxrozPEgGpR8Fji"


def test_isrc_search_without_artist_and_title_takes_the_first_item() -> None:
    client = SpotifyClient()
    fetch = FakeFetch(
        client,
        routes(
            {"/search": (200, load(SEARCH)), "/audio-features/3q8WojYJVZsGClFGFBYdTc": (404, None)}
        ),
    )
    result = enrich(client, TrackContext(isrc="SEUM71100167"), fetch)
    assert result.fields["spotify_id"] == "3q8WojYJVZsGClFGFBYdTc"


def test_invalid_isrc_is_ignored() -> None:
    client = SpotifyClient()
    fetch = FakeFetch(client, routes({}))
    result = enrich(client, TrackContext(isrc="NOT-AN-ISRC"), fetch)
    assert result.status == "skipped"
    assert fetch.calls == []


def test_isrc_search_with_no_hit_falls_back_to_text_search() -> None:
    client = SpotifyClient()
    answers = iter([(200, load("spotify/beets_missing_request.json")), (200, load(SEARCH))])
    fetch = FakeFetch(client, lambda call: next(answers) if call.path == "/search" else (404, None))
    track = TrackContext(artist="Veronica Maggio", title="Sju sorger", isrc="SEUM71199999")
    result = enrich(client, track, fetch)
    assert [c.params[0][1] for c in fetch.calls[:2]] == [
        "isrc:SEUM71199999",
        'track:"Sju sorger" artist:"Veronica Maggio"',
    ]
    assert result.fields["spotify_id"] == "3jB5trbr0kQqQRkYr3M3u5"
    assert track.isrc == "SEUM71199999"  # a valid input ISRC is kept


def test_query_values_drop_featuring_escape_quotes_and_keep_punctuation_and_non_ascii() -> None:
    client = SpotifyClient(market="SE")
    fetch = FakeFetch(
        client, routes({"/search": (200, load("spotify/beets_missing_request.json"))})
    )
    title = 'Say "Hi" (Club Mix) [Live]: 1/2 - A&B! (feat. Sia)'
    enrich(client, TrackContext(artist="Röyksopp ft. Robyn", title=title), fetch)
    assert fetch.calls[0].params == (
        ("q", 'track:"Say \\"Hi\\" (Club Mix) [Live]: 1/2 - A&B!" artist:"Röyksopp"'),
        ("type", "track"),
        ("limit", "5"),
        ("market", "SE"),
    )


def test_5000_character_title_builds_a_bounded_query() -> None:
    client = SpotifyClient()
    fetch = FakeFetch(
        client, routes({"/search": (200, load("spotify/beets_missing_request.json"))})
    )
    enrich(client, TrackContext(artist="A" * 5000, title='"' * 5000), fetch)
    query = fetch.calls[0].params[0][1]
    assert query == 'track:"' + '\\"' * 200 + '" artist:"' + "A" * 200 + '"'


def test_audio_features_403_is_remembered_logged_once_and_not_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = SpotifyClient()
    forbidden = load("spotify/TRANSCRIBED_errors.json")["403_audio_features_new_app"]
    fetch = FakeFetch(
        client,
        lambda call: (200, load(SEARCH)) if call.path == "/search" else (403, forbidden),
    )
    with caplog.at_level(logging.INFO, logger="scrapy_apigw.providers.spotify"):
        first = enrich(client, TrackContext(artist="Veronica Maggio", title="Satan i gatan"), fetch)
        second = enrich(client, TrackContext(artist="Veronica Maggio", title="Sju sorger"), fetch)
    assert first.status == second.status == "ok"
    assert first.fields == {
        "spotify_id": "3q8WojYJVZsGClFGFBYdTc",
        "isrc": "SEUM71100167",
        "spotify_popularity": 0,
    }
    assert fetch.paths == ["/search", "/audio-features/3q8WojYJVZsGClFGFBYdTc", "/search"]
    assert client.audio_features_available is False
    assert len([r for r in caplog.records if "audio-features" in r.getMessage()]) == 1


def test_key_minus_one_gives_no_key_nor_camelot_and_zero_tempo_no_bpm() -> None:
    data = copy.deepcopy(load(FEATURES))
    data.update(key=-1, tempo=0)
    fields = audio_feature_fields(data)
    assert "key" not in fields and "camelot_key" not in fields and "bpm" not in fields
    assert fields["energy"] == 0.578


def test_tempo_is_rounded_to_a_tenth_of_a_bpm() -> None:
    data = copy.deepcopy(load(FEATURES))
    data["tempo"] = 127.9651
    assert audio_feature_fields(data)["bpm"] == 128.0
    data["tempo"] = 98.002
    assert audio_feature_fields(data)["bpm"] == 98.0


def test_nothing_to_look_up_is_skipped_without_calls() -> None:
    client = SpotifyClient()
    fetch = FakeFetch(client, routes({}))
    assert enrich(client, TrackContext(artist="Daft Punk"), fetch).status == "skipped"
    assert fetch.calls == []


def test_refused_search_is_a_failure() -> None:
    client = SpotifyClient()
    body = {"error": {"status": 400, "message": "Invalid limit"}}
    fetch = FakeFetch(client, routes({"/search": (400, body)}))
    result = enrich(client, TrackContext(artist="A", title="B"), fetch)
    assert result.status == "failed"
    assert result.reason == "request refused (HTTP 400)"


def test_provider_unavailable_propagates_to_the_waterfall() -> None:
    client = SpotifyClient()
    body = load("spotify/TRANSCRIBED_errors.json")["429_quota_exceeded_devmode_july_2026"]
    fetch = FakeFetch(client, routes({"/search": (429, body)}))
    with pytest.raises(ProviderUnavailable):
        enrich(client, TrackContext(artist="A", title="B"), fetch)


@pytest.mark.parametrize("limit", [0, 11, 50])
def test_search_limit_above_the_2026_maximum_of_10_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match="search_limit"):
        SpotifyClient(search_limit=limit)


@pytest.mark.parametrize(
    ("status", "body_key", "outcome"),
    [
        (200, None, Outcome.SUCCESS),
        (400, None, Outcome.CLIENT_ERROR),
        (401, "401_expired_token_typical", Outcome.AUTH_FAILED),
        (403, "403_audio_features_new_app", Outcome.FORBIDDEN),
        (403, "403_removed_endpoint_devmode", Outcome.FORBIDDEN),
        (404, None, Outcome.NOT_FOUND),
        (429, "429_quota_exceeded_devmode_july_2026", Outcome.RATE_LIMITED),
        (500, None, Outcome.SERVER_ERROR),
        (502, None, Outcome.SERVER_ERROR),
        (503, None, Outcome.SERVER_ERROR),
    ],
)
def test_classification_table(status: int, body_key: str | None, outcome: Outcome) -> None:
    body = load("spotify/TRANSCRIBED_errors.json")[body_key] if body_key else None
    assert SpotifyClient().classify(status, body) is outcome
