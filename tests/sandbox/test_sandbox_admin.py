"""The admin API and the request log: record shape, no credentials, reset, determinism."""

from __future__ import annotations

import base64

from fixtures_sandbox import SandboxProcess

from scrapy_apigw.sandbox.catalog import Catalog
from scrapy_apigw.sandbox.config import DEFAULT_DECOYS

SECRETS = ("sandbox-lastfm-key", "sandbox-discogs-token", "sandbox-client-secret", "bogus-secret")


def test_record_shape(sandbox: SandboxProcess) -> None:
    sandbox.get("/site/", params={"limit": "2"})
    (record,) = sandbox.log()
    assert set(record) == {"t", "wall", "provider", "method", "path", "query", "status"} | {
        "rate_limited",
        "fault",
        "user_agent",
    }
    assert record["provider"] == "site" and record["method"] == "GET" and record["path"] == "/site/"
    assert record["query"] == {"limit": "2"} and record["status"] == 200
    assert record["rate_limited"] is False and record["fault"] is None
    assert isinstance(record["t"], float) and isinstance(record["wall"], float)
    assert sandbox.log("spotify") == []


def test_no_credential_is_ever_recorded(sandbox: SandboxProcess) -> None:
    sandbox.get(
        "/lastfm/2.0/", params={"method": "track.getInfo", "api_key": SECRETS[0], "format": "json"}
    )
    sandbox.get("/discogs/database/search", params={"q": "x", "token": SECRETS[1]})
    basic = base64.b64encode(f"sandbox-client-id:{SECRETS[2]}".encode()).decode()
    sandbox.request(
        "POST",
        "/spotify/accounts/api/token",
        params={"client_secret": SECRETS[3]},
        data=f"grant_type=client_credentials&client_secret={SECRETS[2]}".encode(),
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    raw = sandbox.get("/_sandbox/log").text
    for secret in SECRETS:
        assert secret not in raw
    records = sandbox.log()
    assert records[0]["query"]["api_key"] == "***"
    assert records[1]["query"]["token"] == "***"
    assert records[2]["query"] == {"client_secret": "***"}


def test_reset_health_and_catalog(sandbox: SandboxProcess) -> None:
    sandbox.get("/site/")
    sandbox.set_faults("site", latency=0.01)
    health = sandbox.health()
    assert health["status"] == "ok" and health["speed"] == sandbox.speed and health["requests"] == 1
    sandbox.reset()
    assert sandbox.log() == [] and sandbox.get("/_sandbox/faults").json()["site"]["latency"] == 0
    index = sandbox.get("/").json()
    assert index["spotify"] == sandbox.url + "/spotify/v1"
    assert sandbox.get("/_sandbox/nothing").status == 404
    assert sandbox.get("/nowhere/x").status == 404


def test_catalog_is_the_same_in_every_process(sandbox: SandboxProcess) -> None:
    """The subprocess (its own hash seed) and this process derive identical records."""
    served = sandbox.catalog()
    local = Catalog.load(decoys=DEFAULT_DECOYS)  # the session sandbox runs with the defaults
    assert served["count"] == len(local) and served["tracks"] == local.summary()
    assert served["decoys"] == local.decoy_summary() and len(local.decoys) == 901
    assert served["tracklists"] == sandbox.health()["tracklists"]


def test_acousticbrainz_is_gone(sandbox: SandboxProcess) -> None:
    reply = sandbox.get("/acousticbrainz/api/v1/96685213-a25c-4678-9a13-abd9ec81cf35/low-level")
    assert reply.status == 410 and "shut down" in reply.json()["message"]
    assert sandbox.log()[-1]["provider"] == "acousticbrainz"
