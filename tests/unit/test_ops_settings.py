"""APIGW_PROGRESS_INTERVAL and APIGW_REPORT_PATH, and the add-on enabling both extensions."""

import pytest
from scrapy.exceptions import NotConfigured
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler

from scrapy_apigw.exceptions import ConfigError
from scrapy_apigw.ops.coverage import CoverageExtension, coverage_for
from scrapy_apigw.ops.progress import ProgressExtension
from scrapy_apigw.settings import GatewaySettings


def parse(values):
    return GatewaySettings.from_settings(Settings(values), environ={})


def test_defaults_are_a_line_every_30_s_and_no_report_file():
    settings = parse({})
    assert settings.progress_interval == 30.0
    assert settings.report_path is None


def test_values_from_the_command_line_are_read():
    settings = parse({"APIGW_PROGRESS_INTERVAL": "2.5", "APIGW_REPORT_PATH": "/tmp/r.json"})
    assert settings.progress_interval == 2.5
    assert settings.report_path == "/tmp/r.json"
    assert parse({"APIGW_REPORT_PATH": ""}).report_path is None


@pytest.mark.parametrize(
    "values, message",
    [
        (
            {"APIGW_PROGRESS_INTERVAL": -1},
            "APIGW_PROGRESS_INTERVAL = -1: expected a number >= 0 (s)",
        ),
        (
            {"APIGW_PROGRESS_INTERVAL": "often"},
            "APIGW_PROGRESS_INTERVAL = 'often': expected a number >= 0 (s)",
        ),
        ({"APIGW_REPORT_PATH": 5}, "APIGW_REPORT_PATH = 5: expected a"),
    ],
)
def test_bad_values_name_the_setting(values, message):
    with pytest.raises(ConfigError) as raised:
        parse(values)
    assert str(raised.value).startswith(message)


def extensions(crawler):
    crawler._apply_settings()
    return {
        k if isinstance(k, str) else f"{k.__module__}.{k.__qualname__}": v
        for k, v in crawler.settings.getdict("EXTENSIONS").items()
    }


def test_the_addon_enables_the_progress_and_coverage_extensions():
    got = extensions(get_crawler(settings_dict={"ADDONS": {"scrapy_apigw.Addon": 500}}))
    assert got["scrapy_apigw.ops.progress.ProgressExtension"] == 500
    assert got["scrapy_apigw.ops.coverage.CoverageExtension"] == 500


def test_a_disabled_addon_enables_no_extension():
    crawler = get_crawler(
        settings_dict={"ADDONS": {"scrapy_apigw.Addon": 500}, "APIGW_ENABLED": False}
    )
    assert not any(k.startswith("scrapy_apigw") for k in extensions(crawler))


def test_interval_0_turns_the_progress_line_off():
    crawler = get_crawler(settings_dict={"APIGW_PROGRESS_INTERVAL": 0})
    with pytest.raises(NotConfigured, match="APIGW_PROGRESS_INTERVAL"):
        ProgressExtension.from_crawler(crawler)
    assert ProgressExtension.from_crawler(get_crawler()).interval == 30.0


def test_both_extensions_are_off_with_the_gateway():
    for extension in (ProgressExtension, CoverageExtension):
        with pytest.raises(NotConfigured):
            extension.from_crawler(get_crawler(settings_dict={"APIGW_ENABLED": False}))


def test_the_crawler_knows_its_coverage_for_the_stats_resource():
    crawler = get_crawler()
    assert coverage_for(crawler) is None
    extension = CoverageExtension.from_crawler(crawler)
    assert coverage_for(crawler) is extension.coverage
