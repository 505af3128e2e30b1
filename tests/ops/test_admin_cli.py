"""``apigw breakers|rate-limits|cache|health`` against a real Redis, each a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fixtures_redis import RedisServer

ROOT = Path(__file__).resolve().parents[2]
MB = "musicbrainz"


def apigw(*args: str, settings: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SCRAPY_SETTINGS_MODULE", None)
    env.pop("APIGW_ADMIN_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "scrapy_apigw.ops.admin_cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT / "tests",
        check=False,
    )


def test_breakers_and_rate_limits_list_and_reset(redis_url: str, redis_server: RedisServer) -> None:
    key = "apigw:fleet:{apigw:musicbrainz}:breaker"
    redis_server.command(
        "HSET", key, "state", "open", "failures", "5", "open_until", str(10**18), "opened", "1"
    )
    listed = apigw("breakers", "--redis-url", redis_url, "list")  # options go anywhere
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)[MB]["state"] == "open"
    reset = apigw("breakers", "reset", MB, "--redis-url", redis_url)
    assert reset.returncode == 0, reset.stderr
    assert json.loads(reset.stdout)["state"] == "closed"
    assert redis_server.command("HGET", key, "state") == b"closed"
    assert redis_server.command("HGET", "apigw:fleet:{apigw}:resets", "breaker:musicbrainz") == b"1"
    every = apigw("breakers", "reset-all", "--redis-url", redis_url)
    assert every.returncode == 0 and {v["state"] for v in json.loads(every.stdout).values()} == {
        "closed"
    }
    bucket = "apigw:fleet:{apigw:musicbrainz}:bucket"
    redis_server.command("HSET", bucket, "level", "1", "ts", str(10**18), "pause", str(10**18))
    limits = apigw("rate-limits", "reset", MB, "--redis-url", redis_url)
    assert limits.returncode == 0, limits.stderr
    assert json.loads(limits.stdout)["paused_for"] == 0
    assert redis_server.command("EXISTS", bucket) == 0
    assert (
        json.loads(apigw("rate-limits", "list", "--redis-url", redis_url).stdout)[MB]["paused_for"]
        == 0
    )


def test_cache_invalidate_and_stats(redis_url: str, redis_server: RedisServer) -> None:
    entry = "apigw:v1:musicbrainz:search:" + "0" * 32
    redis_server.command("SET", entry, b'{"kind":"ok","status":200,"data":{}}', "EX", "600")
    done = apigw(
        "cache", "invalidate", "--provider", MB, "--data-type", "search", "--redis-url", redis_url
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"provider": MB, "invalidated": {"search": 1}}
    assert redis_server.command("EXISTS", entry) == 1  # left to expire, never read again
    stats = apigw("cache", "stats", "--redis-url", redis_url)
    assert stats.returncode == 0, stats.stderr
    row = json.loads(stats.stdout)["providers"][MB]["search"]
    assert (row["entries"], row["old_entries"], row["generation"]) == (0, 1, 1)


def test_errors_are_one_line_exit_1_and_never_show_the_password(redis_url: str) -> None:
    unknown = apigw("breakers", "reset", "nosuch", "--redis-url", redis_url)
    assert unknown.returncode == 1 and "unknown provider 'nosuch'" in unknown.stderr
    down = apigw("breakers", "list", "--redis-url", "redis://:hunter2-pw@127.0.0.1:9/0")
    assert down.returncode == 1 and "127.0.0.1:9" in down.stderr
    assert "hunter2" not in down.stderr + down.stdout
    health = apigw("health", "--redis-url", "redis://:hunter2-pw@127.0.0.1:9/0")
    assert health.returncode == 1 and json.loads(health.stdout)["status"] == "unhealthy"
    assert "hunter2" not in health.stderr + health.stdout
    no_url = apigw("breakers", "list")
    assert no_url.returncode == 1 and "APIGW_REDIS_URL" in no_url.stderr
    assert apigw("breakers").returncode == 2  # no action: a usage error
