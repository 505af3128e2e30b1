"""GatewaySettings: APIGW_* parsing, provider overrides, credentials and sandbox routing."""

import pytest
from scrapy.settings import Settings

from scrapy_apigw.exceptions import ConfigError
from scrapy_apigw.providers.registry import DEFAULT_PROVIDERS, build_registry, provider_for_url
from scrapy_apigw.secrets import Secret, redact_url
from scrapy_apigw.settings import GatewaySettings


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
    assert 503 in mb.rate_limit_statuses
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
        ({"spotify": {"rte": 3}}, "unknown field"),
        ({"spotify": {"rate": 0}}, "rate must be > 0"),
        ({"spotify": {"jitter": 1.5}}, "jitter"),
        ({"newapi": {"rate": 3}}, "needs a base_url"),
        ({"spotify": 5}, "must be a dict"),
    ],
)
def test_bad_provider_overrides_are_clear_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        build_registry(overrides)


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
    # Beatport is not imitated by the sandbox: left as configured.
    assert routed.providers["beatport"].base_url == "https://api.beatport.com/v4"


def test_input_fields_and_waterfall_are_validated():
    assert (
        parse({"APIGW_INPUT_FIELDS": {"artist": "performer"}}).input_fields["artist"] == "performer"
    )
    with pytest.raises(ConfigError, match="APIGW_INPUT_FIELDS"):
        parse({"APIGW_INPUT_FIELDS": {"album": "x"}})
    with pytest.raises(ConfigError, match="unknown provider"):
        parse({"APIGW_WATERFALL": ["spotify", "tidal"]})


def test_secrets_never_show_and_urls_are_redacted():
    secret = Secret("abc123")
    assert "abc123" not in f"{secret} {secret!r} {secret:>10}"
    redacted = redact_url(
        "https://u:pw@ws.audioscrobbler.com/2.0/?method=track.getInfo&api_key=abc123&track=x"
    )
    assert "abc123" not in redacted and "pw" not in redacted
    assert "method=track.getInfo" in redacted and "track=x" in redacted
