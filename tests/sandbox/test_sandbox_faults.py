"""Fault injection at run time: outages, forced rate limits, errors, latency, broken bodies."""

from __future__ import annotations

import json
import threading
import time

import pytest
from fixtures_sandbox import SandboxProcess

from scrapy_apigw.sandbox.faults import FaultError, FaultInjector

LASTFM = {
    "method": "track.getInfo",
    "api_key": "sandbox-lastfm-key",
    "format": "json",
    "artist": "x",
    "track": "y",
}
TOKEN_FORM = (
    b"grant_type=client_credentials&client_id=sandbox-client-id&client_secret=sandbox-client-secret"
)
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_outage_per_provider(sandbox: SandboxProcess) -> None:
    for provider in ("spotify", "musicbrainz", "discogs", "lastfm", "site"):
        sandbox.set_faults(provider, outage=True)
    spotify = sandbox.get("/spotify/v1/search", params={"q": "x", "type": "track"})
    assert spotify.status == 503 and spotify.json()["error"]["status"] == 503
    token = sandbox.request("POST", "/spotify/accounts/api/token", data=TOKEN_FORM, headers=FORM)
    assert token.status == 503  # the token service fails too in an outage
    musicbrainz = sandbox.get("/musicbrainz/ws/2/isrc/GBAAA9900303", params={"fmt": "json"})
    assert musicbrainz.status == 502 and "Bad Gateway" in musicbrainz.text  # 503 means "too fast"
    discogs = sandbox.get("/discogs/releases/1")
    assert discogs.status == 503 and discogs.headers["X-Discogs-Ratelimit"] == "25"
    lastfm = sandbox.get("/lastfm/2.0/", params=LASTFM)
    assert lastfm.status == 503 and lastfm.json()["error"] == 11
    assert sandbox.get("/site/").status == 503
    records = sandbox.log()
    assert [r["fault"] for r in records] == ["outage"] * 6
    sandbox.clear_faults("discogs")
    assert sandbox.get("/discogs/releases/1").status == 404
    custom = sandbox.set_faults("musicbrainz", error_status=504)
    assert custom["error_status"] == 504 and custom["outage"] is True
    assert sandbox.get("/musicbrainz/ws/2/isrc/GBAAA9900303").status == 504


@pytest.mark.parametrize("retry_after", ["3", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_rate_limit_next_sends_retry_after_verbatim(
    sandbox: SandboxProcess, retry_after: str
) -> None:
    for provider in ("spotify", "musicbrainz", "discogs", "lastfm"):
        sandbox.set_faults(provider, rate_limit_next=2, retry_after=retry_after)
    token = sandbox.request("POST", "/spotify/accounts/api/token", data=TOKEN_FORM, headers=FORM)
    assert token.status == 200  # the token service does not consume forced rate limits
    bearer = {"Authorization": "Bearer " + token.json()["access_token"]}
    calls = {
        "spotify": lambda: sandbox.get(
            "/spotify/v1/search", params={"q": "x", "type": "track"}, headers=bearer
        ),
        "musicbrainz": lambda: sandbox.get(
            "/musicbrainz/ws/2/isrc/GBAAA9900303", params={"fmt": "json"}
        ),
        "discogs": lambda: sandbox.get("/discogs/releases/1"),
        "lastfm": lambda: sandbox.get("/lastfm/2.0/", params=LASTFM),
    }
    signals = {
        "spotify": (
            429,
            lambda b: b == {"error": {"status": 429, "message": "API rate limit exceeded"}},
        ),
        "musicbrainz": (503, lambda b: b["error"].startswith("Your requests are exceeding")),
        "discogs": (429, lambda b: b == {"message": "You are making requests too quickly."}),
        "lastfm": (429, lambda b: b["error"] == 29),
    }
    for provider, call in calls.items():
        first, second, third = call(), call(), call()
        status, body_ok = signals[provider]
        for reply in (first, second):
            assert reply.status == status, provider
            assert reply.headers["Retry-After"] == retry_after, provider
            assert body_ok(reply.json()), provider
        assert third.status == (200 if provider in ("spotify", "lastfm") else 404), provider
    records = [r for r in sandbox.log() if r["path"] != "/spotify/accounts/api/token"]
    forced = [r for r in records if r["fault"] == "forced_429"]
    assert len(forced) == 8 and not any(r["rate_limited"] for r in forced)


def test_error_rate_is_seeded(sandbox: SandboxProcess) -> None:
    def run() -> list[int]:
        sandbox.set_faults("site", error_rate=0.5, error_status=500)
        return [sandbox.get("/site/tracklists/1").status for _ in range(30)]

    first = run()
    assert set(first) == {200, 500}
    sandbox.reset()  # re-seeds the generators
    assert run() == first
    assert sum(r["fault"] == "error" for r in sandbox.log()) == first.count(500)


def test_malformed_bodies(sandbox: SandboxProcess) -> None:
    sandbox.set_faults("lastfm", malformed_rate=1.0)
    reply = sandbox.get("/lastfm/2.0/", params={**LASTFM, "method": "track.getTopTags"})
    assert reply.status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.body)
    assert sandbox.log()[-1]["fault"] == "malformed"
    error = sandbox.get("/lastfm/2.0/", params={**LASTFM, "method": "nope"})
    assert error.status == 400 and error.json()["error"] == 3  # only 2xx bodies are broken


def test_latency_does_not_block_other_requests(sandbox: SandboxProcess) -> None:
    sandbox.set_faults("musicbrainz", latency=0.6)
    slow: dict[str, float] = {}

    def slow_call() -> None:
        start = time.monotonic()
        sandbox.get("/musicbrainz/ws/2/isrc/GBAAA9900303", params={"fmt": "json"})
        slow["elapsed"] = time.monotonic() - start

    worker = threading.Thread(target=slow_call)
    worker.start()
    time.sleep(0.1)
    start = time.monotonic()
    assert sandbox.get("/site/").status == 200
    fast = time.monotonic() - start
    worker.join()
    assert fast < 0.3 and slow["elapsed"] >= 0.6
    assert [r["fault"] for r in sandbox.log("musicbrainz")] == ["latency"]


def test_fault_validation(sandbox: SandboxProcess) -> None:
    for payload in (
        {"provider": "nope", "outage": True},
        {"provider": "spotify", "outrage": True},
        {"provider": "spotify", "error_rate": 2},
        {"provider": "spotify", "error_status": 200},
        {"provider": "spotify", "latency": -1},
        {"provider": "spotify", "rate_limit_next": "2"},
        {"outage": True},
    ):
        reply = sandbox.request(
            "POST",
            "/_sandbox/faults",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        assert reply.status == 400, payload
        assert "error" in reply.json()
    assert sandbox.get("/_sandbox/faults").json()["spotify"]["outage"] is False


def test_injector_precedence() -> None:
    injector = FaultInjector({"a": 503, "b": 502}, seed=7)
    injector.set("a", outage=True, rate_limit_next=1, latency=0.2)
    plan = injector.plan("a")
    assert (plan.kind, plan.status, plan.latency) == ("outage", 503, 0.2)
    injector.set("a", outage=False)
    assert injector.plan("a", outage_only=True).kind is None  # exempt requests keep the 429
    assert injector.plan("a").kind == "forced_429"
    assert injector.plan("a").kind is None
    injector.set("b", error_rate=1.0)
    assert (injector.plan("b").kind, injector.plan("b").status) == ("error", 502)
    with pytest.raises(FaultError):
        injector.set("c", outage=True)
