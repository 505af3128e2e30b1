"""MusicBrainz over real sockets: User-Agent, negotiation, ISRC, lookup, Lucene search."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fixtures_sandbox import HttpReply, SandboxProcess, load_shared_fixture, shape_problems

from scrapy_apigw.sandbox.catalog import Catalog
from scrapy_apigw.sandbox.config import DEFAULT_DECOYS

SHARED = Path(__file__).resolve().parents[2].parent / "shared"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    """The session sandbox's catalog: the default one, with its default decoys."""
    return Catalog.load(decoys=DEFAULT_DECOYS)


def mb(
    sandbox: SandboxProcess, path: str, headers: dict[str, str] | None = None, **params: Any
) -> HttpReply:
    """One request paced under the sandbox's MusicBrainz rate (1 req/s x speed)."""
    time.sleep(1.0 / sandbox.speed)
    return sandbox.get("/musicbrainz/ws/2" + path, params=params, headers=headers)


def test_user_agent_is_required(sandbox: SandboxProcess) -> None:
    reply = mb(sandbox, "/isrc/GBAAA9900303", headers={"User-Agent": ""}, fmt="json")
    assert reply.status == 403
    assert set(reply.json()) == {"error", "help"}
    assert sandbox.log("musicbrainz")[-1]["status"] == 403


def test_content_negotiation(sandbox: SandboxProcess, catalog: Catalog) -> None:
    track = next(t for t in catalog if t.musicbrainz.isrc_listed)
    xml = mb(sandbox, f"/isrc/{track.isrc}")
    assert xml.status == 200 and xml.headers["Content-Type"].startswith("application/xml")
    assert xml.text.startswith("<?xml") and track.musicbrainz.recording_id in xml.text
    by_accept = mb(sandbox, f"/isrc/{track.isrc}", headers={"Accept": "application/json"})
    assert by_accept.json()["isrc"] == track.isrc
    refused = mb(sandbox, f"/isrc/{track.isrc}", headers={"Accept": "text/html"})
    assert refused.status == 406


def test_isrc_lookup_shape(sandbox: SandboxProcess, catalog: Catalog) -> None:
    track = next(
        t for t in catalog if t.musicbrainz.isrc_listed and not t.musicbrainz.atmos_recording_id
    )
    body = mb(sandbox, f"/isrc/{track.isrc}", fmt="json").json()
    real = load_shared_fixture(SHARED, "musicbrainz/TRANSCRIBED_mbserver_isrc_GBAAA9900303.json")
    assert shape_problems(body, real) == []
    assert set(body["recordings"][0]) == set(real["recordings"][0])
    assert body["recordings"][0]["id"] == track.musicbrainz.recording_id
    assert body["recordings"][0]["title"] == track.title
    with_inc = mb(sandbox, f"/isrc/{track.isrc}", fmt="json", inc="artist-credits isrcs").json()
    assert with_inc["recordings"][0]["artist-credit"][0]["name"] == track.artists[0]
    assert with_inc["recordings"][0]["isrcs"] == [track.isrc]


def test_isrc_with_two_recordings(sandbox: SandboxProcess, catalog: Catalog) -> None:
    track = next(
        t for t in catalog if t.musicbrainz.atmos_recording_id and t.musicbrainz.isrc_listed
    )
    recordings = mb(sandbox, f"/isrc/{track.isrc}", fmt="json").json()["recordings"]
    assert [r["disambiguation"] for r in recordings][1] == "Dolby Atmos"
    assert recordings[0]["id"] == track.musicbrainz.recording_id


def test_isrc_errors(sandbox: SandboxProcess, catalog: Catalog) -> None:
    real_404 = load_shared_fixture(SHARED, "musicbrainz/TRANSCRIBED_error_404_not_found.json")
    # an ISRC MusicBrainz lists no recording under (not even a decoy sharing it)
    unlisted = next(
        t
        for t in catalog
        if not any(r.musicbrainz.isrc_listed for r in catalog.by_isrc.get(t.isrc, []))
    )
    missing = mb(sandbox, f"/isrc/{unlisted.isrc}", fmt="json")
    assert missing.status == 404 and missing.json() == real_404
    malformed = mb(sandbox, "/isrc/NOT-AN-ISRC", fmt="json")
    assert malformed.status == 400 and set(malformed.json()) == {"error", "help"}
    # the unlisted track is still found by a recording search
    query = f'recording:"{unlisted.title}" AND artist:"{unlisted.artists[0]}"'
    found = mb(sandbox, "/recording", fmt="json", query=query.replace("\\", "\\\\"))
    assert found.json()["recordings"][0]["id"] == unlisted.musicbrainz.recording_id
    assert "isrcs" not in found.json()["recordings"][0]


def test_recording_lookup_shape(sandbox: SandboxProcess, catalog: Catalog) -> None:
    track = next(t for t in catalog if t.musicbrainz.isrc_listed)
    body = mb(
        sandbox,
        f"/recording/{track.musicbrainz.recording_id}",
        fmt="json",
        inc="isrcs+artist-credits+tags+aliases+work-rels",
    ).json()
    real = load_shared_fixture(SHARED, "musicbrainz/picard_recording.json")
    # Picard's artist objects carry country and tags from extra incs the sandbox does not model
    assert shape_problems(body, real, optional=frozenset({"country", "tags"})) == []
    assert {"tags", "isrcs", "artist-credit", "relations", "aliases"} <= set(body)
    assert body["isrcs"] == [track.isrc] and body["video"] is False
    real_400 = load_shared_fixture(SHARED, "musicbrainz/TRANSCRIBED_error_400_invalid_mbid.json")
    bad = mb(sandbox, "/recording/not-an-mbid", fmt="json")
    assert bad.status == 400 and bad.json() == real_400
    bad_inc = mb(
        sandbox, f"/recording/{track.musicbrainz.recording_id}", fmt="json", inc="relations"
    )
    assert bad_inc.status == 400
    assert (
        bad_inc.json()["error"]
        == "relations is not a valid inc parameter for the recording resource."
    )


def test_search_shape(sandbox: SandboxProcess) -> None:
    reply = mb(
        sandbox, "/recording", fmt="json", query='recording:"Strobe" AND artist:"deadmau5"', limit=5
    )
    body = reply.json()
    assert reply.status == 200
    assert set(body) == {"created", "count", "offset", "recordings"}
    assert body["created"].endswith("Z") and body["count"] >= 1 and body["offset"] == 0
    first = body["recordings"][0]
    assert first["title"] == "Strobe (Radio Edit)" and first["score"] == 100
    assert isinstance(first["score"], int) and first["video"] is None
    assert {
        "id",
        "score",
        "title",
        "length",
        "video",
        "artist-credit",
        "first-release-date",
        "releases",
    } <= set(first)
    release = first["releases"][0]
    assert {
        "id",
        "status-id",
        "count",
        "title",
        "status",
        "release-group",
        "date",
        "country",
        "release-events",
        "track-count",
        "media",
    } <= set(release)
    assert "track" in release["media"][0] and "tracks" not in release["media"][0]
    credit = first["artist-credit"][0]
    assert set(credit) == {"name", "joinphrase", "artist"} and {"id", "name", "sort-name"} <= set(
        credit["artist"]
    )


def test_lucene_syntax_errors_are_400(sandbox: SandboxProcess) -> None:
    for query in (
        "recording:Strobe - Radio Edit",
        'recording:"Strobe',
        "recording:(Strobe",
        "AC/DC",
    ):
        reply = mb(sandbox, "/recording", fmt="json", query=query)
        assert reply.status == 400, query
        assert set(reply.json()) == {"error", "help"}


def test_escaped_specials_match(sandbox: SandboxProcess) -> None:
    cases = {
        'recording:"We Are The People \\(ARTBAT Remix\\)"': "We Are The People (ARTBAT Remix)",
        "recording:We\\ Are\\ The\\ People\\ \\(ARTBAT\\ Remix\\) AND artist:ARTBAT": (
            "We Are The People (ARTBAT Remix)"
        ),
        "recording:Rez\\ \\/\\ Cowgirl": "Rez / Cowgirl",
        'recording:"\\"Heroes\\""': '"Heroes"',
        "artist:\\!\\!\\!": "Me and Giuliani Down by the School Yard (A True Story)",
        'recording:"Losing It \\- Extended Mix" AND artist:Fisher': "Losing It - Extended Mix",
    }
    for query, title in cases.items():
        reply = mb(sandbox, "/recording", fmt="json", query=query)
        assert reply.status == 200, (query, reply.text)
        assert reply.json()["recordings"][0]["title"] == title, query


def test_isrc_or_search_lists_each_isrcs_recordings(
    sandbox: SandboxProcess, catalog: Catalog
) -> None:
    """The batch search the client sends, ``isrc:(A OR B OR C)``: every recording of a listed
    ISRC, each carrying its ``isrcs``; a recording not listed under its ISRC is not found."""
    atmos = next(
        t for t in catalog if t.musicbrainz.atmos_recording_id and t.musicbrainz.isrc_listed
    )
    plain = next(
        t for t in catalog if t.musicbrainz.isrc_listed and not t.musicbrainz.atmos_recording_id
    )
    unlisted = next(
        t
        for t in catalog
        if not any(r.musicbrainz.isrc_listed for r in catalog.by_isrc.get(t.isrc, []))
    )
    query = f"isrc:({atmos.isrc} OR {plain.isrc} OR {unlisted.isrc})"
    body = mb(sandbox, "/recording", fmt="json", query=query, limit="100").json()
    found = sorted((r["isrcs"][0], r["id"]) for r in body["recordings"])
    # with the other recordings listed under the same ISRCs (isrc_shared decoys), if any
    shared = [
        (r.isrc, r.musicbrainz.recording_id)
        for isrc in (atmos.isrc, plain.isrc)
        for r in catalog.by_isrc[isrc]
        if r.decoy is not None and r.musicbrainz.isrc_listed
    ]
    assert found == sorted(
        [
            (atmos.isrc, atmos.musicbrainz.recording_id),
            (atmos.isrc, atmos.musicbrainz.atmos_recording_id),
            (plain.isrc, plain.musicbrainz.recording_id),
            *shared,
        ]
    )
    assert body["count"] == 3 + len(shared)
    assert all(r["artist-credit"] for r in body["recordings"])
