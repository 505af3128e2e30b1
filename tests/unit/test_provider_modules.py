"""One module per provider (issue 9 section 3): what each declares, how the registry and the
settings read the declarations, per-field source priority, Beatport's and AcousticBrainz's
parsing, Beatport's token refresh and the dead AcousticBrainz, without a network."""

from __future__ import annotations

import logging

import pytest
import pytest_twisted
from provider_harness import FakeFetch, enrich, load, routes
from scrapy.settings import Settings
from scrapy.utils.defer import deferred_from_coro

from scrapy_apigw.core.clock import FakeClock
from scrapy_apigw.enrichment.waterfall import merge_fields
from scrapy_apigw.exceptions import AuthError, ConfigError
from scrapy_apigw.providers.acousticbrainz import (
    AcousticBrainzClient,
    DumpReader,
    document_fields,
)
from scrapy_apigw.providers.base import ProviderResult, TrackContext
from scrapy_apigw.providers.beatport import BeatportAuth, BeatportClient, beatport_key
from scrapy_apigw.providers.spec import DEFAULT_PROVIDER_MODULES, load_specs
from scrapy_apigw.sandbox import config as sandbox_config
from scrapy_apigw.sandbox.acousticbrainz import write_dumps
from scrapy_apigw.sandbox.catalog import Catalog
from scrapy_apigw.secrets import Secret
from scrapy_apigw.settings import GatewaySettings


def parse(values=None, environ=None):
    return GatewaySettings.from_settings(Settings(values or {}), environ=environ or {})


# -- the declarations --------------------------------------------------------------------------


def test_each_provider_is_one_module_declaring_its_name_defaults_and_credentials():
    specs = load_specs()
    assert list(specs) == [
        "spotify", "musicbrainz", "lastfm", "beatport", "discogs", "acousticbrainz"
    ]  # fmt: skip
    assert [m.rsplit(".", 1)[1] for m in DEFAULT_PROVIDER_MODULES] == list(specs)
    credentials = {
        name: [(c.setting, c.secret) for c in spec.credentials] for name, spec in specs.items()
    }
    assert credentials == {
        "spotify": [("APIGW_SPOTIFY_CLIENT_ID", True), ("APIGW_SPOTIFY_CLIENT_SECRET", True)],
        "musicbrainz": [("APIGW_MUSICBRAINZ_USER_AGENT", False)],
        "lastfm": [("APIGW_LASTFM_API_KEY", True)],
        "beatport": [("APIGW_BEATPORT_API_KEY", True), ("APIGW_BEATPORT_API_SECRET", True)],
        "discogs": [("APIGW_DISCOGS_TOKEN", True)],
        "acousticbrainz": [],
    }
    assert specs["discogs"].quota_header == "x-discogs-ratelimit"
    assert [r.data_type for r in specs["spotify"].batch_rules] == ["track", "audio_features"]
    assert [r.data_type for r in specs["musicbrainz"].batch_rules] == ["isrc"]


def test_the_sandbox_values_the_modules_declare_are_those_the_sandbox_accepts():
    sandbox = {
        (name, c.name): c.sandbox for name, spec in load_specs().items() for c in spec.credentials
    }
    assert sandbox[("spotify", "client_id")] == sandbox_config.DEFAULT_SPOTIFY_CLIENT_ID
    assert sandbox[("spotify", "client_secret")] == sandbox_config.DEFAULT_SPOTIFY_CLIENT_SECRET
    assert sandbox[("discogs", "token")] == sandbox_config.DEFAULT_DISCOGS_TOKEN
    assert sandbox[("lastfm", "api_key")] == sandbox_config.DEFAULT_LASTFM_API_KEY
    assert sandbox[("beatport", "client_id")] == sandbox_config.DEFAULT_BEATPORT_API_KEY
    assert sandbox[("beatport", "client_secret")] == sandbox_config.DEFAULT_BEATPORT_API_SECRET
    for name, spec in load_specs().items():
        if spec.sandbox_path is not None:
            assert sandbox_config.BASE_PATHS[name] == spec.sandbox_path
        if spec.sandbox_token_path is not None:
            assert sandbox_config.BASE_PATHS[f"{name}_token"] == spec.sandbox_token_path


def test_a_provider_declared_in_settings_gets_its_credentials_as_secrets():
    gw = parse(
        {
            "APIGW_PROVIDERS": {
                "tidal": {
                    "base_url": "https://api.tidal.example/v2",
                    "client": "provider_harness:FakeFetch",
                    "credentials": {"token": "TIDAL_TOKEN", "user": {"env": "TIDAL_USER",
                                                                     "secret": False}},
                    "auth": {"header": "Authorization", "template": "Token {token} user={user}"},
                }
            },
        },
        environ={"TIDAL_TOKEN": "tok-123", "TIDAL_USER": "me"},
    )  # fmt: skip
    assert gw.providers["tidal"].base_url == "https://api.tidal.example/v2"
    assert isinstance(gw.credential("tidal", "token"), Secret)
    assert gw.credential("tidal", "user") == "me"
    assert gw.missing_credentials("tidal") == []
    assert parse(
        {"APIGW_PROVIDERS": {"tidal": {"base_url": "https://t.example", "credentials": {
            "token": "TIDAL_TOKEN"}}}}
    ).missing_credentials("tidal") == ["APIGW_TIDAL_TOKEN"]  # fmt: skip


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"APIGW_PROVIDER_MODULES": ["no_such_module_anywhere"]},
            "APIGW_PROVIDER_MODULES = 'no_such_module_anywhere': cannot import",
        ),
        (
            {"APIGW_PROVIDER_MODULES": ["logging"]},
            "APIGW_PROVIDER_MODULES = 'logging': expected a module with PROVIDER",
        ),
        (
            {"APIGW_PROVIDERS": {"t": {"base_url": "https://t.example", "auth": {"cookie": 1}}}},
            'APIGW_PROVIDERS["t"]["auth"] = {\'cookie\': 1}: expected',
        ),
        (
            {"APIGW_PROVIDERS": {"t": {"base_url": "https://t.example",
                                       "credentials": {"k": "K"},
                                       "auth": {"header": "X", "template": "{nope}"}}}},
            'APIGW_PROVIDERS["t"]["auth"]["template"] = \'{nope}\': unknown field',
        ),
        (
            {"APIGW_FIELD_SOURCES": {"bpm": ["beatport", "tidal"]}},
            "APIGW_FIELD_SOURCES[\"bpm\"] = ['beatport', 'tidal']: unknown provider 'tidal'",
        ),
    ],
)  # fmt: skip
def test_invalid_declarations_are_one_line_naming_the_setting(values, message):
    with pytest.raises(ConfigError) as error:
        parse(values)
    assert str(error.value).startswith(message), str(error.value)


# -- per-field source priority ----------------------------------------------------------------


def test_field_sources_pick_each_field_from_its_first_listed_provider():
    results = {
        "spotify": ProviderResult("ok", {"bpm": 124.4, "key": "D# major", "camelot_key": "5B",
                                         "spotify_id": "x"}),
        "beatport": ProviderResult("ok", {"bpm": 124.0, "key": "C minor", "camelot_key": "5A",
                                          "label": "Roulé"}),
        "acousticbrainz": ProviderResult("ok", {"bpm": 124.9}),
        "discogs": ProviderResult("ok", {"label": "Roule (2)"}),
    }  # fmt: skip
    # Without the setting: the waterfall order, first source wins (today's rule).
    assert merge_fields(results, {}) == {
        "bpm": 124.4, "key": "D# major", "camelot_key": "5B", "spotify_id": "x", "label": "Roulé"
    }  # fmt: skip
    sources = {"bpm": ["acousticbrainz", "beatport"], "key": ["beatport"], "label": ["discogs"]}
    assert merge_fields(results, sources) == {
        "bpm": 124.9,
        "key": "C minor",
        "camelot_key": "5A",  # follows key
        "spotify_id": "x",
        "label": "Roule (2)",
    }
    # A listed provider without the field gives way to the next, then to the waterfall order.
    assert merge_fields(results, {"bpm": ["discogs"]})["bpm"] == 124.4


# -- Beatport ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ({"name": "G Minor", "camelot_number": 6, "camelot_letter": "A"}, ("G minor", "6A")),
        ({"name": "Eb Major"}, ("D# major", "5B")),
        ({"name": "F♯ minor"}, ("F# minor", "11A")),
        ({"name": "A Minor"}, ("A minor", "8A")),
        ({"name": "Db Major", "camelot_number": 13, "camelot_letter": "B"}, ("C# major", "3B")),
        ({"name": "H Moll"}, None),
        (None, None),
    ],
)
def test_beatport_keys_are_written_as_the_other_sources_write_them(key, expected):
    assert beatport_key(key) == expected


def test_beatport_search_then_track_lookup_on_the_recorded_shapes():
    search = load("beatport/SYNTHETIC_beets-beatport4_search_tracks.json")
    detail = load("beatport/SYNTHETIC_beets-beatport4_track_detail_3001.json")
    client = BeatportClient()
    fetch = FakeFetch(client, routes({"/catalog/search/": (200, search),
                                      "/catalog/tracks/3001/": (200, detail)}))  # fmt: skip
    track = TrackContext(artist="Synthwave Runner", title="Midnight Circuit (Original Mix)")
    result = enrich(client, track, fetch)
    assert result.status == "ok"
    assert result.fields == {
        "beatport_id": 3001,
        "bpm": 126.0,
        "key": "A minor",
        "camelot_key": "8A",
        "genre": "House",
        "sub_genre": "Melodic House & Techno",
        "mix_name": "Original Mix",
    }
    assert fetch.calls[0].params == (
        ("q", "Synthwave Runner Midnight Circuit (Original Mix)"),
        ("type", "tracks"),
        ("per_page", "5"),
    )
    # The other track of the page is by another artist: not a match.
    other = TrackContext(artist="Somebody Else", title="Digital Sunrise")
    fetch = FakeFetch(client, routes({"/catalog/search/": (200, search)}))
    assert enrich(client, other, fetch).status == "not_found"


def _poster(answers):
    requests = []

    async def post(headers, body):
        requests.append(body.decode())
        return answers.pop(0)

    return post, requests


def _bearer(auth):
    async def apply():
        headers = {}
        await auth.apply(headers, [])
        return headers["Authorization"]

    return deferred_from_coro(apply())


@pytest_twisted.ensureDeferred
async def test_beatport_tokens_are_refreshed_with_the_refresh_token():
    clock = FakeClock()
    fixture = load("beatport/SYNTHETIC_beets-beatport4_auth_token.json")  # no token_type
    post, requests = _poster(
        [
            (200, fixture),
            (200, {"access_token": "second", "expires_in": 3600, "refresh_token": "r2",
                   "token_type": "Bearer"}),
            (400, {"error": "invalid_grant"}),
            (200, {"access_token": "third", "expires_in": 3600, "refresh_token": "r3"}),
        ]
    )  # fmt: skip
    auth = BeatportAuth(Secret("key"), Secret("secret"), post, clock, "beatport")
    assert await _bearer(auth) == "Bearer new_access_tok_abc123"
    assert requests[0] == "grant_type=client_credentials&client_id=key&client_secret=secret"
    clock.advance(3600 - 61)  # more than min(60 s, 10 %) left: the same token
    assert await _bearer(auth) == "Bearer new_access_tok_abc123"
    clock.advance(2)
    assert await _bearer(auth) == "Bearer second"
    assert requests[1] == (
        "grant_type=refresh_token&refresh_token=new_refresh_tok_xyz789"
        "&client_id=key&client_secret=secret"
    )
    auth.invalidate()  # a 401: the refresh token is refused, a new grant is asked
    assert await _bearer(auth) == "Bearer third"
    assert requests[2].startswith("grant_type=refresh_token&refresh_token=r2&")
    assert requests[3].startswith("grant_type=client_credentials&")
    assert auth.refreshes == 1


@pytest_twisted.ensureDeferred
async def test_a_refused_beatport_grant_is_final():
    post, requests = _poster([(401, {"error": "invalid_client"})])
    auth = BeatportAuth(Secret("key"), Secret("bad"), post, FakeClock(), "beatport")
    with pytest.raises(AuthError, match="token request refused \\(HTTP 401, invalid_client\\)"):
        await _bearer(auth)
    with pytest.raises(AuthError):
        await _bearer(auth)
    assert len(requests) == 1


# -- AcousticBrainz ----------------------------------------------------------------------------

DA_FUNK_MBID = "5461baff-c7dc-5874-9dfc-61fae9a6dad5"


def test_acousticbrainz_fields_of_the_recorded_document():
    data = load("acousticbrainz/beets_acousticbrainz_data.json")  # low + high level in one
    fields = document_fields(data, data)
    assert (fields["bpm"], fields["key"], fields["camelot_key"]) == (162.5, "A minor", "8A")
    assert fields["acousticbrainz_highlevel"]["danceability"] == {
        "value": "not_danceable",
        "probability": 0.856,
    }
    assert fields["acousticbrainz_highlevel"]["genre_electronic"] == {
        "value": "ambient",
        "probability": 0.602,
    }
    assert len(fields["acousticbrainz_highlevel"]) == 18
    assert document_fields(None, None) == {}


@pytest.fixture(scope="module")
def small_catalog():
    return Catalog([("Da Funk", ("Daft Punk",), "french house"),
                    ("I Feel Love", ("Donna Summer",), "disco")])  # fmt: skip


@pytest.mark.parametrize("archive", [None, "tar", "tar.gz", "zip"])
def test_dumps_are_read_from_a_directory_or_an_archive(tmp_path, small_catalog, archive):
    path = write_dumps(small_catalog, tmp_path / "dumps", archive)
    reader = DumpReader(path)
    low = reader.read("lowlevel", DA_FUNK_MBID)
    high = reader.read("highlevel", DA_FUNK_MBID)
    assert low is not None and low["rhythm"]["bpm"] == 124.933858678
    assert high is not None and high["highlevel"]["danceability"]["value"] == "danceable"
    assert reader.read("lowlevel", "00000000-0000-0000-0000-000000000000") is None
    reader.close()


def test_a_path_that_is_no_dump_is_one_clear_error(tmp_path):
    bad = tmp_path / "dumps.tar"
    bad.write_text("not an archive")
    with pytest.raises(ConfigError, match=r"APIGW_ACOUSTICBRAINZ_DUMPS = .*not a directory or"):
        DumpReader(bad).read("lowlevel", DA_FUNK_MBID)


def test_without_an_mbid_acousticbrainz_is_skipped():
    client = AcousticBrainzClient(base_url="https://acousticbrainz.org/api/v1")
    fetch = FakeFetch(client, routes({}))
    result = enrich(client, TrackContext(artist="A", title="B"), fetch)
    assert (result.status, result.reason) == (
        "skipped",
        "no MusicBrainz ID (run musicbrainz first)",
    )


def test_the_dead_service_host_is_never_called_and_reported_once(caplog):
    client = AcousticBrainzClient(base_url="https://acousticbrainz.org/api/v1")
    fetch = FakeFetch(client, routes({}))  # any call fails the test
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        track = TrackContext(artist="Daft Punk", title="Da Funk", musicbrainz_id=DA_FUNK_MBID)
        result = enrich(client, track, fetch)
        assert (result.status, result.reason) == ("skipped", "service shut down (use the dumps)")
    assert fetch.calls == []
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1
    assert "AcousticBrainz service was shut down" in messages[0]
    assert "was not called (its host is gone)" in messages[0]
    assert "APIGW_ACOUSTICBRAINZ_DUMPS" in messages[0]


def test_the_dead_service_elsewhere_is_asked_once_and_410_is_no_failure(caplog):
    client = AcousticBrainzClient(base_url="http://127.0.0.1:1/acousticbrainz/api/v1")
    gone = (410, {"message": "AcousticBrainz has been shut down"})
    fetch = FakeFetch(client, routes({f"/{DA_FUNK_MBID}/low-level": gone}))
    caplog.set_level(logging.WARNING)
    for _ in range(2):
        track = TrackContext(musicbrainz_id=DA_FUNK_MBID, isrc="GBFB09633995")
        assert enrich(client, track, fetch).status == "skipped"
    assert [c.data_type for c in fetch.calls] == ["probe"]  # never cached, asked once
    assert len(caplog.records) == 1 and "answered HTTP 410" in caplog.records[0].getMessage()
    assert client.classify(410, None).value == "client_error"  # not retried, not a breaker failure


def test_a_dump_mirror_is_read_in_the_dumps_layout(small_catalog, tmp_path):
    from scrapy_apigw.sandbox.acousticbrainz import highlevel_document, lowlevel_document

    track = small_catalog.tracks[0]
    client = AcousticBrainzClient(mirror=True, base_url="https://ab-mirror.example/dumps")
    fetch = FakeFetch(
        client,
        routes(
            {
                f"/lowlevel/54/6/{DA_FUNK_MBID}-0.json": (200, lowlevel_document(track)),
                f"/highlevel/54/6/{DA_FUNK_MBID}-0.json": (200, highlevel_document(track)),
            }
        ),
    )
    result = enrich(client, TrackContext(musicbrainz_id=DA_FUNK_MBID), fetch)
    assert (result.fields["bpm"], result.fields["key"]) == (124.9, "D# major")
    assert {c.data_type for c in fetch.calls} == {"features"}


def test_the_dumps_setting_is_a_path_or_a_mirror_url():
    assert parse({"APIGW_ACOUSTICBRAINZ_DUMPS": "/data/ab"}).options["acousticbrainz"] == {
        "dumps": "/data/ab"
    }
    mirror = parse({"APIGW_ACOUSTICBRAINZ_DUMPS": "https://ab.example/dumps/"})
    assert mirror.providers["acousticbrainz"].base_url == "https://ab.example/dumps"
    assert mirror.providers["acousticbrainz"].domains == ("ab.example",)
    # Without dumps: the former API, never retried.
    assert parse().providers["acousticbrainz"].max_retries == 0
    routed = mirror.routed_to_sandbox("http://127.0.0.1:9")
    assert routed.providers["acousticbrainz"].base_url == "https://ab.example/dumps"


@pytest.mark.parametrize(
    ("title", "chosen"),
    [("Da Funk", 2), ("Da Funk (Original Mix)", 2), ("Da Funk (Extended Mix)", 1)],
)
def test_beatport_takes_the_version_the_title_names_and_the_original_without_one(title, chosen):
    artists = [{"id": 7, "name": "Daft Punk"}]
    search = {
        "tracks": [
            {"id": 1, "name": "Da Funk", "mix_name": "Extended Mix", "artists": artists},
            {"id": 2, "name": "Da Funk", "mix_name": "Original Mix", "artists": artists},
        ]
    }
    client = BeatportClient()
    fetch = FakeFetch(
        client,
        routes({"/catalog/search/": (200, search), f"/catalog/tracks/{chosen}/": (404, None)}),
    )
    result = enrich(client, TrackContext(artist="Daft Punk", title=title), fetch)
    assert result.fields["beatport_id"] == chosen
