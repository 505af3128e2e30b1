"""A misspelt ``APIGW_*`` setting is one WARNING at start naming it and the closest known name."""

import logging
import re
from pathlib import Path

import pytest
from scrapy.settings import Settings

from scrapy_apigw.settings import known_settings, settings_at_start, unknown_settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_a_misspelt_setting_is_one_warning_naming_it_and_the_closest_known_name(caplog):
    settings = Settings({"APIGW_FLEET_HEARTBEET": "5", "APIGW_FLEET_HEARTBEAT": "6"})
    with caplog.at_level(logging.WARNING, logger="scrapy_apigw.settings"):
        parsed = settings_at_start(settings)
        settings_at_start(settings)  # the add-on, then a component's from_crawler: same object
    assert parsed is not None and parsed.fleet_heartbeat == 6.0  # the misspelt one is ignored
    assert warnings(caplog) == [
        "apigw: unknown setting APIGW_FLEET_HEARTBEET (did you mean APIGW_FLEET_HEARTBEAT?)"
    ]


def test_an_unknown_setting_far_from_every_known_name_is_named_alone(caplog):
    with caplog.at_level(logging.WARNING, logger="scrapy_apigw.settings"):
        settings_at_start(Settings({"APIGW_ZZZ": 1}))
    assert warnings(caplog) == ["apigw: unknown setting APIGW_ZZZ (scrapy-apigw does not read it)"]


def test_the_closest_name_is_found_without_the_common_prefix():
    found = unknown_settings(
        Settings({"APIGW_REDIS": "", "APIGW_SHARED_LIMIT": 1, "APIGW_QQQQQ": 1, "OTHER_X": 1})
    )
    assert found == [
        ("APIGW_QQQQQ", None),
        ("APIGW_REDIS", "APIGW_REDIS_URL"),
        ("APIGW_SHARED_LIMIT", "APIGW_SHARED_LIMITS"),
    ]


def test_known_settings_give_no_warning(caplog):
    values = {name: None for name in known_settings()}
    values.update({"APIGW_REDIS_URL": "redis://127.0.0.1:6379/0", "APIGW_FLEET": "nightly"})
    with caplog.at_level(logging.WARNING, logger="scrapy_apigw.settings"):
        settings_at_start(Settings(values))
    assert warnings(caplog) == []


def test_a_disabled_gateway_does_not_check_names(caplog):
    with caplog.at_level(logging.WARNING, logger="scrapy_apigw.settings"):
        assert settings_at_start(Settings({"APIGW_ENABLED": False, "APIGW_ZZZ": 1})) is None
    assert warnings(caplog) == []


def test_every_documented_setting_is_known_and_every_known_setting_is_documented():
    # A setting is documented where docs/settings.md names it in backticks (table rows, and
    # the APIGW_PROVIDERS section); examples in code blocks are not quoted that way.
    documented = set(re.findall(r"`(APIGW_[A-Z0-9_]+)`", DOCS.read_text(encoding="utf-8")))
    assert documented == set(known_settings())
    assert "APIGW_FLEET_HEARTBEAT" in documented and "APIGW_SPOTIFY_CLIENT_SECRET" in documented
