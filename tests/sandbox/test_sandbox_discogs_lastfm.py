"""Discogs and Last.fm over real sockets: auth, shapes vs recorded responses, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures_sandbox import SandboxProcess, load_shared_fixture, shape_problems

from scrapy_apigw.sandbox.catalog import Catalog
from scrapy_apigw.sandbox.config import DEFAULT_DECOYS
from scrapy_apigw.sandbox.records import TrackRecord

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
TOKEN = {"Authorization": "Discogs token=sandbox-discogs-token"}
KEY = "sandbox-lastfm-key"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    """The session sandbox's catalog: the default one, with its default decoys."""
    return Catalog.load(decoys=DEFAULT_DECOYS)


def vinyl_with_offers(catalog: Catalog) -> TrackRecord:
    return next(
        t
        for t in catalog
        if t.discogs
        and t.discogs.format_name == "Vinyl"
        and t.discogs.year
        and t.discogs.num_for_sale
        and t.discogs.released
        and len(t.discogs.tracklist) == 2
    )


# -- Discogs ---------------------------------------------------------------------------------


def test_discogs_search_needs_auth(sandbox: SandboxProcess) -> None:
    errors = load_shared_fixture(SHARED, "discogs/TRANSCRIBED_errors.json")
    reply = sandbox.get("/discogs/database/search", params={"q": "daft punk"})
    assert reply.status == 401 and reply.json() == errors["401"]
    for name in errors["_headers_on_every_response"]:
        assert reply.headers[name] is not None
    assert reply.headers["X-Discogs-Ratelimit"] == "25"
    wrong = sandbox.get(
        "/discogs/database/search",
        params={"q": "x"},
        headers={"Authorization": "Discogs token=nope"},
    )
    assert wrong.status == 401


def test_discogs_search_shape(sandbox: SandboxProcess, catalog: Catalog) -> None:
    track = vinyl_with_offers(catalog)
    params = {"artist": track.artists[0], "track": track.title, "per_page": 10}
    body = sandbox.get("/discogs/database/search", params=params, headers=TOKEN).json()
    real = load_shared_fixture(SHARED, "discogs/go-discogs_database_search.json")
    assert set(body) == {"pagination", "results"}
    assert shape_problems(body["pagination"], real["pagination"]) == []
    master, release = body["results"][0], body["results"][1]
    assert (master["type"], release["type"]) == ("master", "release")
    assert shape_problems(master, real["results"][0]) == []
    assert shape_problems(release, real["results"][1]) == []
    assert isinstance(release["year"], str) and release["year"] == str(track.discogs.year)
    assert release["title"] == f"{track.credit} - {track.discogs.title}"
    assert release["id"] == track.discogs.release_id and release["catno"] == track.discogs.catno
    only_releases = sandbox.get(
        "/discogs/database/search",
        params={**params, "type": "release", "token": "sandbox-discogs-token"},
    ).json()
    assert [r["type"] for r in only_releases["results"]] == ["release"]
    paged = sandbox.get(
        "/discogs/database/search", params={"q": "the", "per_page": 2, "page": 2}, headers=TOKEN
    ).json()
    assert paged["pagination"]["page"] == 2 and len(paged["results"]) == 2
    assert {"first", "prev", "next", "last"} <= set(paged["pagination"]["urls"])


def test_discogs_release_shape(sandbox: SandboxProcess, catalog: Catalog) -> None:
    track = vinyl_with_offers(catalog)
    reply = sandbox.get(f"/discogs/releases/{track.discogs.release_id}")  # no auth needed
    body = reply.json()
    assert reply.status == 200 and reply.headers["X-Discogs-Ratelimit"] == "25"
    for name in ("go-discogs_releases_10507194.json", "discogs_client_releases_1.json"):
        real = load_shared_fixture(SHARED, f"discogs/{name}")
        assert shape_problems(body, real) == [], name
    assert isinstance(body["year"], int) and body["year"] == track.discogs.year
    assert body["labels"][0]["catno"] == track.discogs.catno
    assert body["tracklist"][0]["title"] == track.title
    master = sandbox.get(f"/discogs/masters/{track.discogs.master_id}", headers=TOKEN).json()
    assert master["main_release"] == track.discogs.release_id
    errors = load_shared_fixture(SHARED, "discogs/TRANSCRIBED_errors.json")
    missing = sandbox.get("/discogs/releases/1", headers=TOKEN)
    assert missing.status == 404 and missing.json() == errors["404"]
    assert missing.headers["X-Discogs-Ratelimit"] == "60"


def test_discogs_quirks_exist(catalog: Catalog) -> None:
    releases = [t.discogs for t in catalog if t.discogs]
    assert any(r.catno == "none" and r.label == "Not On Label" for r in releases)
    assert any(r.year == 0 and r.released is None for r in releases)
    assert any(r.released and r.released.endswith("-00") for r in releases)


# -- Last.fm ---------------------------------------------------------------------------------


def lastfm(sandbox: SandboxProcess, **params: str):
    return sandbox.get("/lastfm/2.0/", params={"api_key": KEY, "format": "json", **params})


def test_lastfm_get_info_shapes(sandbox: SandboxProcess, catalog: Catalog) -> None:
    full = next(t for t in catalog if t.lastfm.mbid and t.lastfm.album_position and t.lastfm.wiki)
    body = lastfm(sandbox, method="track.getInfo", artist=full.artists[0], track=full.title).json()
    for name in ("withMBID_noUsername", "withTrackArtist_noUsername_noMBID"):
        real = load_shared_fixture(SHARED, f"lastfm/LastFM.swift_track.getInfo_{name}.json")
        assert shape_problems(body, real) == [], name
    track = body["track"]
    assert track["mbid"] == full.musicbrainz.recording_id
    assert all(isinstance(track[k], str) for k in ("duration", "listeners", "playcount"))
    bare = next(t for t in catalog if not t.lastfm.mbid and t.lastfm.album_position is None)
    body = lastfm(sandbox, method="track.getInfo", artist=bare.artists[0], track=bare.title).json()
    real = load_shared_fixture(SHARED, "lastfm/LastFM.swift_track.getInfo_noAlbum.json")
    assert (
        shape_problems(body, real) == []
        and "album" not in body["track"]
        and "mbid" not in body["track"]
    )
    by_mbid = lastfm(sandbox, method="track.getinfo", mbid=full.lastfm.mbid).json()
    assert by_mbid["track"]["name"] == full.title


def test_lastfm_matches_credits_and_accents(sandbox: SandboxProcess, catalog: Catalog) -> None:
    duo = next(t for t in catalog if len(t.artists) == 2)
    for artist in (
        f"{duo.artists[0]} feat. {duo.artists[1]}",
        f"{duo.artists[0]} & {duo.artists[1]}",
    ):
        body = lastfm(
            sandbox,
            method="track.getInfo",
            artist=artist,
            track=duo.title.upper(),
            autocorrect="1",
        ).json()
        assert body["track"]["name"] == duo.title
    accents = lastfm(
        sandbox, method="track.getInfo", artist="Royksopp", track="Eple", autocorrect="1"
    ).json()
    assert accents["track"]["artist"]["name"] == "Röyksopp"


def test_lastfm_top_tags(sandbox: SandboxProcess, catalog: Catalog) -> None:
    track = catalog.tracks[3]
    body = lastfm(
        sandbox, method="track.getTopTags", artist=track.artists[0], track=track.title
    ).json()
    real = load_shared_fixture(SHARED, "lastfm/LastFM.swift_track.getTopTags.json")
    assert shape_problems(body, real) == []
    counts = [t["count"] for t in body["toptags"]["tag"]]
    assert counts[0] == 100 and counts == sorted(counts, reverse=True)
    assert body["toptags"]["tag"][0]["name"] == track.lastfm.tags[0][0]
    unknown = lastfm(sandbox, method="track.getTopTags", artist="Nobody", track="Nothing")
    assert unknown.status == 200
    assert unknown.json() == {
        "toptags": {"tag": [], "@attr": {"artist": "Nobody", "track": "Nothing"}}
    }


def test_lastfm_errors(sandbox: SandboxProcess) -> None:
    missing = lastfm(sandbox, method="track.getInfo", mbid="not-an-mbid")
    assert missing.status == 200
    assert missing.json() == {"error": 6, "message": "Track not found", "links": []}
    real_key = load_shared_fixture(SHARED, "lastfm/LastFM.swift_errorInvalidAPIKey.json")
    bad_key = sandbox.get(
        "/lastfm/2.0/", params={"method": "track.getInfo", "api_key": "x", "format": "json"}
    )
    assert bad_key.status == 403
    assert {k: bad_key.json()[k] for k in real_key} == real_key
    real_method = load_shared_fixture(SHARED, "lastfm/navidrome_lastfm.artist.error3.json")
    bad_method = lastfm(sandbox, method="artist.nope")
    assert bad_method.json() == real_method
    xml = sandbox.get(
        "/lastfm/2.0/",
        params={"method": "track.getInfo", "api_key": KEY, "mbid": "not-an-mbid"},
    )
    assert xml.text.startswith("<?xml") and '<error code="6">Track not found</error>' in xml.text
