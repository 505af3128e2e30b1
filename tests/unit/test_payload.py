"""read_payload names what makes a body unusable: empty, HTML, truncated, not JSON, wrong type."""

from __future__ import annotations

import json

import pytest
from provider_harness import FIXTURES

from scrapy_apigw.core.payload import (
    EMPTY,
    HTML,
    NOT_JSON,
    TRUNCATED,
    Payload,
    drop_keys,
    is_json_type,
    json_requested,
    read_payload,
)

JSON_TYPE = "application/json; charset=utf-8"


@pytest.mark.parametrize(
    ("body", "content_type", "kind"),
    [
        (b"", JSON_TYPE, EMPTY),
        (None, None, EMPTY),
        (b"  \r\n", JSON_TYPE, EMPTY),
        (b"<!DOCTYPE html><html><body>Bad Gateway</body></html>", "text/html", HTML),
        (b"<html><head><title>Login</title></head></html>", JSON_TYPE, HTML),  # sniffed
        (b"\n  <HTML>maintenance</HTML>", None, HTML),
        (b"Service Unavailable", "text/html; charset=UTF-8", HTML),
        (b'{"results": [{"id": 1, "title": "Daft Pu', JSON_TYPE, TRUNCATED),
        (b'{"results": [{"id": 1', JSON_TYPE, TRUNCATED),
        (b'{"recordings": [], "count": tr', JSON_TYPE, TRUNCATED),
        (b'{"tempo": 120.', JSON_TYPE, TRUNCATED),
        ('{"name": "Röyksopp"}'.encode()[:13], JSON_TYPE, TRUNCATED),  # cut inside "ö"
        (b'{"name": "Dahlb\\u00e', JSON_TYPE, TRUNCATED),
        (b'{"results": [}', JSON_TYPE, NOT_JSON),
        (b"Internal error, try again", None, NOT_JSON),
        (b"{'single': 'quotes'}", JSON_TYPE, NOT_JSON),
        (b'{"a": 1} trailing', JSON_TYPE, NOT_JSON),
        (
            b'<?xml version="1.0"?><metadata/>',
            "application/xml",
            "wrong content type application/xml",
        ),
        (b'{"results": []}', "text/plain", "wrong content type text/plain"),
    ],
)
def test_each_malformed_kind_is_named(body, content_type, kind) -> None:
    assert read_payload(body, content_type, json_expected=True).problem == kind


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/json",
        JSON_TYPE,
        "application/vnd.discogs.v2.discogs+json",
        "text/javascript",
    ],
)
def test_valid_json_is_decoded_with_no_problem(content_type) -> None:
    assert read_payload(b'{"results": []}', content_type, True) == Payload({"results": []})


def test_an_xml_answer_nobody_asked_json_for_is_fine() -> None:
    # MusicBrainz serves XML when neither fmt=json nor Accept: application/json is sent.
    xml = b'<?xml version="1.0" encoding="UTF-8"?><metadata><isrc id="GBAAA9900303"/></metadata>'
    assert read_payload(xml, "application/xml; charset=utf-8", False) == Payload()
    assert read_payload(xml[:30], "application/xml", False) == Payload()  # XML is not judged


def test_a_json_content_type_expects_json_even_when_not_asked() -> None:
    assert read_payload(b'{"id": 1', "application/json", False).problem == TRUNCATED


def test_empty_and_html_are_wrong_even_when_json_was_not_asked() -> None:
    assert read_payload(b"", "application/xml", False).problem == EMPTY
    assert read_payload(b"<html></html>", "text/html", False).problem == HTML


def test_an_oversized_body_is_not_decoded_nor_judged() -> None:
    body = b'{"x": "' + b"a" * 5_000_001 + b'"}'
    assert read_payload(body, "application/json", True) == Payload()


def recorded_bodies() -> list[bytes]:
    if not FIXTURES.is_dir():
        pytest.skip(f"recorded fixtures absent ({FIXTURES} not checked out)")
    bodies = []
    for path in sorted(FIXTURES.rglob("*.json")):
        data = json.loads(path.read_text("utf-8"))
        bodies.append(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())
        bodies.append(json.dumps(data, indent=1).encode())  # \u escapes, whitespace
    return bodies


def test_every_recorded_body_cut_anywhere_is_truncated_json() -> None:
    """The sandbox's ``malformed_rate`` cuts bodies in half; a cut anywhere reads as truncated.

    Every position of the small bodies, 150 spread over each large one plus its half.
    """
    checked = 0
    for body in recorded_bodies():
        assert read_payload(body, JSON_TYPE, True).problem is None
        step = max(1, len(body) // 150)
        for cut in {*range(1, len(body), step), len(body) // 2}:
            prefix = body[:cut]
            if not prefix.strip():
                continue
            try:
                json.loads(prefix)  # a cut that happens to be a whole document ("1" of "12")
                continue
            except ValueError:
                pass
            assert read_payload(prefix, JSON_TYPE, True).problem == TRUNCATED, prefix[-20:]
            checked += 1
    assert checked > 5_000


@pytest.mark.parametrize(
    ("accept", "url", "asked"),
    [
        ("application/json", "https://api.discogs.com/releases/1", True),
        ("text/html,application/json;q=0.9", "https://api.discogs.com/releases/1", True),
        (None, "https://musicbrainz.org/ws/2/isrc/GBAAA9900303?fmt=json", True),
        (None, "https://ws.audioscrobbler.com/2.0/?method=track.getInfo&format=JSON", True),
        (None, "https://musicbrainz.org/ws/2/isrc/GBAAA9900303", False),
        (
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",  # Scrapy's default
            "https://musicbrainz.org/ws/2/isrc/GBAAA9900303?fmt=xml",
            False,
        ),
    ],
)
def test_json_requested_reads_accept_and_fmt(accept, url, asked) -> None:
    assert json_requested(accept, url) is asked


def test_json_media_types() -> None:
    assert is_json_type("application/problem+json")
    assert not is_json_type("text/html")
    assert not is_json_type(None)


def test_drop_keys_removes_the_members_at_any_depth_in_place() -> None:
    answer = {
        "tracks": {
            "items": [
                {"id": "a", "available_markets": ["DE"], "album": {"available_markets": ["US"]}},
                {"id": "b", "name": "x"},
            ],
            "available_markets": "kept? no",
        },
        "available": ["available_markets"],  # a value, not a member: kept
    }
    assert drop_keys(answer, frozenset({"available_markets"})) is answer
    assert answer == {
        "tracks": {"items": [{"id": "a", "album": {}}, {"id": "b", "name": "x"}]},
        "available": ["available_markets"],
    }


def test_drop_keys_leaves_what_it_is_not_asked_to_drop() -> None:
    answer = [{"a": 1, "b": [{"a": 2}]}, "text", 3]
    assert drop_keys(answer, frozenset()) == [{"a": 1, "b": [{"a": 2}]}, "text", 3]
    assert drop_keys(answer, frozenset({"c"})) == [{"a": 1, "b": [{"a": 2}]}, "text", 3]
    assert drop_keys("plain", frozenset({"a"})) == "plain"


def test_drop_keys_copes_with_deep_nesting() -> None:
    deep: dict = {"x": 1}
    for _ in range(5000):  # deeper than the recursion limit
        deep = {"child": deep, "x": 1}
    drop_keys(deep, frozenset({"x"}))
    node = deep
    while "child" in node:
        assert "x" not in node
        node = node["child"]
    assert node == {}
