"""Cache keys, the stored format, what may be cached, and Redis URL parsing (no I/O)."""

from __future__ import annotations

import json
import math
import re

import pytest

from scrapy_apigw.cache import (
    CorruptEntry,
    RedisCacheBackend,
    ResponseCache,
    cache_key,
    decode_answer,
    encode_answer,
    parse_redis_url,
)
from scrapy_apigw.exceptions import ConfigError
from scrapy_apigw.providers.base import ApiAnswer, ApiCall
from scrapy_apigw.secrets import SECRET_PARAMS

SEARCH = ApiCall(
    "spotify",
    "search",
    "/search",
    params=(("q", "artist:Daft Punk track:One More Time"), ("type", "track"), ("limit", "5")),
)


def test_key_layout() -> None:
    key = cache_key(SEARCH)
    assert re.fullmatch(r"apigw:v1:spotify:search:[0-9a-f]{32}", key), key
    assert cache_key(SEARCH, namespace="proj:x").startswith("proj:x:v1:spotify:search:")


@pytest.mark.parametrize(
    ("call", "key"),
    [
        (SEARCH, "apigw:v1:spotify:search:524900c5ff1ba5ce991054043141035b"),
        (
            ApiCall(
                "musicbrainz",
                "search",
                "/ws/2/recording",
                params=(
                    ("query", 'artist:"K\u00f6lsch" AND recording:"Grey" \u00e9\u2028\t"\\'),
                    ("fmt", "json"),
                ),
            ),
            "apigw:v1:musicbrainz:search:e44a7ce01189e4b9f8cfaf5df0a281d7",
        ),
        (
            ApiCall(
                "discogs",
                "release",
                "/releases/19498278",
                headers=(("Accept", "application/json"),),
            ),
            "apigw:v1:discogs:release:fcf83117454235e675e4f9fee22d6701",
        ),
        (
            ApiCall(
                "lastfm",
                "track",
                "/2.0/",
                params=(("artist", "R\u00f6yksopp"), ("track", "Eple\x01\x7f")),
            ),
            "apigw:v1:lastfm:track:2ef6bdb8a36e09b6a35927bfe033b9f8",
        ),
    ],
)
def test_keys_are_those_of_earlier_versions(call: ApiCall, key: str) -> None:
    # Keys made by the code of earlier releases (stdlib JSON): the same answers are found
    # after an upgrade, non-ASCII, control characters and escapes included.
    assert cache_key(call) == key


def test_a_lone_surrogate_is_refused_as_before() -> None:
    call = ApiCall("lastfm", "track", "/2.0/", params=(("track", "\ud800"),))
    with pytest.raises(UnicodeEncodeError):
        cache_key(call)


def test_key_ignores_parameter_order_and_header_name_case() -> None:
    shuffled = ApiCall("spotify", "search", "/search", params=tuple(reversed(SEARCH.params)))
    assert cache_key(shuffled) == cache_key(SEARCH)
    a = ApiCall("discogs", "release", "/releases/1", headers=(("Accept", "application/json"),))
    b = ApiCall("discogs", "release", "/releases/1", headers=(("accept", "application/json"),))
    assert cache_key(a) == cache_key(b)


@pytest.mark.parametrize(
    "other",
    [
        ApiCall("spotify", "search", "/search", params=(("q", "x"), ("type", "track"))),
        ApiCall("spotify", "search", "/search2", params=SEARCH.params),
        ApiCall("spotify", "search", "/search", params=SEARCH.params, method="POST"),
        ApiCall("spotify", "search", "/search", params=SEARCH.params, headers=(("Accept", "x"),)),
        ApiCall("spotify", "track", "/search", params=SEARCH.params),
        ApiCall("beatport", "search", "/search", params=SEARCH.params),
    ],
)
def test_key_changes_with_what_is_asked(other: ApiCall) -> None:
    assert cache_key(other) != cache_key(SEARCH)


def test_key_escapes_separator_in_names() -> None:
    call = ApiCall("my:api", "a b", "/x")
    assert cache_key(call).startswith("apigw:v1:my%3Aapi:a%20b:")


@pytest.mark.parametrize(
    "call",
    [
        ApiCall("lastfm", "info", "/", params=(("method", "track.getInfo"), ("api_key", "k"))),
        ApiCall("discogs", "search", "/database/search", params=(("token", "t"),)),
        ApiCall("lastfm", "info", "/", params=(("API_KEY", "k"),)),
        ApiCall("spotify", "track", "/tracks/1", headers=(("Authorization", "Bearer t"),)),
    ],
)
def test_key_refuses_credentials(call: ApiCall) -> None:
    with pytest.raises(ValueError, match="credential"):
        cache_key(call)


def test_every_secret_param_is_refused() -> None:
    for name in SECRET_PARAMS:
        with pytest.raises(ValueError):
            cache_key(ApiCall("x", "y", "/", params=((name, "v"),)))


def test_encode_decode_round_trip() -> None:
    answer = ApiAnswer("ok", 200, {"tracks": [{"name": "Été", "n": 1.5}], "next": None})
    value = encode_answer(answer)
    assert json.loads(value) == {"kind": "ok", "status": 200, "data": answer.data}
    decoded = decode_answer(value)
    assert decoded == ApiAnswer("ok", 200, answer.data, from_cache=True)
    assert decode_answer(encode_answer(ApiAnswer("not_found", 404))) == ApiAnswer(
        "not_found", 404, None, from_cache=True
    )


def test_decode_reads_nan_that_the_stdlib_encoder_writes_and_rfc_8259_forbids() -> None:
    # orjson refuses NaN; the stdlib json reads it, so such an entry is not dropped as corrupt.
    decoded = decode_answer(b'{"kind": "ok", "status": 200, "data": [NaN, 1]}').data
    assert math.isnan(decoded[0]) and decoded[1] == 1


@pytest.mark.parametrize(
    "value",
    [
        b"\xff\xfe",
        b"not json",
        b"[1, 2]",
        b'{"kind": "ok", "status": 200}',
        b'{"kind": "forbidden", "status": 403, "data": null}',
        b'{"kind": "ok", "status": "200", "data": null}',
        b'{"kind": "ok", "status": true, "data": null}',
        b'{"kind": "ok", "status": 1000, "data": null}',
        b"",
    ],
)
def test_decode_rejects_corrupt_values(value: bytes) -> None:
    with pytest.raises(CorruptEntry):
        decode_answer(value)


@pytest.mark.parametrize(
    ("answer", "ttl", "expected"),
    [
        (ApiAnswer("ok", 200, {}), 60.0, True),
        (ApiAnswer("not_found", 404), 60.0, True),
        (ApiAnswer("not_found", 200), 60.0, True),  # e.g. an empty search result
        (ApiAnswer("ok", 429, {}), 60.0, False),  # RFC 6585 §4
        (ApiAnswer("ok", 503, {}), 60.0, False),
        (ApiAnswer("not_found", 500), 60.0, False),
        (ApiAnswer("forbidden", 403), 60.0, False),
        (ApiAnswer("rejected", 400, {"error": "bad"}), 60.0, False),
        (ApiAnswer("ok", 200, {}, from_cache=True), 60.0, False),
        (ApiAnswer("ok", 200, {}), 0.0, False),  # ProviderConfig.ttl: 0 = do not cache
        (ApiAnswer("ok", 200, {}), -1.0, False),
        (ApiAnswer("ok", 200, {}), math.nan, False),
        (ApiAnswer("ok", 200, {}), math.inf, False),
    ],
)
def test_cacheable(answer: ApiAnswer, ttl: float, expected: bool) -> None:
    assert ResponseCache.cacheable(answer, ttl) is expected


@pytest.mark.parametrize(
    ("url", "host", "port", "db", "user", "password", "tls"),
    [
        ("redis://localhost", "localhost", 6379, 0, None, None, False),
        ("redis://127.0.0.1:6380/2", "127.0.0.1", 6380, 2, None, None, False),
        ("redis://:p%40ss@cache:7000/1", "cache", 7000, 1, None, "p@ss", False),
        ("redis://alice:pw@cache", "cache", 6379, 0, "alice", "pw", False),
        ("rediss://cache.example.org:6390/", "cache.example.org", 6390, 0, None, None, True),
        ("redis://[::1]:6379/0", "::1", 6379, 0, None, None, False),
    ],
)
def test_parse_redis_url(
    url: str, host: str, port: int, db: int, user: str | None, password: str | None, tls: bool
) -> None:
    address = parse_redis_url(url)
    assert (address.host, address.port, address.db, address.username, address.tls) == (
        host,
        port,
        db,
        user,
        tls,
    )
    assert (address.password.reveal() if address.password else None) == password


@pytest.mark.parametrize(
    "url",
    [
        "http://:hunter2@cache:6379/0",
        "redis://:hunter2@/0",
        "redis://:hunter2@cache:port/0",
        "redis://:hunter2@cache:99999/0",
        "redis://:hunter2@cache:6379/zero",
        "redis://:hunter2@cache:6379/0?ssl=true",
        "redis://:hunter2@[::1/0",
        "cache:6379",
    ],
)
def test_invalid_url_raises_config_error_without_password(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        RedisCacheBackend(url)
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in repr(info.value)


def test_describe_hides_password() -> None:
    backend = RedisCacheBackend("redis://alice:hunter2@cache:6380/3")
    assert backend.describe() == "redis://alice:***@cache:6380/3"
    assert "hunter2" not in repr(backend)
    assert "hunter2" not in repr(backend.address)
    assert parse_redis_url("rediss://[::1]").describe() == "rediss://[::1]:6379/0"


@pytest.mark.parametrize(("timeout", "poolsize"), [(0, 4), (-1, 4), (math.nan, 4), (1.0, 0)])
def test_backend_options_validated(timeout: float, poolsize: int) -> None:
    with pytest.raises(ConfigError):
        RedisCacheBackend("redis://localhost", timeout=timeout, poolsize=poolsize)
