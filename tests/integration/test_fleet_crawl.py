"""Three real ``scrapy runspider`` processes share one MusicBrainz quota through one redis-server.

Against ONE sandbox subprocess (speed 10: MusicBrainz allows 10 req/s with a burst of 3, and
its log has each request's arrival time ``t``). The client is configured at MusicBrainz's
1 req/s, burst 1, scaled by the speed to 10 req/s: each process alone is at the provider's
limit, so three processes without shared limits send three times the quota.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures_bad_redis import SlowProxy
from fixtures_redis import RedisServer, own_redis_server

from scrapy_apigw.fleet.keys import processes_key
from scrapy_apigw.fleet.scripts import load_script

WORKTREE = Path(__file__).resolve().parents[2]
SPIDER = Path(__file__).with_name("fleet_spider.py")
#: The provider's window (MusicBrainz: 1 s) at the sandbox's speed 10, and the client's share.
WINDOW = 0.1
RATE, BURST = 10.0, 1

pytestmark = pytest.mark.crawl


class Fleet:
    """N crawl processes of one fleet; each writes its feed and its log under *workdir*."""

    def __init__(self, sandbox: Any, redis_url: str, workdir: Path, **settings: Any) -> None:
        self.sandbox = sandbox
        self.redis_url = redis_url
        self.workdir = workdir
        self.fleet = f"test-{uuid.uuid4().hex[:8]}"
        self.settings = settings
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, tags: str, count: int) -> None:
        for tag in tags:
            settings = {
                "APIGW_SANDBOX": True,
                "APIGW_SANDBOX_URL": self.sandbox.url,
                "APIGW_SANDBOX_SPEED": self.sandbox.speed,
                "APIGW_REDIS_URL": self.redis_url,
                "APIGW_CACHE_ENABLED": False,
                "APIGW_FLEET": self.fleet,
                "LOG_LEVEL": "INFO",
                **self.settings,
            }
            command = [sys.executable, "-m", "scrapy", "runspider", str(SPIDER)]
            command += ["-a", f"base={self.sandbox.url}", "-a", f"tag={tag}"]
            command += ["-a", f"count={count}", "-O", str(self.feed(tag))]
            for name, value in settings.items():
                text = json.dumps(value) if isinstance(value, dict) else value
                command += ["-s", f"{name}={text}"]
            log = open(self.log_path(tag), "wb")  # noqa: SIM115 - owned by the process
            self.processes.append(
                subprocess.Popen(
                    command,
                    cwd=self.workdir,
                    env={**os.environ, "PYTHONPATH": str(WORKTREE)},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            log.close()

    def wait(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        for process in self.processes:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
            assert process.returncode == 0, self.logs()

    def kill(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    def feed(self, tag: str) -> Path:
        return self.workdir / f"feed-{tag}.jsonl"

    def log_path(self, tag: str) -> Path:
        return self.workdir / f"crawl-{tag}.log"

    def items(self, tag: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.feed(tag).read_text().splitlines()]

    def log(self, tag: str) -> str:
        return self.log_path(tag).read_text(errors="replace")

    def logs(self) -> str:
        return "\n".join(self.log(tag)[-3000:] for tag in "123" if self.log_path(tag).exists())


@pytest.fixture
def fleet_factory(tmp_path: Path) -> Iterator[Callable[..., Fleet]]:
    fleets: list[Fleet] = []

    def make(sandbox: Any, redis_url: str, **settings: Any) -> Fleet:
        fleets.append(Fleet(sandbox, redis_url, tmp_path, **settings))
        return fleets[-1]

    yield make
    for fleet in fleets:
        fleet.kill()


def musicbrainz_calls(sandbox: Any) -> list[dict[str, Any]]:
    return [r for r in sandbox.log() if r["provider"] == "musicbrainz"]


def tag_of(record: dict[str, Any]) -> str:
    return record["path"].split("/isrc/ZZZZZ")[1][0]


def most_in_window(arrivals: list[float], window: float) -> int:
    return max(sum(1 for t in arrivals if a <= t < a + window) for a in arrivals)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_three_processes_share_one_quota_and_a_pause_seen_by_one_holds_all(
    sandbox: Any, redis_url: str, fleet_factory: Callable[..., Fleet]
) -> None:
    fleet = fleet_factory(sandbox, redis_url)
    started = time.monotonic()
    fleet.start("123", count=30)
    # Once every process is sending, one of them gets a 429 with Retry-After: 2.
    wait_for(
        lambda: {tag_of(r) for r in musicbrainz_calls(sandbox)} == set("123"),
        60,
        "all three processes to send",
    )
    sandbox.set_faults("musicbrainz", rate_limit_next=1, retry_after="2")
    fleet.wait()
    runtime = time.monotonic() - started

    calls = musicbrainz_calls(sandbox)
    for tag in "123":
        items = fleet.items(tag)
        assert len(items) == 30, fleet.log(tag)[-3000:]
        assert all(item.get("status") == 404 for item in items), items
    rejections = [r for r in calls if r["rate_limited"]]
    assert rejections == []
    forced = [r for r in calls if r["fault"] == "forced_429"]
    assert len(forced) == 1
    # 90 lookups plus the one refused, once each (a 404 is an answer, not retried).
    assert len(calls) == 91
    arrivals = sorted(r["t"] for r in calls)
    most = most_in_window(arrivals, WINDOW)
    assert most <= RATE * WINDOW + BURST, most
    # The pause: the rate-limit answer at t0 said "2 s"; nobody sends in [t0 + 0.05, t0 + 2)
    # (a request granted just before the pause reached Redis may still arrive right after t0).
    t0 = forced[0]["t"]
    during = [r for r in calls if t0 + 0.05 <= r["t"] < t0 + 2.0]
    assert during == []
    after = [r for r in calls if r["t"] >= t0 + 2.0]
    assert {tag_of(r) for r in after} == set("123")
    print(
        f"3 processes, {len(calls)} MusicBrainz calls, {len(rejections)} rejections, "
        f"max {most} arrivals per {WINDOW} s, crawl {runtime:.1f} s"
    )


def test_without_shared_limits_three_processes_send_three_times_the_quota(
    sandbox: Any, redis_url: str, fleet_factory: Callable[..., Fleet]
) -> None:
    # The baseline the test above is measured against: the same crawl, shared limits off.
    fleet = fleet_factory(sandbox, redis_url, APIGW_SHARED_LIMITS=False, RETRY_TIMES=0)
    fleet.start("123", count=30)
    fleet.wait()
    calls = musicbrainz_calls(sandbox)
    rejections = [r for r in calls if r["rate_limited"]]
    print(f"shared limits off: {len(calls)} MusicBrainz calls, {len(rejections)} rejections")
    assert rejections != []


def test_an_open_circuit_seen_by_one_holds_all_and_half_open_probes_total_the_threshold(
    sandbox: Any, redis_url: str, fleet_factory: Callable[..., Fleet]
) -> None:
    # Open after 3 failures fleet-wide, for 20 s / speed 10 = 2 s; 2 half-open successes close.
    breaker = {"failure_threshold": 3, "open_timeout": 20, "success_threshold": 2}
    fleet = fleet_factory(
        sandbox,
        redis_url,
        RETRY_TIMES=0,
        APIGW_PROVIDERS={"musicbrainz": {**breaker, "max_retries": 0}},
    )
    fleet.start("123", count=40)
    wait_for(
        lambda: {tag_of(r) for r in musicbrainz_calls(sandbox)} == set("123"),
        60,
        "all three processes to send",
    )
    sandbox.set_faults("musicbrainz", outage=True, error_status=500)
    wait_for(
        lambda: sum(r["fault"] == "outage" for r in musicbrainz_calls(sandbox)) >= 3,
        30,
        "3 failures",
    )
    # Recovered, but slow: each probe takes 0.5 s, so probes of other processes would overlap.
    sandbox.clear_faults("musicbrainz")
    sandbox.set_faults("musicbrainz", latency=0.5)
    fleet.wait()

    for tag in "123":
        assert len(fleet.items(tag)) == 40, fleet.log(tag)[-3000:]
    calls = musicbrainz_calls(sandbox)
    failures = [r for r in calls if r["fault"] == "outage"]
    t3 = failures[2]["t"]
    # Open at the third failure (a request already granted may still arrive just after it),
    # then nobody sends for the open period.
    assert len(failures) <= 4, failures
    held = [r for r in calls if t3 + 0.15 <= r["t"] < t3 + 2.0]
    assert held == []
    # Half-open: the first probe arrives after the open period; within the 0.4 s before any
    # probe is answered, exactly success_threshold = 2 probes arrive, from all processes.
    probe = min(r["t"] for r in calls if r["t"] >= t3 + 0.15)
    probes = [r for r in calls if probe <= r["t"] < probe + 0.4]
    assert len(probes) == 2, [(round(r["t"] - probe, 3), tag_of(r)) for r in probes]
    logs = "".join(fleet.log(tag) for tag in "123")
    # Each fleet transition is logged and counted by exactly one process.
    assert logs.count("circuit for musicbrainz OPEN (was closed)") == 1
    assert logs.count("circuit for musicbrainz half_open (was open)") == 1
    assert logs.count("circuit for musicbrainz closed (was half_open)") == 1
    print(f"breaker: {len(failures)} failures, {len(probes)} probes, {len(calls)} calls")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own, to kill and restart (not the session one)."""
    with own_redis_server(tmp_path / "redis") as server:
        yield server


#: Log lines stamped with their epoch time, to compare with the sandbox log's ``wall``.
TIMED_LOG = "%(created).6f [%(name)s] %(levelname)s: %(message)s"
#: A process's share while falling back, over one second: 10 / 3 req/s plus its burst of
#: max(1, 1 // 3) = 1 token, so at most 4 arrivals in any second.
SHARE_PER_SECOND = 4


def log_time(log: str, text: str, since: float) -> float:
    """The epoch time of the first line of *log* (``TIMED_LOG``) from *since* on that contains
    *text*."""
    times = [float(line.split(" ", 1)[0]) for line in log.splitlines() if text in line]
    later = [t for t in times if t >= since]
    assert later, f"no {text!r} in the log from {since} on"
    return later[0]


def beats(redis: RedisServer, heartbeats: str) -> dict[bytes, float]:
    """Process id -> its last heartbeat (server time, us)."""
    flat = redis.command("ZRANGE", heartbeats, 0, -1, "WITHSCORES")
    return {flat[i]: float(flat[i + 1]) for i in range(0, len(flat), 2)}


def seen_by_all(redis: RedisServer, heartbeats: str) -> None:
    """Wait until 3 processes are live and each has beaten since: each has counted 3."""
    wait_for(lambda: redis.command("ZCARD", heartbeats) == 3, 30, "3 heartbeats")
    first = beats(redis, heartbeats)

    def all_beat_again() -> bool:
        now = beats(redis, heartbeats)
        return set(now) == set(first) and all(now[p] > first[p] for p in first)

    wait_for(all_beat_again, 30, "each process to beat again")


def rate_script_loaded(redis: RedisServer) -> bool:
    return redis.command("SCRIPT", "EXISTS", load_script("rate").sha) == [1]


@pytest.fixture
def slow_proxy(own_redis: RedisServer) -> Iterator[SlowProxy]:
    """The test's own redis-server behind a proxy that can hold its replies."""
    proxy = SlowProxy(own_redis.port)
    yield proxy
    proxy.stop()


@pytest.mark.parametrize("outage", ["killed", "frozen", "restarted", "slow"])
def test_redis_lost_mid_crawl_falls_back_to_the_local_share_then_back_to_shared(
    outage: str,
    sandbox: Any,
    own_redis: RedisServer,
    slow_proxy: SlowProxy,
    fleet_factory: Callable[..., Fleet],
) -> None:
    # Heartbeat TTL 1.5 s: Redis is probed every 0.5 s while falling back. The fleet talks to
    # Redis through the proxy (which passes everything on at once, except while "slow").
    fleet = fleet_factory(
        sandbox,
        slow_proxy.url,
        APIGW_FLEET_HEARTBEAT=1.5,
        APIGW_CACHE_TIMEOUT=0.3,
        LOG_FORMAT=TIMED_LOG,
    )
    started = time.monotonic()
    fleet.start("123", count=40)
    heartbeats = processes_key("apigw", fleet.fleet)
    wait_for(lambda: len(musicbrainz_calls(sandbox)) >= 15, 60, "15 calls")
    seen_by_all(own_redis, heartbeats)  # each process's share is 1/3
    fault = time.time()
    if outage == "killed":  # refused for 1.5 s of crawling, then a new server
        own_redis.stop()
        time.sleep(1.5)
        own_redis.start()
    elif outage == "frozen":  # SIGSTOP: connections open, nothing answered, for 1.5 s
        own_redis.pause()
        time.sleep(1.5)
        own_redis.resume()
    elif outage == "slow":  # every reply 1 s late (the fleet's timeout is 0.3 s), for 1.5 s
        slow_proxy.delay = 1.0
        time.sleep(1.5)
        slow_proxy.delay = 0.0
    else:  # a new server on the same port at once: no scripts, no state
        own_redis.stop()
        own_redis.start()
    if outage in ("killed", "restarted"):
        assert own_redis.command("ZCARD", heartbeats) == 0
        assert not rate_script_loaded(own_redis)
    # The fleet starts over on the new server: every process beats there again and the rate
    # script is loaded again after NOSCRIPT, while the crawl goes on.
    seen_by_all(own_redis, heartbeats)
    wait_for(lambda: rate_script_loaded(own_redis), 30, "the rate script")
    fleet.wait()
    runtime = time.monotonic() - started

    calls = musicbrainz_calls(sandbox)
    shares = {}
    periods = []
    for tag in "123":
        items = fleet.items(tag)
        assert len(items) == 40, fleet.log(tag)[-3000:]
        assert all(item.get("status") == 404 for item in items), items
        log = fleet.log(tag)
        # One warning and one return to shared for the fault. (A loaded machine may also miss
        # the 0.3 s timeout once more, before the fault or just after the return: another
        # outage, with its own warning and return, counted too: seen once in CI, 2026-12-03,
        # two warnings after a frozen Redis.)
        lost = log_time(log, "fleet limits unavailable", fault)
        back = log_time(log, "back to the shared limits", lost)
        assert lost < back
        assert "back to this process's share of its rate (1/3)" in log
        outages = log.count("fleet limits unavailable")
        assert f"'apigw/fleet/outages': {outages}" in log, log[-3000:]
        assert f"'apigw/fleet/recoveries': {outages}" in log
        assert f"'apigw/musicbrainz/limits/fallback': {outages}" in log
        # While this process fell back, it sent at its share at most.
        periods.append((lost, back))
        own = sorted(r["wall"] for r in calls if tag_of(r) == tag and lost <= r["wall"] <= back)
        # (After a restart the outage may end before the share's first token, 0.3 s.)
        assert own or outage == "restarted", f"process {tag} sent nothing while falling back"
        shares[tag] = most_in_window(own, 1.0) if own else 0
        assert shares[tag] <= SHARE_PER_SECOND, (tag, [round(t - lost, 3) for t in own])
    rejections = [r for r in calls if r["rate_limited"]]
    arrivals = sorted(r["t"] for r in calls)
    most = most_in_window(arrivals, WINDOW)
    print(
        f"Redis {outage}: {len(calls)} calls, {len(rejections)} rejections, max {most} "
        f"arrivals per {WINDOW} s, most per process per 1 s in fallback {shares}, "
        f"crawl {runtime:.1f} s"
    )
    timeline = [(round(r["t"] - arrivals[0], 3), tag_of(r), r["rate_limited"]) for r in calls]
    assert rejections == [], timeline
    # Shared before the first process fell back, and again once the last one is back and its
    # local share's cap (one probe interval, 0.5 s) is over: the fleet within rate + burst.
    first_lost, last_back = min(lost for lost, _ in periods), max(back for _, back in periods)
    before = [r["wall"] for r in calls if r["wall"] < first_lost]
    after = [r["wall"] for r in calls if r["wall"] > last_back + 0.5]
    assert before and after
    assert most_in_window(before, WINDOW) <= RATE * WINDOW + BURST, timeline
    assert most_in_window(after, WINDOW) <= RATE * WINDOW + BURST, timeline
    # While falling back each process may send its burst of 1 token at the same moment as the
    # others (their shares are not coordinated): rate x window + 3 x 1, not rate x window + 1.
    assert most <= RATE * WINDOW + 3, timeline


def test_script_flush_on_a_live_redis_reloads_the_scripts_without_falling_back(
    sandbox: Any, own_redis: RedisServer, fleet_factory: Callable[..., Fleet]
) -> None:
    fleet = fleet_factory(sandbox, own_redis.url, APIGW_FLEET_HEARTBEAT=1.5)
    fleet.start("123", count=30)
    wait_for(lambda: len(musicbrainz_calls(sandbox)) >= 15, 60, "15 calls")
    assert rate_script_loaded(own_redis)
    own_redis.command("SCRIPT", "FLUSH")
    assert not rate_script_loaded(own_redis)
    flushed_at = len(musicbrainz_calls(sandbox))
    wait_for(lambda: rate_script_loaded(own_redis), 30, "the rate script")
    fleet.wait()

    calls = musicbrainz_calls(sandbox)
    assert len(calls) > flushed_at
    for tag in "123":
        assert len(fleet.items(tag)) == 30, fleet.log(tag)[-3000:]
        log = fleet.log(tag)
        assert "fleet limits unavailable" not in log, log[-3000:]
        assert "apigw/fleet/outages" not in log
    assert [r for r in calls if r["rate_limited"]] == []
    assert most_in_window(sorted(r["t"] for r in calls), WINDOW) <= RATE * WINDOW + BURST


@pytest.fixture
def password_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own that wants the password ``right-pass-4711``."""
    with own_redis_server(tmp_path / "redis-auth", ("--requirepass", "right-pass-4711")) as server:
        yield server


@pytest.mark.parametrize("server", ["not-redis", "wrong-password"])
def test_a_redis_url_that_gives_no_fleet_is_one_warning_naming_the_setting_and_no_item_lost(
    server: str,
    sandbox: Any,
    request: pytest.FixtureRequest,
    fleet_factory: Callable[..., Fleet],
) -> None:
    if server == "not-redis":  # an HTTP server (the sandbox) where Redis should be
        url = "redis://127.0.0.1:" + sandbox.url.rsplit(":", 1)[1] + "/0"
    else:
        redis = request.getfixturevalue("password_redis")
        url = f"redis://:wrong-pass-0815@127.0.0.1:{redis.port}/0"
    fleet = fleet_factory(sandbox, url, APIGW_CACHE_TIMEOUT=0.3)
    fleet.start("1", count=10)
    fleet.wait()

    assert len(fleet.items("1")) == 10
    log = fleet.log("1")
    warnings = [line for line in log.splitlines() if "WARNING" in line]
    [warning] = [line for line in warnings if "APIGW_SANDBOX is on" not in line]
    assert "fleet limits unavailable" in warning and "APIGW_REDIS_URL" in warning
    if server == "wrong-password":
        assert "WRONGPASS" in warning or "invalid password" in warning
    assert "wrong-pass-0815" not in log and "right-pass-4711" not in log
    assert "] ERROR:" not in log and "Traceback" not in log and "Unhandled" not in log
    assert "'apigw/fleet/outages': 1" in log
    print(f"{server}: {warning.split('WARNING: ', 1)[1]}")
