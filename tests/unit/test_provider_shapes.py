"""Each provider declares what each of its calls needs from a 2xx body; less is MALFORMED.

Real recorded bodies (``../shared/fixtures``) pass; hand-made ones lacking the keys the client
needs fail with a log-safe note; the providers' own error bodies keep their classification.
Judged through ``ProviderState`` as the gateway builds it, i.e. as the transport judges them.
"""

from __future__ import annotations

import json
import math
import random

import pytest
from provider_harness import load

from scrapy_apigw.core.outcome import Outcome
from scrapy_apigw.core.payload import read_payload
from scrapy_apigw.gateway import ProviderState
from scrapy_apigw.providers import discogs, musicbrainz, spotify
from scrapy_apigw.providers.base import ApiCall
from scrapy_apigw.providers.clients import classifier_for, shape_checker_for
from scrapy_apigw.providers.registry import DEFAULT_PROVIDERS


def judge(provider: str, data_type: str, status: int, data) -> tuple[Outcome, str | None]:
    config = DEFAULT_PROVIDERS[provider]
    state = ProviderState(
        config,
        lambda: 0.0,
        random.Random(0),
        classifier_for(config),
        check_shape=shape_checker_for(config),
    )
    call = ApiCall(provider=provider, data_type=data_type, path="/")
    body = json.dumps(data).encode()
    verdict = state.judge(status, read_payload(body, "application/json", True), call)
    return verdict.outcome, verdict.malformed


@pytest.mark.parametrize(
    ("provider", "data_type", "fixture"),
    [
        ("spotify", "track", "spotify/beets_track_info.json"),
        ("spotify", "track", "spotify/spotify-web-api-js_track.json"),
        ("spotify", "search", "spotify/spotify-web-api-js_search_track.json"),
        ("spotify", "search", "spotify/beets_missing_request.json"),  # no hits is still valid
        ("spotify", "audio_features", "spotify/spotify-web-api-js_track_audio_features.json"),
        ("musicbrainz", "isrc", "musicbrainz/TRANSCRIBED_mbserver_isrc_GBAAA9900303.json"),
        ("discogs", "search", "discogs/go-discogs_database_search.json"),
        (
            "discogs",
            "search",
            "discogs/discogs_client_database_search_q-trash80_per_page-50_page-1.json",
        ),
        ("discogs", "release", "discogs/go-discogs_releases_10507194.json"),
        ("discogs", "release", "discogs/discogs_client_releases_1.json"),
        ("lastfm", "info", "lastfm/LastFM.swift_track.getInfo_noAlbum.json"),
        ("lastfm", "info", "lastfm/LastFM.swift_track.getInfo_withMBID_noUsername.json"),
        ("lastfm", "tags", "lastfm/LastFM.swift_track.getTopTags.json"),
    ],
)
def test_recorded_answers_have_the_shape_their_call_needs(provider, data_type, fixture) -> None:
    assert judge(provider, data_type, 200, load(fixture)) == (Outcome.SUCCESS, None)


@pytest.mark.parametrize(
    ("provider", "data_type", "data", "missing"),
    [
        ("spotify", "search", {"albums": {"items": []}}, "no tracks.items list"),
        ("spotify", "search", {"tracks": {"items": None}}, "no tracks.items list"),
        ("spotify", "search", None, "no tracks.items list"),
        ("spotify", "track", {"name": "One More Time"}, "no id string"),
        ("spotify", "audio_features", {"tempo": 120.0, "id": ""}, "no id string"),
        ("musicbrainz", "isrc", {"isrc": "GBAAA9900303"}, "no recordings list"),
        ("musicbrainz", "search", {"count": 0, "recordings": {}}, "no recordings list"),
        ("discogs", "search", {"pagination": {"items": 0}}, "no results list"),
        ("discogs", "release", {"title": "Svek", "labels": []}, "no id integer"),
        ("discogs", "release", {"id": True}, "no id integer"),
        ("lastfm", "info", {}, "no track object"),
        ("lastfm", "info", {"track": "One More Time"}, "no track object"),
        ("lastfm", "tags", [], "no toptags object"),
    ],
)
def test_a_2xx_without_what_the_call_needs_is_malformed(provider, data_type, data, missing):
    assert judge(provider, data_type, 200, data) == (Outcome.MALFORMED, missing)


@pytest.mark.parametrize(
    ("provider", "data_type", "status", "fixture", "outcome"),
    [
        ("lastfm", "info", 200, "lastfm/koel_artist-notfound.json", Outcome.NOT_FOUND),
        ("lastfm", "info", 200, "lastfm/navidrome_lastfm.artist.error6.json", Outcome.NOT_FOUND),
        ("lastfm", "tags", 403, "lastfm/LastFM.swift_errorInvalidAPIKey.json", Outcome.AUTH_FAILED),
        (
            "musicbrainz",
            "isrc",
            404,
            "musicbrainz/TRANSCRIBED_error_404_not_found.json",
            Outcome.NOT_FOUND,
        ),
        (
            "musicbrainz",
            "search",
            503,
            "musicbrainz/TRANSCRIBED_error_503_rate_limit.json",
            Outcome.RATE_LIMITED,
        ),
        (
            "musicbrainz",
            "isrc",
            400,
            "musicbrainz/TRANSCRIBED_error_400_invalid_mbid.json",
            Outcome.CLIENT_ERROR,
        ),
    ],
)
def test_provider_error_bodies_keep_their_classification(
    provider, data_type, status, fixture, outcome
) -> None:
    assert judge(provider, data_type, status, load(fixture)) == (outcome, None)


def test_a_lastfm_rate_limit_in_a_200_is_a_rate_limit_not_malformed() -> None:
    assert judge("lastfm", "info", 200, {"error": 29, "message": "Rate Limit Exceeded"}) == (
        Outcome.RATE_LIMITED,
        None,
    )


def test_error_statuses_are_never_malformed_whatever_their_body() -> None:
    config = DEFAULT_PROVIDERS["discogs"]
    state = ProviderState(config, lambda: 0.0, random.Random(0), classifier_for(config))
    html = read_payload(b"<html>502 Bad Gateway</html>", "text/html", True)
    assert state.judge(502, html).outcome is Outcome.SERVER_ERROR
    assert state.judge(404, read_payload(b"", None, True)).outcome is Outcome.NOT_FOUND


# -- parsers on values of the wrong JSON type (found by tests/property) ----------------------


def test_a_non_list_where_a_list_belongs_lists_nothing() -> None:
    assert spotify._track_artists({"artists": 5}) == []
    assert musicbrainz._credits({"artist-credit": True}) == []
    assert discogs.release_fields({"id": 1, "labels": 7}) == {"discogs_id": 1}
    assert discogs._lists_track({"tracklist": [{"title": "x", "sub_tracks": 3}]}, "x")


def test_non_finite_numbers_are_no_values() -> None:
    # Python's json.loads accepts NaN, Infinity and huge ints; none may reach the feed.
    body = json.loads('{"id": "x", "tempo": Infinity, "energy": NaN, "loudness": 1e400}')
    assert spotify.audio_feature_fields(body) == {}
    assert spotify._number(10**400) is None
    assert musicbrainz._score({"score": math.inf}) == 0
    assert discogs._year(math.inf) == 9999


def test_spotify_artist_names_that_are_not_strings_are_skipped() -> None:
    # Found by tests/property/test_provider_parsers.py: {"name": 1} reached the matcher.
    from scrapy_apigw.providers.spotify import _track_artists

    assert _track_artists({"artists": [{"name": 1}, {"name": "Daft Punk"}, {"name": ""}]}) == [
        "Daft Punk"
    ]
