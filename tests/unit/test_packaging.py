"""The versions .ci/run tests as the lowest are the floors setup.cfg declares."""

import configparser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def floors() -> dict[str, Version]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    result = {}
    for line in config["options"]["install_requires"].strip().splitlines():
        requirement = Requirement(line)
        (floor,) = [s.version for s in requirement.specifier if s.operator == ">="]
        result[requirement.name.lower()] = Version(floor)
    return result


def pins() -> dict[str, Version]:
    result = {}
    for line in (ROOT / ".ci" / "lowest.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            (pin,) = [s.version for s in requirement.specifier if s.operator == "=="]
            result[requirement.name.lower()] = Version(pin)
    return result


def test_every_dependency_is_tested_at_its_declared_floor():
    assert pins() == floors()


def test_the_scrapy_floor_is_the_first_release_with_what_the_package_needs():
    # scrapy.utils.asyncio.sleep, RetryMiddleware.give_up_log_level (2.17) and items yielded
    # from start() awaited by the engine (before 2.18 the crawl closed while they were in an
    # async pipeline, and they were lost).
    assert floors()["scrapy"] == Version("2.18")
