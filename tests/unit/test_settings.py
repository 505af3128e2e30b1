"""GatewaySettings: APIGW_* parsing, provider overrides, credentials and sandbox routing."""

import dataclasses
import logging

import pytest
from scrapy.settings import Settings

from scrapy_apigw.exceptions import ConfigError
from scrapy_apigw.providers.registry import (
    DEFAULT_PROVIDERS,
    FIELD_READERS,
    ProviderConfig,
    build_registry,
    provider_for_url,
)
from scrapy_apigw.secrets import Secret, redact_url
from scrapy_apigw.settings import GatewaySettings, settings_at_start


def parse(values=None, environ=None):
    return GatewaySettings.from_settings(Settings(values or {}), environ=environ or {})


def test_defaults_match_the_provider_table():
    spotify = DEFAULT_PROVIDERS["spotify"]
    assert (spotify.rate, spotify.burst) == (10, 20)
    assert (spotify.failure_threshold, spotify.open_timeout, spotify.success_threshold) == (
        10,
        120,
        2,
    )
    mb = DEFAULT_PROVIDERS["musicbrainz"]
    assert (mb.rate, mb.burst, mb.failure_threshold, mb.open_timeout) == (1, 1, 3, 60)
    # Its "too fast" 503 is recognised by its body (MusicBrainzClient.classify), not by status.
    assert mb.rate_limit_statuses == frozenset({429})
    assert (DEFAULT_PROVIDERS["lastfm"].rate, DEFAULT_PROVIDERS["lastfm"].burst) == (5, 5)
    assert DEFAULT_PROVIDERS["beatport"].open_timeout == 90
    discogs = DEFAULT_PROVIDERS["discogs"]
    assert (discogs.rate, discogs.window_limit, discogs.window) == (1, 60, 60.0)
    assert spotify.ttl("audio_features") == 90 * 86400
    assert spotify.ttl("search") == 7 * 86400
    assert DEFAULT_PROVIDERS["musicbrainz"].ttl("isrc") == 90 * 86400
    assert DEFAULT_PROVIDERS["lastfm"].ttl("tags") == 14 * 86400
    assert DEFAULT_PROVIDERS["discogs"].ttl("release") == 60 * 86400
    assert spotify.token_url == "https://accounts.spotify.com/api/token"


def test_one_setting_overrides_a_field_and_keeps_the_rest():
    gw = parse(
        {
            "APIGW_PROVIDERS": {
                "musicbrainz": {"rate": 0.5, "base_url": "https://mb.example.org/ws/2/"}
            }
        }
    )
    mb = gw.providers["musicbrainz"]
    assert mb.rate == 0.5
    assert mb.base_url == "https://mb.example.org/ws/2"
    assert mb.failure_threshold == 3


def test_a_new_provider_can_be_added_and_one_removed():
    registry = build_registry(
        {"deezer": {"base_url": "https://api.deezer.com", "rate": 8}, "beatport": None}
    )
    assert registry["deezer"].rate == 8
    assert "beatport" not in registry


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"spotify": {"rte": 3}},
            'APIGW_PROVIDERS["spotify"]["rte"] = 3: unknown field; known: [',
        ),
        ({"spotify": {"rate": 0}}, 'APIGW_PROVIDERS["spotify"]["rate"] = 0: expected a number > 0'),
        (
            {"spotify": {"jitter": 1.5}},
            'APIGW_PROVIDERS["spotify"]["jitter"] = 1.5: expected a number >= 0 and < 1',
        ),
        (
            {"newapi": {"rate": 3}},
            "APIGW_PROVIDERS[\"newapi\"] = {'rate': 3}: a new provider needs a 'base_url'",
        ),
        (
            {"spotify": 5},
            'APIGW_PROVIDERS["spotify"] = 5: expected a dict of field -> value, or None',
        ),
    ],
)
def test_bad_provider_overrides_are_clear_errors(overrides, message):
    with pytest.raises(ConfigError) as raised:
        build_registry(overrides)
    assert str(raised.value).startswith(message)


def test_every_provider_field_has_a_reader():
    # A field added to ProviderConfig without its reader could not be set in APIGW_PROVIDERS.
    fields = {f.name for f in dataclasses.fields(ProviderConfig)} - {"name"}
    assert fields == set(FIELD_READERS)


@pytest.mark.parametrize(
    "field, given, expected",
    [
        ("rate", "10", 10.0),
        ("rate", " 2.5 ", 2.5),
        ("burst", "20", 20),
        ("burst", 20.0, 20),
        ("window_limit", "30", 30),
        ("window", "30", 30.0),
        ("failure_threshold", "4", 4),
        ("open_timeout", "7.5", 7.5),
        ("success_threshold", "3", 3),
        ("max_retries", "0", 0),
        ("backoff_base", "0.5", 0.5),
        ("backoff_cap", "10", 10.0),
        ("jitter", "0.1", 0.1),
        ("max_retry_after", "120", 120.0),
        ("timeout", "15", 15.0),
        ("not_found_ttl", "3600", 3600.0),
        ("retry_statuses", ["500", 503], frozenset({500, 503})),
        ("rate_limit_statuses", "429,503", frozenset({429, 503})),
        ("enabled", "false", False),
        ("enabled", 0, False),
        ("domains", "API.Example.org, example.org", ("api.example.org", "example.org")),
        ("token_url", "", None),
    ],
)
def test_numeric_and_textual_field_values_are_read_as_scrapy_reads_settings(field, given, expected):
    extra = {"window_limit": 30, "window": 30} if field in ("window", "window_limit") else {}
    registry = build_registry({"lastfm": {**extra, field: given}})
    value = getattr(registry["lastfm"], field)
    assert value == expected and type(value) is type(expected)


def test_cache_ttl_strings_are_numbers_and_merge_into_the_defaults():
    spotify = build_registry({"spotify": {"cache_ttl": {"search": "60"}}})["spotify"]
    assert spotify.ttl("search") == 60.0
    assert spotify.ttl("track") == 30 * 86400


def test_providers_given_as_json_text_as_on_the_command_line():
    # scrapy crawl -s 'APIGW_PROVIDERS={"spotify": {"rate": "10"}, "beatport": null}'
    gw = parse({"APIGW_PROVIDERS": '{"spotify": {"rate": "10"}, "beatport": null}'})
    assert gw.providers["spotify"].rate == 10.0
    assert "beatport" not in gw.providers


#: One bad value per setting and field, and the exact one-line message naming both and the value.
BAD_SETTINGS = [
    (
        {"APIGW_PROVIDERS": {"spotify": {"rate": "ten"}}},
        'APIGW_PROVIDERS["spotify"]["rate"] = \'ten\': expected a number > 0 (req/s)',
    ),
    (
        {"APIGW_PROVIDERS": [1, 2]},
        "APIGW_PROVIDERS = [1, 2]: expected a dict (or its JSON)",
    ),
    (
        {"APIGW_PROVIDERS": "{not json"},
        "APIGW_PROVIDERS = '{not json': expected a dict (or its JSON)",
    ),
    (
        {"APIGW_PROVIDERS": {"spotify": {"burst": 2.5}}},
        'APIGW_PROVIDERS["spotify"]["burst"] = 2.5: expected a whole number >= 1 (requests)',
    ),
    (
        {"APIGW_PROVIDERS": {"spotify": {"rate": True}}},
        'APIGW_PROVIDERS["spotify"]["rate"] = True: expected a number > 0 (req/s)',
    ),
    (
        {"APIGW_PROVIDERS": {"spotify": {"rate": "nan"}}},
        'APIGW_PROVIDERS["spotify"]["rate"] = \'nan\': expected a number > 0 (req/s)',
    ),
    (
        {"APIGW_PROVIDERS": {"spotify": {"timeout": -1}}},
        'APIGW_PROVIDERS["spotify"]["timeout"] = -1: expected a number > 0 (s)',
    ),
    (
        {"APIGW_PROVIDERS": {"spotify": {"max_retries": "-1"}}},
        'APIGW_PROVIDERS["spotify"]["max_retries"] = \'-1\': expected a whole number >= 0',
    ),
    (
        {"APIGW_PROVIDERS": {"spotify": {"retry_statuses": [500, 700]}}},
        'APIGW_PROVIDERS["spotify"]["retry_statuses"][1] = 700: '
        "expected a whole number >= 100 and <= 599",
    ),
    (
        {"APIGW_PROVIDERS": {"spotify": {"rate_limit_statuses": 429}}},
        'APIGW_PROVIDERS["spotify"]["rate_limit_statuses"] = 429: '
        "expected a list of HTTP status codes",
    ),
    (
        {"APIGW_PROVIDERS": {"spotify": {"cache_ttl": {"track": "a month"}}}},
        'APIGW_PROVIDERS["spotify"]["cache_ttl"]["track"] = \'a month\': '
        "expected a number >= 0 (s)",
    ),
    (
        {"APIGW_PROVIDERS": {"spotify": {"enabled": "maybe"}}},
        'APIGW_PROVIDERS["spotify"]["enabled"] = \'maybe\': '
        "expected True or False (or 1/0, 'true'/'false')",
    ),
    (
        {"APIGW_PROVIDERS": {"spotify": {"base_url": "ftp://x.org"}}},
        'APIGW_PROVIDERS["spotify"]["base_url"] = \'ftp://x.org\': '
        "expected an http(s) URL with a host",
    ),
    (
        {"APIGW_PROVIDERS": {"discogs": {"window": None}}},
        "APIGW_PROVIDERS[\"discogs\"]: 'window_limit' and 'window' go together, "
        "got window_limit=60, window=None",
    ),
    ({"APIGW_ENABLED": "maybe"}, "APIGW_ENABLED = 'maybe': expected True or False"),
    ({"APIGW_PIPELINE_ENABLED": 2}, "APIGW_PIPELINE_ENABLED = 2: expected True or False"),
    ({"APIGW_SANDBOX": "yes please"}, "APIGW_SANDBOX = 'yes please': expected True or False"),
    ({"APIGW_CACHE_ENABLED": "no"}, "APIGW_CACHE_ENABLED = 'no': expected True or False"),
    (
        {"APIGW_SANDBOX_SPEED": "fast"},
        "APIGW_SANDBOX_SPEED = 'fast': expected a number > 0",
    ),
    ({"APIGW_SANDBOX_SPEED": 0}, "APIGW_SANDBOX_SPEED = 0: expected a number > 0"),
    (
        {"APIGW_SANDBOX_DECOYS": 1.5},
        "APIGW_SANDBOX_DECOYS = 1.5: expected a number >= 0 and <= 1",
    ),
    (
        {"APIGW_SANDBOX_MESSY_SITE": "lots"},
        "APIGW_SANDBOX_MESSY_SITE = 'lots': expected a number >= 0 and <= 1",
    ),
    (
        {"APIGW_MIN_MATCH_CONFIDENCE": 1.5},
        "APIGW_MIN_MATCH_CONFIDENCE = 1.5: expected a number >= 0 and <= 1",
    ),
    (
        {"APIGW_MIN_MATCH_CONFIDENCE": "high"},
        "APIGW_MIN_MATCH_CONFIDENCE = 'high': expected a number >= 0 and <= 1",
    ),
    (
        {"APIGW_SANDBOX_PORT": 70000},
        "APIGW_SANDBOX_PORT = 70000: expected a whole number >= 0 and <= 65535",
    ),
    (
        {"APIGW_METRICS_PORT": 70000},
        "APIGW_METRICS_PORT = 70000: expected a whole number >= 0 and <= 65535",
    ),
    (
        {"APIGW_METRICS_PORT": "http"},
        "APIGW_METRICS_PORT = 'http': expected a whole number >= 0 and <= 65535",
    ),
    ({"APIGW_METRICS_HOST": 127}, "APIGW_METRICS_HOST = 127: expected a non-empty string"),
    (
        {"APIGW_SANDBOX_URL": "localhost:8000"},
        "APIGW_SANDBOX_URL = 'localhost:8000': expected an http(s) URL with a host",
    ),
    (
        {"APIGW_CACHE_TIMEOUT": "1s"},
        "APIGW_CACHE_TIMEOUT = '1s': expected a number > 0 (s)",
    ),
    (
        {"APIGW_STALE_TTL": -1},
        "APIGW_STALE_TTL = -1: expected a number >= 0 (s)",
    ),
    (
        {"APIGW_REFUSAL_TTL": "a day"},
        "APIGW_REFUSAL_TTL = 'a day': expected a number >= 0 (s)",
    ),
    ({"APIGW_CACHE_NAMESPACE": ""}, "APIGW_CACHE_NAMESPACE = '': expected a non-empty string"),
    ({"APIGW_CACHE_PATH": 5}, "APIGW_CACHE_PATH = 5: expected a non-empty string"),
    ({"APIGW_USER_AGENT": ["x"]}, "APIGW_USER_AGENT = ['x']: expected a non-empty string"),
    (
        {"APIGW_REDIS_URL": "not a url"},
        "APIGW_REDIS_URL = 'not a url': the Redis URL must start with redis:// or rediss://, "
        "got none://",
    ),
    (
        {"APIGW_REDIS_URL": "redis://localhost:port/0"},
        "APIGW_REDIS_URL = 'redis://localhost:port/0': the Redis URL has an invalid port",
    ),
    (
        {"APIGW_WATERFALL": ["spotify", "tidal"]},
        "APIGW_WATERFALL = ['spotify', 'tidal']: unknown provider 'tidal'; known: [",
    ),
    ({"APIGW_WATERFALL": 5}, "APIGW_WATERFALL = 5: expected a list of strings"),
    (
        {"APIGW_INPUT_FIELDS": {"album": "x"}},
        "APIGW_INPUT_FIELDS[\"album\"] = 'x': unknown input; known: [",
    ),
    (
        {"APIGW_INPUT_FIELDS": {"artist": ""}},
        "APIGW_INPUT_FIELDS[\"artist\"] = '': expected a non-empty string",
    ),
    ({"APIGW_INPUT_FIELDS": ["artist"]}, "APIGW_INPUT_FIELDS = ['artist']: expected a dict"),
]


@pytest.mark.parametrize("values, message", BAD_SETTINGS)
def test_each_bad_setting_is_one_line_naming_the_setting_field_and_value(values, message):
    with pytest.raises(ConfigError) as raised:
        parse(values)
    text = str(raised.value)
    assert text.startswith(message)
    assert "\n" not in text


def test_a_bad_redis_url_never_shows_its_password():
    with pytest.raises(ConfigError) as raised:
        parse({"APIGW_REDIS_URL": "redis://:hunter2@localhost/zero"})
    text = str(raised.value)
    assert text.startswith("APIGW_REDIS_URL = 'redis://localhost/zero': ")
    assert "must be a number" in text and "hunter2" not in text


def test_a_bad_credential_is_named_without_its_value():
    with pytest.raises(ConfigError) as raised:
        parse({"APIGW_DISCOGS_TOKEN": {"token": "hunter2"}})
    text = str(raised.value)
    assert text.startswith("APIGW_DISCOGS_TOKEN: expected a string, got a dict")
    assert "hunter2" not in text


def test_top_level_numbers_and_switches_accept_command_line_strings():
    gw = parse(
        {
            "APIGW_SANDBOX_SPEED": "20",
            "APIGW_SANDBOX_PORT": "8123",
            "APIGW_CACHE_TIMEOUT": "0.5",
            "APIGW_CACHE_ENABLED": "False",
            "APIGW_PIPELINE_ENABLED": "0",
            "APIGW_WATERFALL": "lastfm,spotify",
            "APIGW_INPUT_FIELDS": '{"artist": "performer"}',
            "APIGW_REDIS_URL": "redis://:pw@localhost:6380/2",
            "APIGW_SANDBOX_URL": "http://127.0.0.1:9000/",
        }
    )
    assert (gw.sandbox_speed, gw.sandbox_port, gw.cache_timeout) == (20.0, 8123, 0.5)
    assert (gw.cache_enabled, gw.pipeline_enabled) == (False, False)
    assert gw.waterfall == ("lastfm", "spotify")
    assert gw.input_fields["artist"] == "performer"
    assert gw.redis_url == "redis://:pw@localhost:6380/2"
    assert gw.sandbox_url == "http://127.0.0.1:9000"


def test_at_start_a_bad_setting_is_logged_as_one_error_line_and_raised(caplog):
    with caplog.at_level(logging.ERROR), pytest.raises(ConfigError):
        settings_at_start(Settings({"APIGW_CACHE_TIMEOUT": "soon"}))
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "ERROR",
            "apigw: invalid setting: APIGW_CACHE_TIMEOUT = 'soon': expected a number > 0 (s)",
        )
    ]


def test_disabled_gateway_reads_no_other_setting():
    assert settings_at_start(Settings({"APIGW_ENABLED": "False", "APIGW_PROVIDERS": [1]})) is None


def test_urls_belong_to_a_provider_by_prefix_token_url_or_domain():
    registry = build_registry()
    assert provider_for_url(registry, "https://api.spotify.com/v1/search?q=x").name == "spotify"
    assert provider_for_url(registry, "https://accounts.spotify.com/api/token").name == "spotify"
    assert provider_for_url(registry, "https://musicbrainz.org/ws/2/isrc/X").name == "musicbrainz"
    assert provider_for_url(registry, "https://musicbrainz.org/doc/x").name == "musicbrainz"
    assert provider_for_url(registry, "https://example.com/api.spotify.com/v1") is None
    assert provider_for_url(registry, "https://www.discogs.com/release/1") is None


def test_credentials_come_from_settings_then_environment_and_are_secrets():
    gw = parse(
        {"APIGW_SPOTIFY_CLIENT_ID": "id-from-settings"},
        {"SPOTIFY_CLIENT_SECRET": "s3cr3t", "SPOTIFY_CLIENT_ID": "env-id"},
    )
    assert gw.credential("spotify", "client_id") == Secret("id-from-settings")
    secret = gw.credential("spotify", "client_secret")
    assert isinstance(secret, Secret) and secret.reveal() == "s3cr3t"
    assert "s3cr3t" not in repr(gw) and "s3cr3t" not in str(gw)
    assert gw.missing_credentials("spotify") == []
    assert gw.missing_credentials("lastfm") == ["APIGW_LASTFM_API_KEY"]


def test_a_musicbrainz_user_agent_it_would_refuse_is_a_credential_problem():
    named = parse({}, {"MUSICBRAINZ_USER_AGENT": "MyCrawler/1.0 ( me@example.org )"})
    assert named.credential_problem("musicbrainz") is None
    bare = parse({"APIGW_MUSICBRAINZ_USER_AGENT": "scrapy-apigw/0.2.0"})
    assert bare.credential_problem("musicbrainz") == (
        "APIGW_MUSICBRAINZ_USER_AGENT = 'scrapy-apigw/0.2.0': no contact User-Agent; MusicBrainz "
        "throttles or blocks anonymous clients: name your application and a contact, e.g. "
        "'MyCrawler/1.0 ( me@example.org )' (or set such an APIGW_USER_AGENT)"
    )
    library = parse({}, {"MUSICBRAINZ_USER_AGENT": "python-requests/2.32.3"})
    assert "generic User-Agent" in library.credential_problem("musicbrainz")
    assert parse({}).credential_problem("musicbrainz") is None  # missing: missing_credentials
    assert bare.credential_problem("discogs") is None


def test_musicbrainz_takes_apigw_user_agent_only_when_it_names_a_contact():
    contact = "MyCrawler/1.0 ( https://example.org/crawler )"
    assert parse({"APIGW_USER_AGENT": contact}).credential("musicbrainz", "user_agent") == contact
    assert parse({"APIGW_USER_AGENT": "MyCrawler/1.0"}).missing_credentials("musicbrainz") == [
        "APIGW_MUSICBRAINZ_USER_AGENT"
    ]
    assert parse({}).missing_credentials("musicbrainz") == ["APIGW_MUSICBRAINZ_USER_AGENT"]
    own = parse(
        {"APIGW_USER_AGENT": contact, "APIGW_MUSICBRAINZ_USER_AGENT": "Mb/2 ( mb@example.org )"}
    )
    assert own.credential("musicbrainz", "user_agent") == "Mb/2 ( mb@example.org )"


def test_sandbox_mode_uses_sandbox_credentials_never_environment_ones():
    gw = parse({"APIGW_SANDBOX": True}, {"LASTFM_API_KEY": "real-key"})
    assert gw.credential("lastfm", "api_key").reveal() == "sandbox-lastfm-key"


def test_routing_to_the_sandbox_rewrites_urls_and_scales_time():
    gw = parse({"APIGW_SANDBOX": True, "APIGW_SANDBOX_SPEED": 10})
    routed = gw.routed_to_sandbox("http://127.0.0.1:9999")
    spotify = routed.providers["spotify"]
    assert spotify.base_url == "http://127.0.0.1:9999/spotify/v1"
    assert spotify.token_url == "http://127.0.0.1:9999/spotify/accounts/api/token"
    assert spotify.domains == ()
    assert spotify.rate == 100
    assert routed.providers["discogs"].window == 6.0
    assert routed.providers["musicbrainz"].open_timeout == 6.0
    assert routed.providers["musicbrainz"].backoff_base == 0.1
    # Beatport is imitated by the sandbox (issue 9): routed, its token endpoint too.
    assert routed.providers["beatport"].base_url == "http://127.0.0.1:9999/beatport/v4"
    assert routed.providers["beatport"].token_url == (
        "http://127.0.0.1:9999/beatport/v4/auth/o/token/"
    )


def test_routing_to_the_sandbox_leaves_a_provider_it_does_not_imitate_as_configured():
    gw = parse(
        {
            "APIGW_SANDBOX": True,
            "APIGW_PROVIDERS": {"deezer": {"base_url": "https://api.deezer.com", "rate": 8}},
        }
    )
    routed = gw.routed_to_sandbox("http://127.0.0.1:9999")
    assert routed.providers["deezer"].base_url == "https://api.deezer.com"
    assert routed.providers["deezer"].rate == 8


def test_input_fields_and_waterfall_are_validated():
    assert (
        parse({"APIGW_INPUT_FIELDS": {"artist": "performer"}}).input_fields["artist"] == "performer"
    )
    assert parse({"APIGW_WATERFALL": []}).waterfall == (
        "spotify",
        "musicbrainz",
        "discogs",
        "lastfm",
    )


def test_secrets_never_show_and_urls_are_redacted():
    secret = Secret("abc123")
    assert "abc123" not in f"{secret} {secret!r} {secret:>10}"
    redacted = redact_url(
        "https://u:pw@ws.audioscrobbler.com/2.0/?method=track.getInfo&api_key=abc123&track=x"
    )
    assert "abc123" not in redacted and "pw" not in redacted
    assert "method=track.getInfo" in redacted and "track=x" in redacted


def test_stale_and_refusal_ttls_default_to_30_days_and_a_day_and_accept_strings():
    gw = parse({})
    assert (gw.stale_ttl, gw.refusal_ttl) == (2_592_000.0, 86_400.0)
    gw = parse({"APIGW_STALE_TTL": "0", "APIGW_REFUSAL_TTL": "3600"})
    assert (gw.stale_ttl, gw.refusal_ttl) == (0.0, 3600.0)


def test_min_match_confidence_defaults_to_0_8_and_reads_command_line_strings():
    assert GatewaySettings.from_settings(Settings({}), environ={}).min_match_confidence == 0.8
    parsed = GatewaySettings.from_settings(
        Settings({"APIGW_MIN_MATCH_CONFIDENCE": "0.9"}), environ={}
    )
    assert parsed.min_match_confidence == 0.9


def test_in_process_sandbox_has_decoys_and_a_messy_site_unless_told_otherwise():
    """Issue 9: the sandbox catalog is like the real ones by default (0.3 of each); the two
    settings reach the in-process sandbox's config."""
    from scrapy.utils.test import get_crawler

    from scrapy_apigw.gateway import Gateway

    default = parse({"APIGW_SANDBOX": True})
    assert (default.sandbox_decoys, default.sandbox_messy_site) == (0.3, 0.3)
    config = Gateway(get_crawler(), default).sandbox.config  # type: ignore[union-attr]
    assert (config.decoys, config.messy_site) == (0.3, 0.3)
    off = parse({"APIGW_SANDBOX": True, "APIGW_SANDBOX_DECOYS": "0", "APIGW_SANDBOX_MESSY_SITE": 0})
    assert (off.sandbox_decoys, off.sandbox_messy_site) == (0.0, 0.0)
    config = Gateway(get_crawler(), off).sandbox.config  # type: ignore[union-attr]
    assert (config.decoys, config.messy_site, config.speed) == (0.0, 0.0, 1.0)
