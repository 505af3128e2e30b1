"""``Sandbox.start()``/``stop()`` inside the test reactor (pytest-twisted), with treq."""

from __future__ import annotations

import json
from typing import Any

import pytest
import pytest_twisted
import treq
from twisted.internet import defer, task
from twisted.internet.error import ConnectError
from twisted.web.client import HTTPConnectionPool

from scrapy_apigw.sandbox import Sandbox, SandboxConfig

FORM = {b"Content-Type": [b"application/x-www-form-urlencoded"]}
TOKEN_BODY = (
    b"grant_type=client_credentials&client_id=sandbox-client-id&client_secret=sandbox-client-secret"
)


def _pool() -> HTTPConnectionPool:
    from twisted.internet import reactor

    return HTTPConnectionPool(reactor, persistent=False)


#: A User-Agent that names a contact, as MusicBrainz and Discogs require.
UA = {b"User-Agent": [b"sandbox-inprocess-tests/1.0 ( tests@example.invalid )"]}


async def fetch(url: str, method: str = "GET", **kwargs: Any) -> tuple[int, bytes]:
    response = await treq.request(method, url, pool=_pool(), **kwargs)
    return response.code, await treq.content(response)


async def sleep(seconds: float) -> None:
    from twisted.internet import reactor

    await task.deferLater(reactor, seconds, lambda: None)


@pytest_twisted.ensureDeferred
async def test_start_serve_stop() -> None:
    sandbox = Sandbox(SandboxConfig(speed=10))
    url = await sandbox.start()
    assert url.startswith("http://127.0.0.1:") and sandbox.url == url
    status, body = await fetch(url + "/_sandbox/health")
    assert status == 200 and json.loads(body)["speed"] == 10
    status, _ = await fetch(url + "/site/")
    assert status == 200 and sandbox.log[-1]["provider"] == "site"
    sandbox.set_faults("site", outage=True)
    assert (await fetch(url + "/site/"))[0] == 503
    sandbox.reset()
    assert sandbox.log == []
    await sandbox.stop()
    with pytest.raises(ConnectError):
        await fetch(url + "/site/")


@pytest_twisted.ensureDeferred
async def test_two_sandboxes_answer_identically() -> None:
    first, second = Sandbox(SandboxConfig()), Sandbox(SandboxConfig())
    urls = [await first.start(), await second.start()]
    track = first.catalog.tracks[42]
    paths = [
        f"/musicbrainz/ws/2/recording/{track.musicbrainz.recording_id}?fmt=json&inc=isrcs+tags",
        f"/lastfm/2.0/?method=track.getInfo&mbid={track.musicbrainz.recording_id}"
        "&api_key=sandbox-lastfm-key&format=json",
        f"/discogs/releases/{track.discogs.release_id}" if track.discogs else "/discogs/releases/1",
        "/site/tracklists/3",
    ]
    try:
        for path in paths:
            bodies = []
            for url in urls:
                status, body = await fetch(url + path, headers=UA)
                assert status in (200, 404)
                bodies.append(body.replace(url.encode(), b"BASE"))
            assert bodies[0] == bodies[1], path
        tokens = []
        for url in urls:
            _, body = await fetch(
                url + "/spotify/accounts/api/token", "POST", data=TOKEN_BODY, headers=FORM
            )
            tokens.append(json.loads(body)["access_token"])
        results = []
        for url, token in zip(urls, tokens, strict=True):
            _, body = await fetch(
                url + "/spotify/v1/search?q=artist%3Adeadmau5&type=track&limit=10",
                headers={b"Authorization": [f"Bearer {token}".encode()]},
            )
            results.append(body.replace(url.encode(), b"BASE"))
        assert results[0] == results[1] and b"Strobe" in results[0]
    finally:
        await first.stop()
        await second.stop()


@pytest_twisted.ensureDeferred
async def test_token_expires_after_ttl_over_speed() -> None:
    sandbox = Sandbox(SandboxConfig(token_ttl=2.0, speed=10.0))  # lives 0.2 s
    url = await sandbox.start()
    try:
        _, body = await fetch(
            url + "/spotify/accounts/api/token", "POST", data=TOKEN_BODY, headers=FORM
        )
        token = json.loads(body)
        assert token["expires_in"] == 2
        auth = {b"Authorization": [f"Bearer {token['access_token']}".encode()]}
        track_url = f"{url}/spotify/v1/tracks/{sandbox.catalog.tracks[0].spotify.id}"
        assert (await fetch(track_url, headers=auth))[0] == 200
        await sleep(0.3)
        status, body = await fetch(track_url, headers=auth)
        assert status == 401
        assert json.loads(body) == {"error": {"status": 401, "message": "The access token expired"}}
    finally:
        await sandbox.stop()


@pytest_twisted.ensureDeferred
async def test_latency_is_served_without_blocking_and_stop_cancels_it() -> None:
    from twisted.internet import reactor

    sandbox = Sandbox(SandboxConfig(audio_features="forbidden"))
    url = await sandbox.start()
    sandbox.set_faults("musicbrainz", latency=0.4)
    slow = defer.ensureDeferred(
        fetch(url + "/musicbrainz/ws/2/isrc/GBAAA9900303?fmt=json", headers=UA)
    )
    started = reactor.seconds()
    assert (await fetch(url + "/site/"))[0] == 200
    assert reactor.seconds() - started < 0.3  # answered while the slow one waits
    status, _ = await slow
    assert status == 404 and reactor.seconds() - started >= 0.35
    hanging = defer.ensureDeferred(fetch(url + "/musicbrainz/ws/2/isrc/GBAAA9900303", headers=UA))
    await sleep(0.05)
    await sandbox.stop()  # cancels the delayed answer and drops the connection
    with pytest.raises(Exception):  # noqa: B017 (treq reports the dropped connection variously)
        await hanging


@pytest_twisted.ensureDeferred
async def test_stop_drops_hanging_and_trickling_requests_and_leaves_no_timer() -> None:
    from twisted.internet import reactor

    sandbox = Sandbox(SandboxConfig(provider_ports=True))
    await sandbox.start()
    site = sandbox.hosts["site"]
    sandbox.set_faults("site", connection="hang")
    hanging = defer.ensureDeferred(fetch(site + "/site/"))
    sandbox.set_faults("musicbrainz", connection="trickle", trickle_seconds=30.0)
    trickling = defer.ensureDeferred(
        fetch(sandbox.url + "/musicbrainz/ws/2/isrc/GBAAA9900303", headers=UA)
    )
    await sleep(0.2)
    # The two requests race to the sandbox: which arrives first is not the point.
    assert sorted(r["fault"] for r in sandbox.log) == ["hang", "trickle"]

    def sandbox_timers() -> list[object]:
        return [
            c for c in reactor.getDelayedCalls() if getattr(c.func, "__self__", None) is sandbox
        ]

    assert len(sandbox_timers()) == 50  # the trickle's pieces, all still to come
    await sandbox.stop()
    for pending in (hanging, trickling):
        with pytest.raises(Exception):  # noqa: B017 (treq reports the dropped connection variously)
            await pending
    assert sandbox_timers() == []
    assert not sandbox._held and not sandbox._delayed


@pytest_twisted.ensureDeferred
async def test_refused_in_process_gives_a_connect_error_and_clearing_listens_again() -> None:
    sandbox = Sandbox(SandboxConfig(provider_ports=True))
    await sandbox.start()
    try:
        discogs = sandbox.hosts["discogs"] + "/discogs/releases/1"
        sandbox.set_faults("discogs", connection="refused")
        await sleep(0.05)  # the port closes within the reactor turn
        with pytest.raises(ConnectError):
            await fetch(discogs)
        assert (await fetch(sandbox.hosts["site"] + "/site/"))[0] == 200
        sandbox.clear_faults("discogs")
        assert (await fetch(discogs, headers=UA))[0] == 404  # served again, on the same port
    finally:
        await sandbox.stop()
