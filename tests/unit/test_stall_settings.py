"""The settings that bound waiting: APIGW_ITEM_TIMEOUT, APIGW_SHUTDOWN_TIMEOUT and the
per-provider rate-limit streak fields."""

import pytest
from scrapy.settings import Settings

from scrapy_apigw.exceptions import ConfigError
from scrapy_apigw.providers.registry import DEFAULT_PROVIDERS, build_registry
from scrapy_apigw.settings import GatewaySettings


def parse(values=None):
    return GatewaySettings.from_settings(Settings(values or {}), environ={})


def test_defaults():
    settings = parse()
    assert (settings.item_timeout, settings.shutdown_timeout) == (600.0, 5.0)
    for config in DEFAULT_PROVIDERS.values():
        assert (config.max_rate_limit_streak, config.max_rate_limit_wait) == (5, 60.0)
        assert config.max_retry_after == 600.0


def test_timeouts_are_read_as_seconds_and_zero_turns_the_item_deadline_off():
    settings = parse({"APIGW_ITEM_TIMEOUT": "0", "APIGW_SHUTDOWN_TIMEOUT": 0.5})
    assert (settings.item_timeout, settings.shutdown_timeout) == (0.0, 0.5)


@pytest.mark.parametrize("name", ["APIGW_ITEM_TIMEOUT", "APIGW_SHUTDOWN_TIMEOUT"])
@pytest.mark.parametrize("value", [-1, "inf"])
def test_a_negative_or_infinite_timeout_names_the_setting(name, value):
    with pytest.raises(ConfigError, match=name):
        parse({name: value})


def test_the_streak_fields_can_be_overridden_and_turned_off():
    registry = build_registry(
        {"spotify": {"max_rate_limit_streak": 0, "max_rate_limit_wait": 0, "max_retry_after": 30}}
    )
    spotify = registry["spotify"]
    assert (spotify.max_rate_limit_streak, spotify.max_rate_limit_wait) == (0, 0)
    assert spotify.max_retry_after == 30


@pytest.mark.parametrize(
    "override, problem",
    [
        ({"max_rate_limit_streak": -1}, "max_rate_limit_streak"),
        ({"max_rate_limit_streak": 2.5}, "max_rate_limit_streak"),
        ({"max_rate_limit_wait": -5}, "max_rate_limit_wait"),
        ({"max_retry_after": 0}, "max_retry_after"),
    ],
)
def test_bad_streak_fields_are_refused_by_name(override, problem):
    with pytest.raises(ConfigError, match=problem):
        build_registry({"discogs": override})
