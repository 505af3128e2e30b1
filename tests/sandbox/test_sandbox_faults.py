"""Fault injection at run time: outages, forced rate limits, errors, latency, broken bodies,
connection faults (refused, reset, reset mid-body, hang, trickle), with raw clients."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from fixtures_sandbox import SandboxProcess, start_sandbox_process

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


# -- connection faults and malformed kinds (issue 5 §4) -------------------------------------------

RELEASE = "/discogs/releases/2818492"  # One More Time, Daft Punk: a 200 from Discogs
RAW_UA = "apigw-sandbox-tests/1.0 ( tests@example.invalid )"


@pytest.fixture(scope="module")
def ported_process() -> Iterator[SandboxProcess]:
    """A sandbox serving every provider on its own port as well (``--provider-ports``)."""
    with start_sandbox_process(10, "--provider-ports") as handle:
        yield handle


@pytest.fixture
def ported(ported_process: SandboxProcess) -> SandboxProcess:
    ported_process.reset()
    return ported_process


def raw_request(base: str, path: str, timeout: float = 5.0) -> socket.socket:
    """Open a TCP connection to *base* and send ``GET path`` (HTTP/1.1, ``Connection: close``)."""
    where = urlsplit(base)
    sock = socket.create_connection((where.hostname, where.port), timeout=timeout)
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {where.netloc}\r\nUser-Agent: {RAW_UA}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    return sock


@dataclass
class RawAnswer:
    """Everything a raw client read: the bytes, when each piece came, how the stream ended."""

    data: bytes
    times: list[float]  # seconds after the request was sent, one per recv
    error: OSError | None  # None: the server closed cleanly (EOF)

    def split(self) -> tuple[str, bytes]:
        head, _, body = self.data.partition(b"\r\n\r\n")
        return head.decode("latin-1"), body

    def header(self, name: str) -> str | None:
        for line in self.split()[0].split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


def read_all(sock: socket.socket) -> RawAnswer:
    start = time.monotonic()
    data, times, error = b"", [], None
    try:
        while piece := sock.recv(65536):
            data += piece
            times.append(time.monotonic() - start)
    except OSError as exc:  # ConnectionResetError, TimeoutError
        error = exc
    finally:
        sock.close()
    return RawAnswer(data, times, error)


def test_provider_ports_serve_only_their_provider(ported: SandboxProcess) -> None:
    hosts = ported.hosts()
    assert set(hosts) == {
        "spotify", "musicbrainz", "discogs", "lastfm", "beatport", "acousticbrainz", "site"
    }  # fmt: skip
    assert len({urlsplit(url).port for url in hosts.values()} | {urlsplit(ported.url).port}) == 8
    own = read_all(raw_request(hosts["discogs"], RELEASE))
    assert own.split()[0].startswith("HTTP/1.1 200") and own.error is None
    assert json.loads(own.split()[1])["id"] == 2818492
    other = read_all(raw_request(hosts["discogs"], "/site/"))
    assert other.split()[0].startswith("HTTP/1.1 404")
    assert b"serves only 'discogs'" in other.split()[1]
    assert (
        read_all(raw_request(hosts["discogs"], "/_sandbox/health"))
        .split()[0]
        .startswith("HTTP/1.1 404")
    )


def test_refused_closes_only_that_providers_port(ported: SandboxProcess) -> None:
    hosts = ported.hosts()
    where = urlsplit(hosts["discogs"])
    idle = socket.create_connection((where.hostname, where.port), timeout=5)  # a pooled conn
    snapshot = ported.set_faults("discogs", connection="refused")
    assert snapshot["connection"] == "refused"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((where.hostname, where.port), timeout=5)
    idle.settimeout(5)
    with pytest.raises(ConnectionResetError):  # open connections are dropped too
        assert idle.recv(1) == b"", "EOF instead of a reset"
    idle.close()
    mb = read_all(raw_request(hosts["musicbrainz"], "/musicbrainz/ws/2/isrc/NOZSG0225519?fmt=json"))
    assert mb.split()[0].startswith("HTTP/1.1 200")
    # The shared port is a different host: it still serves Discogs.
    assert ported.get(RELEASE).status == 200
    assert [r["fault"] for r in ported.log("discogs")] == [None]  # refused ones never arrived
    ported.clear_faults("discogs")
    again = read_all(raw_request(hosts["discogs"], RELEASE))  # the same port listens again
    assert again.split()[0].startswith("HTTP/1.1 200")


def test_refused_is_restored_by_reset(ported: SandboxProcess) -> None:
    where = urlsplit(ported.hosts()["lastfm"])
    ported.set_faults("lastfm", connection="refused")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((where.hostname, where.port), timeout=5)
    ported.reset()
    socket.create_connection((where.hostname, where.port), timeout=5).close()


def test_reset_before_the_response_sends_nothing(ported: SandboxProcess) -> None:
    ported.set_faults("discogs", connection="reset")
    answer = read_all(raw_request(ported.url, RELEASE))
    assert answer.data == b""
    assert isinstance(answer.error, ConnectionResetError)
    [record] = ported.log("discogs")
    assert (record["fault"], record["status"]) == ("reset", None)


def test_reset_mid_body_sends_headers_and_half_the_body(ported: SandboxProcess) -> None:
    whole = ported.get(RELEASE).body
    ported.set_faults("discogs", connection="reset_mid_body")
    answer = read_all(raw_request(ported.url, RELEASE))
    head, body = answer.split()
    assert head.startswith("HTTP/1.1 200")
    assert answer.header("Content-Length") == str(len(whole))
    assert body == whole[: len(whole) // 2]
    assert isinstance(answer.error, ConnectionResetError)
    assert [(r["fault"], r["status"]) for r in ported.log("discogs")] == [
        (None, 200),
        ("reset_mid_body", 200),
    ]


def test_hang_holds_the_request_until_the_faults_are_cleared(ported: SandboxProcess) -> None:
    ported.set_faults("discogs", connection="hang")
    waiting = read_all(raw_request(ported.url, RELEASE, timeout=0.5))
    assert waiting.data == b"" and isinstance(waiting.error, TimeoutError)
    held = raw_request(ported.url, RELEASE, timeout=5)
    time.sleep(0.2)  # the request has arrived and is held
    assert ported.log("discogs")[-1]["fault"] == "hang"
    assert ported.get("/site/").status == 200  # other requests are served meanwhile
    start = time.monotonic()
    ported.clear_faults("discogs")
    released = read_all(held)
    assert released.data == b"" and isinstance(released.error, ConnectionResetError)
    assert time.monotonic() - start < 3.0  # released, not held to the 5 s timeout
    assert [(r["fault"], r["status"]) for r in ported.log("discogs")] == [("hang", None)] * 2


def test_trickle_sends_the_body_slowly_and_whole(ported: SandboxProcess) -> None:
    whole = ported.get(RELEASE).body
    ported.set_faults("discogs", connection="trickle", trickle_seconds=1.2)
    answer = read_all(raw_request(ported.url, RELEASE))
    head, body = answer.split()
    assert head.startswith("HTTP/1.1 200") and answer.error is None
    assert body == whole
    assert answer.times[0] < 0.5  # the headers come at once
    assert answer.times[-1] >= 1.2  # the body takes the whole duration
    assert len(answer.times) >= 10  # in many small pieces
    assert ported.log("discogs")[-1]["fault"] == "trickle"


def test_connection_faults_spare_the_spotify_token_service(ported: SandboxProcess) -> None:
    for fault in ("reset", "hang", "trickle", "reset_mid_body"):
        ported.set_faults("spotify", connection=fault)
        token = ported.request(
            "POST", "/spotify/accounts/api/token", data=TOKEN_FORM, headers=FORM, timeout=2
        )
        assert token.status == 200, fault
    assert [r["fault"] for r in ported.log("spotify")] == [None] * 4


def test_latency_then_a_connection_fault(ported: SandboxProcess) -> None:
    ported.set_faults("discogs", connection="reset", latency=0.4)
    start = time.monotonic()
    answer = read_all(raw_request(ported.url, RELEASE))
    assert time.monotonic() - start >= 0.4
    assert answer.data == b"" and isinstance(answer.error, ConnectionResetError)


MALFORMED_CHECKS = {
    "truncated": lambda body, ctype, whole: body == whole[: len(whole) // 2] and "json" in ctype,
    "not_json": lambda body, ctype, whole: (
        body == b"This is not JSON: the sandbox replaced the provider's answer."
        and ctype.startswith("application/json")
    ),
    "html": lambda body, ctype, whole: (
        body.startswith(b"<!DOCTYPE html>") and ctype == "text/html; charset=utf-8"
    ),
    "wrong_content_type": lambda body, ctype, whole: (
        body == whole and ctype == "text/plain; charset=utf-8"
    ),
    "empty": lambda body, ctype, whole: body == b"" and "json" in ctype,
    "missing_keys": lambda body, ctype, whole: body == b"{}" and "json" in ctype,
}


@pytest.mark.parametrize("kind", sorted(MALFORMED_CHECKS))
def test_malformed_kinds(ported: SandboxProcess, kind: str) -> None:
    whole = ported.get(RELEASE).body
    ported.set_faults("discogs", malformed_rate=1.0, malformed_kind=kind)
    reply = ported.get(RELEASE)
    assert reply.status == 200
    assert MALFORMED_CHECKS[kind](reply.body, reply.headers["Content-Type"], whole), (
        reply.headers["Content-Type"],
        reply.body[:80],
    )
    assert reply.headers["Content-Length"] == str(len(reply.body))
    assert ported.log("discogs")[-1]["fault"] == "malformed"
    assert ported.get("/discogs/releases/1").status == 404  # only 2xx answers are broken


def test_expire_after_makes_a_burst_then_the_provider_recovers(ported: SandboxProcess) -> None:
    ported.set_faults("discogs", error_rate=1.0, error_status=502, expire_after=3)
    statuses = [ported.get(RELEASE).status for _ in range(5)]
    assert statuses == [502, 502, 502, 200, 200]
    assert ported.get("/_sandbox/faults").json()["discogs"]["error_rate"] == 0.0
    ported.set_faults("discogs", connection="reset", expire_after=1)
    assert isinstance(read_all(raw_request(ported.url, RELEASE)).error, ConnectionResetError)
    assert read_all(raw_request(ported.url, RELEASE)).split()[0].startswith("HTTP/1.1 200")


def test_new_fault_keys_are_validated(ported: SandboxProcess) -> None:
    for payload in (
        {"connection": "unplugged"},
        {"connection": True},
        {"malformed_kind": "garbled"},
        {"trickle_seconds": 0},
        {"trickle_seconds": "1"},
        {"expire_after": -1},
        {"expire_after": 1.5},
    ):
        reply = ported.request(
            "POST",
            "/_sandbox/faults",
            data=json.dumps({"provider": "discogs", **payload}).encode(),
            headers={"Content-Type": "application/json"},
        )
        assert reply.status == 400, payload
        assert "error" in reply.json()
    faults = ported.get("/_sandbox/faults").json()["discogs"]
    assert (faults["connection"], faults["malformed_kind"], faults["expire_after"]) == (
        None,
        "truncated",
        0,
    )


def test_hosts_is_empty_without_provider_ports(sandbox: SandboxProcess) -> None:
    assert sandbox.hosts() == {}


def test_injector_connection_faults_and_expiry() -> None:
    injector = FaultInjector({"a": 503}, seed=1)
    injector.set("a", connection="refused")
    assert injector.plan("a").connection is None  # refused acts on the port, not on requests
    injector.set("a", connection="hang", expire_after=2)
    assert injector.plan("a", outage_only=True).connection is None  # exempt: not counted
    assert [injector.plan("a").connection for _ in range(3)] == ["hang", "hang", None]
    injector.set("a", outage=True, connection="reset")
    assert (injector.plan("a").kind, injector.plan("a").connection) == ("outage", None)
    injector.set("a", outage=False, connection="trickle", trickle_seconds=2.5)
    plan = injector.plan("a")
    assert (plan.connection, plan.trickle_seconds) == ("trickle", 2.5)
    injector.set("a", connection=None, malformed_rate=1.0, malformed_kind="html")
    assert injector.plan("a").malformed == "html"
