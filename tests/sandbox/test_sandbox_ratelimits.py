"""Each provider's rate-limit signal, provoked with bursts over real loopback sockets.

Uses its own sandbox at speed 1 (real windows), so bursts exceed the limits deterministically;
one test checks that the session sandbox's ``speed`` shortens the recovery.
"""

from __future__ import annotations

import base64
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fixtures_sandbox import SandboxProcess, load_shared_fixture, start_sandbox_process

from scrapy_apigw.sandbox.catalog import Catalog

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
MB_BODY = {
    "error": "Your requests are exceeding the allowable rate limit. Please see "
    "http://wiki.musicbrainz.org/XMLWebService for more information."
}


@pytest.fixture(scope="module")
def slow_sandbox() -> Iterator[SandboxProcess]:
    handle = start_sandbox_process(1.0)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def real_time(slow_sandbox: SandboxProcess) -> SandboxProcess:
    slow_sandbox.reset()
    return slow_sandbox


def test_spotify_rolling_window_429(real_time: SandboxProcess) -> None:
    basic = base64.b64encode(b"sandbox-client-id:sandbox-client-secret").decode()
    token = real_time.request(
        "POST",
        "/spotify/accounts/api/token",
        data=b"grant_type=client_credentials",
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    ).json()["access_token"]
    track_id = Catalog.load().tracks[0].spotify.id
    headers = {"Authorization": f"Bearer {token}"}
    with ThreadPoolExecutor(16) as pool:
        replies = list(
            pool.map(
                lambda _: real_time.get(f"/spotify/v1/tracks/{track_id}", headers=headers),
                range(470),
            )
        )
    assert Counter(r.status for r in replies) == {200: 450, 429: 20}
    for reply in (r for r in replies if r.status == 429):
        assert reply.json() == {"error": {"status": 429, "message": "API rate limit exceeded"}}
        assert 1 <= int(reply.headers["Retry-After"]) <= 30
    records = real_time.log("spotify")
    assert sum(r["rate_limited"] for r in records) == 20
    assert all(r["status"] == 429 for r in records if r["rate_limited"])


def test_musicbrainz_503(real_time: SandboxProcess) -> None:
    statuses = []
    for _ in range(6):
        reply = real_time.get("/musicbrainz/ws/2/isrc/GBAAA9900303", params={"fmt": "json"})
        statuses.append(reply.status)
        if reply.status == 503:
            assert reply.json() == MB_BODY
            real = load_shared_fixture(SHARED, "musicbrainz/TRANSCRIBED_error_503_rate_limit.json")
            assert reply.json() == real
    assert statuses == [404, 404, 404, 503, 503, 503]  # burst tolerance 3, then 1 request/s
    assert [r["rate_limited"] for r in real_time.log("musicbrainz")] == [False] * 3 + [True] * 3


def test_discogs_moving_window(real_time: SandboxProcess) -> None:
    replies = [real_time.get("/discogs/releases/1") for _ in range(27)]
    assert [r.status for r in replies] == [404] * 25 + [429] * 2
    assert [r.headers["X-Discogs-Ratelimit-Used"] for r in replies[:3]] == ["1", "2", "3"]
    assert replies[24].headers["X-Discogs-Ratelimit-Remaining"] == "0"
    over = replies[25]
    assert over.json() == {"message": "You are making requests too quickly."}
    assert over.headers["X-Discogs-Ratelimit"] == "25" and over.headers["Retry-After"] is None
    authed = real_time.get(
        "/discogs/releases/1", headers={"Authorization": "Discogs token=sandbox-discogs-token"}
    )
    assert authed.status == 404
    assert (authed.headers["X-Discogs-Ratelimit"], authed.headers["X-Discogs-Ratelimit-Used"]) == (
        "60",
        "26",
    )
    assert sum(r["rate_limited"] for r in real_time.log("discogs")) == 2


def test_lastfm_error_29(real_time: SandboxProcess) -> None:
    params = {
        "method": "track.getInfo",
        "api_key": "sandbox-lastfm-key",
        "format": "json",
        "artist": "x",
        "track": "y",
    }
    replies = [real_time.get("/lastfm/2.0/", params=params) for _ in range(32)]
    assert all(r.status == 200 for r in replies[:25])
    limited = [r for r in replies if r.status == 429]
    assert len(limited) >= 4
    assert limited[0].json() == {
        "error": 29,
        "message": "Rate Limit Exceeded - Your IP has made too many requests in a short period",
        "links": [],
    }


def test_speed_shortens_recovery(sandbox: SandboxProcess) -> None:
    def status() -> int:
        return sandbox.get("/musicbrainz/ws/2/isrc/GBAAA9900303", params={"fmt": "json"}).status

    statuses = [status() for _ in range(8)]  # the burst (3) plus more than speed x 8 ms allows
    assert 503 in statuses
    # The 8 requests all count (refused ones too): 7 s of MusicBrainz time pass before the
    # next is allowed, 0.7 s at speed 10.
    time.sleep(7.5 / sandbox.speed)
    assert status() == 404
