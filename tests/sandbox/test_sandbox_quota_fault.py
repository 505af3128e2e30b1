"""The sandbox's quota fault: a sliding window a test puts on top of a provider's own limit
(e.g. "10 requests per moving second" on Last.fm, whose own limit is far looser)."""

from __future__ import annotations

import pytest
from fixtures_sandbox import SandboxProcess

from scrapy_apigw.sandbox.faults import FaultError, FaultInjector


def test_the_quota_admits_the_limit_per_moving_window_and_tells_the_wait() -> None:
    injector = FaultInjector({"a": 503})
    injector.set("a", quota_limit=3, quota_window=1.0)
    kinds = [injector.plan("a", now=t).kind for t in (10.0, 10.2, 10.4, 10.6)]
    assert kinds == [None, None, None, "quota"]
    refused = injector.plan("a", now=10.7)
    assert (refused.kind, refused.retry_after) == ("quota", "1")  # 0.3 s, rounded up to 1
    assert injector.plan("a", now=11.0).kind is None  # 10.0 left the window (10.0, 11.0]
    assert injector.plan("a", now=11.1).kind == "quota"  # refusals were not counted
    assert injector.plan("a").kind is None  # no arrival instant: no quota
    injector.clear("a")
    assert [injector.plan("a", now=11.2).kind for _ in range(5)] == [None] * 5


def test_quota_settings_are_validated() -> None:
    injector = FaultInjector({"a": 503})
    with pytest.raises(FaultError, match="quota_limit must be an int >= 0"):
        injector.set("a", quota_limit=-1)
    with pytest.raises(FaultError, match="quota_window must be seconds > 0"):
        injector.set("a", quota_window=0)


def test_over_the_quota_the_provider_answers_its_own_rate_limit(sandbox: SandboxProcess) -> None:
    sandbox.set_faults("lastfm", quota_limit=2, quota_window=60.0)
    path = (
        "/lastfm/2.0/?method=track.getInfo&artist=x&track=y&format=json&api_key=sandbox-lastfm-key"
    )
    statuses = [sandbox.get(path).status for _ in range(3)]
    refused = sandbox.get(path)
    assert statuses == [200, 200, 429]  # Last.fm answers error 6 "Track not found" in a 200
    assert refused.json()["error"] == 29
    assert int(refused.headers["retry-after"]) >= 59
    log = sandbox.log()
    assert [(r["rate_limited"], r["fault"]) for r in log[2:]] == [(True, "quota")] * 2
