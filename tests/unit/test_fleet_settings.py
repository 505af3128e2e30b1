"""The fleet's settings: APIGW_SHARED_LIMITS, APIGW_FLEET, APIGW_FLEET_HEARTBEAT."""

import pytest
from scrapy.settings import Settings

from scrapy_apigw.exceptions import ConfigError
from scrapy_apigw.settings import GatewaySettings

REDIS = "redis://127.0.0.1:6379/0"


def parse(values: dict) -> GatewaySettings:
    return GatewaySettings.from_settings(Settings(values), environ={})


def test_shared_limits_are_on_exactly_when_redis_is_configured():
    assert parse({}).shared_limits is False
    assert parse({"APIGW_REDIS_URL": REDIS}).shared_limits is True
    assert parse({"APIGW_REDIS_URL": REDIS, "APIGW_SHARED_LIMITS": False}).shared_limits is False


def test_the_fleet_defaults_to_the_cache_namespace():
    assert parse({"APIGW_REDIS_URL": REDIS}).fleet == "apigw"
    assert parse({"APIGW_REDIS_URL": REDIS, "APIGW_CACHE_NAMESPACE": "jobs"}).fleet == "jobs"
    named = parse({"APIGW_REDIS_URL": REDIS, "APIGW_FLEET": "nightly"})
    assert (named.fleet, named.cache_namespace) == ("nightly", "apigw")
    assert parse({}).fleet_heartbeat == 15.0


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"APIGW_SHARED_LIMITS": True}, "APIGW_SHARED_LIMITS is on but APIGW_REDIS_URL is not set"),
        (
            {"APIGW_SHARED_LIMITS": "maybe"},
            "APIGW_SHARED_LIMITS = 'maybe': expected True or False",
        ),
        ({"APIGW_REDIS_URL": REDIS, "APIGW_FLEET": "a b"}, "APIGW_FLEET / APIGW_CACHE_NAMESPACE"),
        ({"APIGW_REDIS_URL": REDIS, "APIGW_FLEET": "x{y}"}, "APIGW_FLEET / APIGW_CACHE_NAMESPACE"),
        (
            {"APIGW_REDIS_URL": "http://127.0.0.1:6379"},
            "APIGW_REDIS_URL = 'http://127.0.0.1:6379': the Redis URL must start with redis://",
        ),
        ({"APIGW_FLEET_HEARTBEAT": 0}, "APIGW_FLEET_HEARTBEAT = 0: expected a number > 0 (s)"),
        (
            {"APIGW_FLEET_HEARTBEAT": "soon"},
            "APIGW_FLEET_HEARTBEAT = 'soon': expected a number > 0 (s)",
        ),
    ],
)
def test_bad_fleet_settings_are_one_error_naming_the_setting(values, message):
    with pytest.raises(ConfigError) as caught:
        parse(values)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
