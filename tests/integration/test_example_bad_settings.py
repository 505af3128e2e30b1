"""A bad ``APIGW_*`` setting stops ``scrapy crawl`` at start-up with one line naming it.

Real ``scrapy crawl`` subprocesses in ``example_project/`` (Scrapy's default asyncio reactor).
"""

from __future__ import annotations

import subprocess

import pytest
from conftest import EXAMPLE_PROJECT, example_crawl_command, example_crawl_env

#: Through the add-on (the example project's ADDONS), and through a middleware's from_crawler
#: alone, as in a project that lists the components itself.
NO_ADDON = [
    *("-s", "ADDONS={}"),
    *(
        "-s",
        'DOWNLOADER_MIDDLEWARES={"scrapy_apigw.middlewares.TokenBucketThrottleMiddleware": 560}',
    ),
]


def crawl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        example_crawl_command("-a", "limit=1", "-s", "TELNETCONSOLE_ENABLED=False", *args),
        cwd=EXAMPLE_PROJECT,
        env=example_crawl_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["-s", 'APIGW_PROVIDERS={"spotify": {"rate": "ten"}}'],
            """APIGW_PROVIDERS["spotify"]["rate"] = 'ten': expected a number > 0 (req/s)""",
        ),
        (
            ["-s", "APIGW_PROVIDERS=[1, 2]"],
            "APIGW_PROVIDERS = [1, 2]: expected a dict (or its JSON)",
        ),
        (
            ["-s", "APIGW_REDIS_URL=not a url"],
            "APIGW_REDIS_URL = 'not a url': the Redis URL must start with redis:// or rediss://, "
            "got none://",
        ),
        (
            ["-s", "APIGW_SANDBOX_SPEED=fast"],
            "APIGW_SANDBOX_SPEED = 'fast': expected a number > 0",
        ),
        (
            ["-s", "APIGW_ENABLED=maybe"],
            "APIGW_ENABLED = 'maybe': expected True or False (or 1/0, 'true'/'false')",
        ),
        (
            [*NO_ADDON, "-s", 'APIGW_PROVIDERS={"discogs": {"window": "a minute"}}'],
            """APIGW_PROVIDERS["discogs"]["window"] = 'a minute': expected a number > 0 (s)""",
        ),
    ],
    ids=["rate-text", "providers-list", "redis-url", "speed", "enabled", "without-addon"],
)
def test_a_bad_setting_stops_the_crawl_at_start_up_with_one_line(args, message):
    result = crawl(*args)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    errors = [line for line in output.splitlines() if "ERROR" in line or "CRITICAL" in line]
    assert len(errors) == 1, output
    assert errors[0].endswith(f"[scrapy_apigw.settings] ERROR: apigw: invalid setting: {message}")
    assert "Traceback" not in output
    assert "Task exception was never retrieved" not in output
    assert "Spider opened" not in output  # stopped before the spider opens


@pytest.mark.crawl
def test_numeric_strings_from_the_command_line_are_accepted():
    result = crawl("-s", 'APIGW_PROVIDERS={"spotify": {"rate": "10", "burst": "20"}}')
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "'finish_reason': 'finished'" in output
    assert "ERROR" not in output


@pytest.mark.crawl
@pytest.mark.parametrize("args", [[], NO_ADDON], ids=["addon", "without-addon"])
def test_a_misspelt_setting_is_one_warning_naming_it_and_the_crawl_goes_on(args):
    result = crawl(*args, "-s", "APIGW_FLEET_HEARTBEET=5")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    unknown = [line for line in output.splitlines() if "unknown setting" in line]
    assert len(unknown) == 1, output
    assert unknown[0].endswith(
        "[scrapy_apigw.settings] WARNING: apigw: unknown setting APIGW_FLEET_HEARTBEET "
        "(did you mean APIGW_FLEET_HEARTBEAT?)"
    )
    assert "'finish_reason': 'finished'" in output
