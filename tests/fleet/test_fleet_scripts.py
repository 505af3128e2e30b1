"""The fleet's key layout and script variants (no Redis needed)."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from scrapy_apigw.exceptions import ConfigError
from scrapy_apigw.fleet import SCRIPT_NAMES, load_script, processes_key, provider_keys


def test_provider_keys_share_one_hash_tag_per_fleet_and_provider() -> None:
    keys = provider_keys("apigw", "crawlers", "discogs")
    assert keys.adaptive == "apigw:fleet:{crawlers:discogs}:adaptive"
    assert (keys.bucket, keys.line, keys.window, keys.quota, keys.breaker, keys.probes) == (
        "apigw:fleet:{crawlers:discogs}:bucket",
        "apigw:fleet:{crawlers:discogs}:line",
        "apigw:fleet:{crawlers:discogs}:window",
        "apigw:fleet:{crawlers:discogs}:quota",
        "apigw:fleet:{crawlers:discogs}:breaker",
        "apigw:fleet:{crawlers:discogs}:probes",
    )
    assert processes_key("apigw", "crawlers") == "apigw:fleet:{crawlers}:processes"


@pytest.mark.parametrize(
    ("fleet", "provider"),
    [
        ("", "discogs"),
        ("a{b", "discogs"),
        ("a}b", "discogs"),
        ("my fleet", "discogs"),
        ("x" * 101, "discogs"),
        ("ok", "dis\ncogs"),
        ("ok", ""),
    ],
)
def test_names_that_would_break_a_key_are_refused(fleet: str, provider: str) -> None:
    with pytest.raises(ConfigError, match="without braces, white space or control"):
        provider_keys("apigw", fleet, provider)


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_the_test_variant_runs_the_same_body_with_the_instant_as_an_argument(name: str) -> None:
    server, argument = load_script(name, "server"), load_script(name, "argument")
    server_lines = server.source.decode().splitlines()
    argument_lines = argument.source.decode().splitlines()
    assert server_lines[3:] == argument_lines[1:]  # the body, line for line
    assert "redis.call('TIME')" in server_lines[1] and "TIME" not in argument.source.decode()
    assert argument_lines[0].startswith("local now = tonumber(table.remove(ARGV, 1))")
    assert server.sha == hashlib.sha1(server.source).hexdigest()
    assert server.sha != argument.sha


def test_unknown_scripts_and_clocks_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown fleet script"):
        load_script("nope")
    with pytest.raises(ValueError, match="unknown script clock"):
        load_script("rate", "client")  # type: ignore[arg-type]


def test_importing_the_fleet_package_imports_neither_txredisapi_nor_the_reactor() -> None:
    code = (
        "import sys, scrapy_apigw.fleet\n"
        "bad = {'txredisapi', 'twisted.internet.reactor'} & set(sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
