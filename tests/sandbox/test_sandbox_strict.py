"""The sandbox as strict as the real APIs (issue 7 section 3, PROVIDERS.md): each documented
behaviour and each sandbox mode, driven through the provider handlers with exact instants, and
over real sockets where the wire matters (a header not sent, a command-line mode)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from fixtures_sandbox import SandboxProcess, load_shared_fixture, shape_problems

from scrapy_apigw.sandbox.catalog import Catalog
from scrapy_apigw.sandbox.config import SandboxConfig
from scrapy_apigw.sandbox.discogs import Discogs
from scrapy_apigw.sandbox.http import SandboxRequest
from scrapy_apigw.sandbox.lastfm import Lastfm
from scrapy_apigw.sandbox.musicbrainz import RATE_LIMIT_MESSAGE, MusicBrainz
from scrapy_apigw.sandbox.process import start_sandbox_process
from scrapy_apigw.sandbox.spotify import Spotify

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
UA = "strict-tests/1.0 ( tests@example.invalid )"
KEY = "sandbox-lastfm-key"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def request(path: str, query: str = "", *, now: float = 0.0, **headers: str) -> SandboxRequest:
    """A GET of *path* below a provider's prefix; ``user_agent=`` sends ``User-Agent``."""
    return SandboxRequest(
        method="GET",
        path=path,
        full_path=path,
        query=parse_qs(query, keep_blank_values=True),
        headers={k.replace("_", "-").lower(): v for k, v in headers.items()},
        now=now,
    )


def lastfm_get(provider: Lastfm, **params: str) -> Any:
    query = urlencode({"api_key": KEY, "format": "json", **params})
    return provider.serve(request("/2.0", query))


# -- Last.fm ----------------------------------------------------------------------------------


def test_lastfm_unknown_pair_is_a_200_stub_track_by_default(catalog: Catalog) -> None:
    reply = lastfm_get(
        Lastfm(catalog, SandboxConfig()), method="track.getInfo", artist="Nobody X", track="Nix"
    )
    assert reply.status == 200
    track = reply.json()["track"]
    assert (track["name"], track["artist"]["name"]) == ("Nix", "Nobody X")
    assert (track["listeners"], track["duration"], track["toptags"]) == ("2", "0", {"tag": []})
    assert not {"album", "mbid", "wiki"} & set(track)
    real = load_shared_fixture(SHARED, "lastfm/LastFM.swift_track.getInfo_noAlbum.json")
    assert shape_problems(reply.json(), real) == []


def test_lastfm_error6_mode_and_unknown_mbid(catalog: Catalog) -> None:
    old = Lastfm(catalog, SandboxConfig(lastfm_unknown_track="error6"))
    reply = lastfm_get(old, method="track.getInfo", artist="Nobody X", track="Nix")
    assert (reply.status, reply.json()) == (
        200,
        {"error": 6, "message": "Track not found", "links": []},
    )
    stub = Lastfm(catalog, SandboxConfig())
    unknown_mbid = lastfm_get(stub, method="track.getInfo", mbid="00000000-0000-0000-0000-0")
    assert unknown_mbid.json()["error"] == 6


def test_lastfm_autocorrect_maps_near_misses_to_canonical_names(catalog: Catalog) -> None:
    lastfm = Lastfm(catalog, SandboxConfig())
    asked = {"artist": "royksopp", "track": "EPLE"}  # "Röyksopp" - "Eple"
    corrected = lastfm_get(lastfm, method="track.getInfo", autocorrect="1", **asked).json()
    assert (corrected["track"]["name"], corrected["track"]["artist"]["name"]) == (
        "Eple",
        "Röyksopp",
    )
    plain = lastfm_get(lastfm, method="track.getInfo", **asked).json()
    assert plain["track"]["listeners"] == "2"  # no autocorrect: a near-miss is unknown
    exact = lastfm_get(lastfm, method="track.getInfo", artist="röyksopp", track="eple").json()
    assert exact["track"]["artist"]["name"] == "Röyksopp"  # case alone is no near-miss
    joined = {"artist": "Justice and Simian", "track": "We Are Your Friends"}
    assert lastfm_get(lastfm, method="track.getTopTags", **joined).json()["toptags"]["tag"] == []
    tags = lastfm_get(lastfm, method="track.getTopTags", autocorrect="1", **joined).json()
    assert tags["toptags"]["@attr"]["artist"] == "Justice" and tags["toptags"]["tag"]


def test_lastfm_error_29_with_http_200_mode(catalog: Catalog) -> None:
    lastfm = Lastfm(catalog, SandboxConfig(lastfm_rate_limit_status=200))
    replies = [
        lastfm_get(lastfm, method="track.getInfo", artist="Daft Punk", track="One More Time")
        for _ in range(26)
    ]  # all at instant 0: the 26th is over the burst of 25
    assert [r.status for r in replies] == [200] * 26
    assert replies[24].json()["track"]["name"] == "One More Time"
    assert replies[25].json()["error"] == 29 and replies[25].rate_limited
    forced = lastfm.rate_limit_reply(request("/2.0", "format=json"), None)
    assert (forced.status, forced.json()["error"]) == (200, 29)


# -- MusicBrainz ------------------------------------------------------------------------------


def mb_get(mb: MusicBrainz, now: float, user_agent: str | None = UA) -> int:
    headers = {} if user_agent is None else {"user_agent": user_agent}
    req: SandboxRequest = request("/ws/2/isrc/GBAAA9900303", "fmt=json", now=now, **headers)
    return mb.serve(req).status


def test_musicbrainz_refused_requests_count_until_the_rate_falls(catalog: Catalog) -> None:
    mb = MusicBrainz(catalog)
    isrc_ok = mb_get(mb, 0.0)
    assert [mb_get(mb, 0.0), mb_get(mb, 0.0), mb_get(mb, 0.0)] == [isrc_ok, isrc_ok, 503]
    # A client that keeps sending twice a second is refused everything...
    assert [mb_get(mb, t / 2) for t in range(2, 12)] == [503] * 10
    # ...and once it slows to 1 request/s, the refused ones still weigh: its backlog lasts.
    assert mb_get(mb, 9.0) == 503
    assert mb_get(mb, 20.0) == isrc_ok  # quiet for 11 s: the backlog has drained
    assert [mb_get(mb, 21.0 + t) for t in range(5)] == [isrc_ok] * 5  # 1 req/s passes


def test_musicbrainz_generic_user_agents(catalog: Catalog) -> None:
    generic = [
        "python-requests/2.32.3",
        "Scrapy/2.19.0 (+https://scrapy.org)",
        "scrapy-apigw/0.2.0",  # no contact
        "MyApp/1.0",
    ]
    throttled = MusicBrainz(catalog)
    for agent in generic:
        reply = throttled.serve(request("/ws/2/isrc/GBAAA9900303", "fmt=json", user_agent=agent))
        assert (reply.status, reply.json()) == (503, {"error": RATE_LIMIT_MESSAGE}), agent
        assert reply.reason == "Service Temporarily Unavailable" and reply.rate_limited
    assert (
        mb_get(throttled, 0.0) == 404
    )  # unknown ISRC: generic ones were refused before the IP rate
    assert mb_get(throttled, 0.0, None) == 403
    blocked = MusicBrainz(catalog, generic_ua="blocked")
    assert [mb_get(blocked, 0.0, a) for a in generic] == [403] * 4
    allowed = MusicBrainz(catalog, generic_ua="allowed")
    assert [mb_get(allowed, float(n), a) for n, a in enumerate(generic)] == [404] * 4
    assert mb_get(allowed, 9.0, None) == 403  # a missing User-Agent is refused in every mode


def test_musicbrainz_generic_user_agent_over_sockets(sandbox: SandboxProcess) -> None:
    path, params = "/musicbrainz/ws/2/isrc/GBAAA9900303", {"fmt": "json"}
    reply = sandbox.get(path, params=params, headers={"User-Agent": "python-requests/2.32.3"})
    assert reply.status == 503 and reply.json() == {"error": RATE_LIMIT_MESSAGE}
    assert sandbox.get(path, params=params).status == 404  # the tests' UA names a contact
    record = sandbox.log("musicbrainz")[0]
    assert (record["user_agent"], record["rate_limited"]) == ("python-requests/2.32.3", True)


# -- Discogs ----------------------------------------------------------------------------------


def test_discogs_without_user_agent_is_blocked_over_sockets(sandbox: SandboxProcess) -> None:
    token = {"Authorization": "Discogs token=sandbox-discogs-token"}
    blocked = sandbox.get("/discogs/releases/1", headers={**token, "User-Agent": ""})
    assert blocked.status == 403 and blocked.json() == {"message": "Forbidden"}
    assert blocked.headers["X-Discogs-Ratelimit-Used"] is None  # not counted
    served = sandbox.get("/discogs/releases/1", headers=token)
    assert served.headers["X-Discogs-Ratelimit-Used"] == "1"
    assert [r["user_agent"] for r in sandbox.log("discogs")] == [None, sandbox.user_agent]


def test_discogs_key_and_secret_auth(catalog: Catalog) -> None:
    discogs = Discogs(catalog, SandboxConfig())
    track = next(t for t in catalog if t.discogs)
    query = urlencode({"artist": track.artists[0], "track": track.title})

    def search(extra: str = "", **headers: str) -> int:
        req = request("/database/search", query + extra, user_agent=UA, **headers)
        return discogs.serve(req).status

    pair = "Discogs key=sandbox-discogs-key, secret=sandbox-discogs-secret"
    assert search(authorization=pair) == 200
    assert search("&key=sandbox-discogs-key&secret=sandbox-discogs-secret") == 200
    assert search(authorization="Discogs key=sandbox-discogs-key, secret=wrong") == 401
    assert search("&key=sandbox-discogs-key") == 401  # a key without its secret
    assert search() == 401  # no credentials: search needs them


def test_discogs_tracklists_have_headings_index_entries_and_track_artists(
    catalog: Catalog,
) -> None:
    discogs = Discogs(catalog, SandboxConfig())
    kinds: dict[str, int] = {"heading": 0, "index": 0, "artists": 0, "guest": 0}
    for track in (t for t in catalog if t.discogs):
        assert track.discogs is not None
        tracklist = discogs.release_object(track, "http://x")["tracklist"]
        flat = [
            e for entry in tracklist for e in [entry, *entry.get("sub_tracks", [])]
        ]  # fmt: skip
        kinds["heading"] += any(e["type_"] == "heading" for e in tracklist)
        kinds["index"] += any(e["type_"] == "index" and e["sub_tracks"] for e in tracklist)
        kinds["artists"] += any("artists" in e for e in flat)
        kinds["guest"] += any(
            "artists" in e and e["artists"][0]["name"] not in track.artists for e in flat
        )
        # The catalog track stays a plain track entry, credited to its own artists if at all.
        own = [e for e in flat if e["type_"] == "track" and e["title"] == track.title]
        assert own and all(
            [a["name"] for a in e.get("artists", [])] in ([], list(track.artists)) for e in own
        )
        for heading in (e for e in tracklist if e["type_"] == "heading"):
            assert heading["position"] == "" and "sub_tracks" not in heading
    assert all(count >= 10 for count in kinds.values()), kinds
    real = load_shared_fixture(SHARED, "discogs/go-discogs_releases_71989.json")
    with_artists = next(
        t
        for t in catalog
        if t.discogs
        and "artists" in discogs.release_object(t, "http://x")["tracklist"][-1]
        and discogs.release_object(t, "http://x")["tracklist"][-1]["type_"] == "track"
    )
    entry = discogs.release_object(with_artists, "http://x")["tracklist"][-1]
    assert shape_problems(entry, real["tracklist"][0]) == []


# -- Spotify ----------------------------------------------------------------------------------


def spotify_with_token(catalog: Catalog, config: SandboxConfig) -> tuple[Spotify, str]:
    spotify = Spotify(catalog, config)
    body = b"grant_type=client_credentials&client_id=sandbox-client-id"
    body += b"&client_secret=sandbox-client-secret"
    token = SandboxRequest("POST", "/accounts/api/token", "/spotify/accounts/api/token", body=body)
    return spotify, spotify.serve(token).json()["access_token"]


def spotify_get(spotify: Spotify, token: str, path: str, query: str = "") -> Any:
    return spotify.serve(request(path, query, authorization=f"Bearer {token}"))


def test_spotify_batch_forbidden_mode(catalog: Catalog) -> None:
    ids = ",".join(t.spotify.id for t in catalog.tracks[:3])
    spotify, token = spotify_with_token(catalog, SandboxConfig(spotify_batch="forbidden"))
    for path in ("/v1/tracks", "/v1/audio-features"):
        reply = spotify_get(spotify, token, path, f"ids={ids}")
        assert (reply.status, reply.json()) == (
            403,
            {"error": {"status": 403, "message": "Forbidden"}},
        )
    single = spotify_get(spotify, token, f"/v1/tracks/{catalog.tracks[0].spotify.id}")
    assert single.status == 200
    features = spotify_get(spotify, token, f"/v1/audio-features/{catalog.tracks[0].spotify.id}")
    assert features.status == 200
    allowed, token2 = spotify_with_token(catalog, SandboxConfig())
    batch = spotify_get(allowed, token2, "/v1/tracks", f"ids={ids}").json()
    assert [t["id"] for t in batch["tracks"]] == ids.split(",")


def test_spotify_quota_exceeded_429_body(catalog: Catalog) -> None:
    spotify, token = spotify_with_token(catalog, SandboxConfig(spotify_rate_limit_body="quota"))
    track_id = catalog.tracks[0].spotify.id
    replies = [spotify_get(spotify, token, f"/v1/tracks/{track_id}") for _ in range(451)]
    assert [r.status for r in replies[-2:]] == [200, 429]
    assert replies[-1].json() == {
        "error": {"status": 429, "message": "Too many requests", "reason": "QUOTA_EXCEEDED"}
    }
    assert replies[-1].rate_limited and dict(replies[-1].headers)["Retry-After"] == "30"
    forced = spotify.rate_limit_reply(request("/v1/tracks"), "7")
    assert forced.json()["error"]["reason"] == "QUOTA_EXCEEDED"
    assert dict(forced.headers)["Retry-After"] == "7"


def test_spotify_preview_url_is_a_string_for_some_tracks(catalog: Catalog) -> None:
    spotify, token = spotify_with_token(catalog, SandboxConfig())
    previews = [
        spotify_get(spotify, token, f"/v1/tracks/{t.spotify.id}").json()["preview_url"]
        for t in catalog.tracks[:100]
    ]
    strings = [p for p in previews if p is not None]
    assert 5 <= len(strings) <= 40
    assert all(p.startswith("https://p.scdn.co/mp3-preview/") for p in strings)
    ids = ",".join(t.spotify.id for t in catalog.tracks[:50])
    batch = spotify_get(spotify, token, "/v1/tracks", f"ids={ids}").json()
    assert all(t["preview_url"] is None for t in batch["tracks"])  # none in multi-get


# -- modes from the command line --------------------------------------------------------------


@pytest.fixture(scope="module")
def strict_modes() -> Iterator[SandboxProcess]:
    handle = start_sandbox_process(
        10.0,
        "--lastfm-unknown-track", "error6", "--lastfm-rate-limit-status", "200",
        "--musicbrainz-generic-ua", "blocked", "--spotify-batch", "forbidden",
        "--spotify-rate-limit-body", "quota",
    )  # fmt: skip
    try:
        yield handle
    finally:
        handle.stop()


def test_command_line_modes(strict_modes: SandboxProcess) -> None:
    params = {"method": "track.getInfo", "api_key": KEY, "format": "json"}
    unknown = strict_modes.get("/lastfm/2.0/", params={**params, "artist": "Zz", "track": "Yy"})
    assert unknown.json()["error"] == 6
    strict_modes.set_faults("lastfm", rate_limit_next=1)
    limited = strict_modes.get("/lastfm/2.0/", params={**params, "artist": "Zz", "track": "Yy"})
    assert (limited.status, limited.json()["error"]) == (200, 29)
    generic = strict_modes.get(
        "/musicbrainz/ws/2/isrc/GBAAA9900303",
        params={"fmt": "json"},
        headers={"User-Agent": "python-requests/2.32.3"},
    )
    assert generic.status == 403
    strict_modes.set_faults("spotify", rate_limit_next=1)
    token = strict_modes.request(
        "POST",
        "/spotify/accounts/api/token",
        data=b"grant_type=client_credentials&client_id=sandbox-client-id"
        b"&client_secret=sandbox-client-secret",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ).json()["access_token"]
    quota = strict_modes.get(
        "/spotify/v1/tracks/" + "0" * 22, headers={"Authorization": f"Bearer {token}"}
    )
    assert (quota.status, quota.json()["error"].get("reason")) == (429, "QUOTA_EXCEEDED")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lastfm_unknown_track", "none"),
        ("lastfm_rate_limit_status", 503),
        ("musicbrainz_generic_ua", "dropped"),
        ("spotify_batch", "maybe"),
        ("spotify_rate_limit_body", "x"),
    ],
)
def test_bad_modes_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"{field} must be"):
        SandboxConfig(**{field: value})
