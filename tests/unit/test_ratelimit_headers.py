"""Rate-limit headers: IETF draft-10 and older drafts, X-RateLimit-*, Discogs; epoch vs delta."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scrapy_apigw.core.ratelimit_headers import (
    AnnouncedQuota,
    QuotaSource,
    parse_ratelimit_headers,
)

NOW = 1_700_000_000.0  # wall clock of the tests, epoch seconds (2023-11-14T22:13:20Z)
DATE = "Tue, 14 Nov 2023 22:13:00 GMT"  # the server's Date: 20 s behind NOW

IETF, LEGACY, X, DISCOGS = (
    QuotaSource.IETF,
    QuotaSource.IETF_LEGACY,
    QuotaSource.X_RATELIMIT,
    QuotaSource.DISCOGS,
)


def parse(headers: dict[str, Any], **kwargs: Any) -> AnnouncedQuota | None:
    return parse_ratelimit_headers(headers, NOW, **kwargs)


# --- IETF draft-10 structured fields ----------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (  # the draft's §3 and §4 examples together: RateLimit names the policy
            {
                "ratelimit-policy": '"burst";q=100;w=60,"daily";q=1000;w=86400',
                "ratelimit": '"daily";r=50;t=30',
            },
            AnnouncedQuota(
                IETF, limit=1000, remaining=50, reset=30.0, window=86400.0, policy="daily"
            ),
        ),
        (
            {
                "ratelimit-policy": '"burst";q=100;w=60,"daily";q=1000;w=86400',
                "ratelimit": '"burst";r=0;t=12',
            },
            AnnouncedQuota(IETF, limit=100, remaining=0, reset=12.0, window=60.0, policy="burst"),
        ),
        (  # §B.3.2: several windows, the RateLimit item names the day policy
            {
                "ratelimit-policy": '"hour";q=1000;w=3600, "day";q=5000;w=86400',
                "ratelimit": '"day";r=100;t=36000',
            },
            AnnouncedQuota(
                IETF, limit=5000, remaining=100, reset=36000.0, window=86400.0, policy="day"
            ),
        ),
        (  # RateLimit without a policy field (§B.1.1): remaining and reset only
            {"ratelimit": '"default";r=0;t=50'},
            AnnouncedQuota(IETF, remaining=0, reset=50.0, policy="default"),
        ),
        (  # several service limits: the one closest to exhaustion
            {
                "ratelimit-policy": '"a";q=100;w=60,"b";q=10;w=1',
                "ratelimit": '"a";r=40;t=20,"b";r=3;t=1',
            },
            AnnouncedQuota(IETF, limit=10, remaining=3, reset=1.0, window=1.0, policy="b"),
        ),
        (  # no RateLimit field: the policy of the lowest q / w (1000/3600 < 50/60)
            {"ratelimit-policy": '"permin";q=50;w=60,"perhr";q=1000;w=3600'},
            AnnouncedQuota(IETF, limit=1000, window=3600.0, policy="perhr"),
        ),
        (  # the draft's own §B.3.1 example uses Tokens as names
            {"ratelimit-policy": "quota;q=100;w=1", "ratelimit": "quota;t=1"},
            AnnouncedQuota(IETF, limit=100, reset=1.0, window=1.0, policy="quota"),
        ),
        (  # a policy counted in bytes is not a request quota: skipped with its service limit
            {
                "ratelimit-policy": '"bytes";q=65535;qu="content-bytes";w=10,"req";q=20;w=10',
                "ratelimit": '"bytes";r=0;t=5,"req";r=7;t=5',
            },
            AnnouncedQuota(IETF, limit=20, remaining=7, reset=5.0, window=10.0, policy="req"),
        ),
        (  # unknown parameters and a partition key are comments
            {
                "ratelimit-policy": '"peruser";q=100;w=60;pk=:cHsdsRa894==:;acme-x=1',
                "ratelimit": '"peruser";r=99;t=50;pk=:cHsdsRa894==:',
            },
            AnnouncedQuota(
                IETF, limit=100, remaining=99, reset=50.0, window=60.0, policy="peruser"
            ),
        ),
        (  # bytes values as the transport hands them over
            {"ratelimit": b'"default";r=5;t=2'},
            AnnouncedQuota(IETF, remaining=5, reset=2.0, policy="default"),
        ),
    ],
)
def test_ietf_draft_10_fields(headers: dict[str, Any], expected: AnnouncedQuota) -> None:
    assert parse(headers) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        # A malformed RateLimit field is ignored; the well-formed policy field still counts.
        (
            {"ratelimit-policy": '"a";q=10;w=1', "ratelimit": '"a";r=5;t=30,,'},
            AnnouncedQuota(IETF, limit=10, window=1.0, policy="a"),
        ),
        ({"ratelimit": '"a";r=-1;t=3'}, None),  # negative remaining: item dropped
        ({"ratelimit": '"a";r=5;t=1.5'}, None),  # decimal reset: not an Integer
        ({"ratelimit": '"a";r="5"'}, None),  # a String, not an Integer
        ({"ratelimit": '"a";r=?1'}, None),  # a Boolean is not an Integer
        ({"ratelimit": "5;r=5"}, None),  # an Integer name: not a String or Token
        ({"ratelimit-policy": '"a";w=60'}, None),  # q is required
        ({"ratelimit-policy": '"a";q=10;w=0'}, None),  # the window must be > 0
        ({"ratelimit-policy": "not a list ("}, None),
        (  # one bad item does not spoil its neighbours
            {"ratelimit": '"a";r=x,"b";r=4;t=2'},
            AnnouncedQuota(IETF, remaining=4, reset=2.0, policy="b"),
        ),
    ],
)
def test_malformed_ietf_fields_and_items_are_ignored(
    headers: dict[str, Any], expected: AnnouncedQuota | None
) -> None:
    assert parse(headers) == expected


# --- Older drafts (-00 to -06) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            {"ratelimit-limit": "100", "ratelimit-remaining": "42", "ratelimit-reset": "30"},
            AnnouncedQuota(LEGACY, limit=100, remaining=42, reset=30.0),
        ),
        (  # drafts -03..-06: the window from the RateLimit-Policy item of the same quota
            {
                "ratelimit-limit": "10",
                "ratelimit-remaining": "0",
                "ratelimit-reset": "1",
                "ratelimit-policy": "10;w=1, 1000;w=3600",
            },
            AnnouncedQuota(LEGACY, limit=10, remaining=0, reset=1.0, window=1.0),
        ),
        (  # drafts -00..-02: quota policies inside RateLimit-Limit
            {"ratelimit-limit": "50, 10;w=1, 50;w=60", "ratelimit-remaining": "7"},
            AnnouncedQuota(LEGACY, limit=50, remaining=7, window=60.0),
        ),
        (  # a reset above 1e9 is an epoch, measured against the Date header
            {"ratelimit-remaining": "0", "ratelimit-reset": "1699999990", "date": DATE},
            AnnouncedQuota(LEGACY, remaining=0, reset=10.0),
        ),
    ],
)
def test_older_draft_fields(headers: dict[str, Any], expected: AnnouncedQuota) -> None:
    assert parse(headers) == expected


def test_the_draft_10_fields_win_over_the_older_ones_in_one_response() -> None:
    headers = {
        "ratelimit": '"a";r=1;t=2',
        "ratelimit-limit": "100",
        "ratelimit-remaining": "99",
        "x-ratelimit-remaining": "98",
    }
    assert parse(headers) == AnnouncedQuota(IETF, remaining=1, reset=2.0, policy="a")


# --- X-RateLimit-* (GitHub and others) ----------------------------------------------------------


def test_github_headers_with_an_epoch_reset_measured_against_the_date_header() -> None:
    # GitHub docs: limit/remaining/used/reset (UTC epoch seconds)/resource.
    headers = {
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": "4999",
        "x-ratelimit-used": "1",
        "x-ratelimit-reset": "1700000100",
        "x-ratelimit-resource": "core",
        "date": DATE,  # server 20 s behind our clock: reset is 120 s away for the server
    }
    assert parse(headers, window=3600.0) == AnnouncedQuota(
        X, limit=5000, remaining=4999, used=1, reset=120.0, window=3600.0, policy="core"
    )


@pytest.mark.parametrize(
    ("reset", "date", "fmt", "expected"),
    [
        ("1700000100", DATE, "auto", 120.0),  # epoch against the server's Date
        ("1700000100", None, "auto", 100.0),  # epoch against now when there is no Date
        ("1700000100", "garbage", "auto", 100.0),  # an invalid Date is no Date
        ("1699999000", DATE, "auto", 0.0),  # an epoch in the past: now
        ("1000000001", None, "auto", 0.0),  # just above the threshold: an epoch (in 2001)
        ("1000000000", None, "auto", 1_000_000_000.0),  # at the threshold: delta-seconds
        ("60", DATE, "auto", 60.0),  # delta-seconds ignore the Date
        ("0", None, "auto", 0.0),
        ("2.5", None, "auto", 2.5),  # decimal delta (Discord's reset-after style)
        ("1700000100.5", None, "auto", 100.5),  # decimal epoch (Discord)
        ("Tue, 14 Nov 2023 22:14:00 GMT", DATE, "auto", 60.0),  # HTTP-date: letters
        ("60", None, "epoch", 0.0),  # forced epoch: 60 s after 1970 is long past
        ("1700000100", None, "delta", 1_700_000_100.0),  # forced delta: taken as it is
        ("Tue, 14 Nov 2023 22:14:00 GMT", None, "delta", None),  # a date is no delta
        ("-5", None, "auto", None),
        ("soon", None, "auto", None),
        ("", None, "auto", None),
        ("9" * 400, None, "auto", None),  # not a finite number
    ],
)
def test_reset_epoch_or_delta(
    reset: str, date: str | None, fmt: Any, expected: float | None
) -> None:
    headers = {"x-ratelimit-limit": "10", "x-ratelimit-reset": reset}
    if date is not None:
        headers["date"] = date
    quota = parse(headers, reset_format=fmt)
    assert quota is not None
    assert quota.reset == expected


def test_the_reading_reset_the_wrong_way_bug_does_not_happen() -> None:
    # crunchtools/mcp-github v1.3.1: "Retry after 1792152901 seconds" from an epoch reset.
    quota = parse({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1700000030"}, window=3600.0)
    assert quota is not None
    assert quota.pause_seconds() == 30.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (  # Reddit: decimals, no limit header: limit = used + remaining
            {"x-ratelimit-used": "1", "x-ratelimit-remaining": "599.0", "x-ratelimit-reset": "455"},
            AnnouncedQuota(X, limit=600, remaining=599, used=1, reset=455.0),
        ),
        (  # remaining derived from limit - used
            {"x-ratelimit-limit": "60", "x-ratelimit-used": "60"},
            AnnouncedQuota(X, limit=60, remaining=0, used=60),
        ),
        (  # surrounding whitespace is fine; garbage values are absent values
            {"x-ratelimit-limit": " 30 ", "x-ratelimit-remaining": "lots"},
            AnnouncedQuota(X, limit=30),
        ),
        ({"x-ratelimit-limit": "ten"}, None),
        ({"x-ratelimit-limit": "1e3"}, None),
        ({"x-ratelimit-limit": "+5"}, None),
    ],
)
def test_x_ratelimit_variants(headers: dict[str, Any], expected: AnnouncedQuota | None) -> None:
    assert parse(headers) == expected


# --- Discogs ------------------------------------------------------------------------------------


def test_discogs_headers_announce_a_60_second_window() -> None:
    headers = {
        "x-discogs-ratelimit": "60",
        "x-discogs-ratelimit-used": "12",
        "x-discogs-ratelimit-remaining": "48",
    }
    quota = parse(headers)
    assert quota == AnnouncedQuota(DISCOGS, limit=60, remaining=48, used=12, window=60.0)
    assert quota.ceiling() == (59 / 60, 1)
    assert quota.pause_seconds() is None  # Discogs sends no reset: the gateway's own rule


def test_discogs_remaining_is_derived_when_only_limit_and_used_come() -> None:
    quota = parse({"x-discogs-ratelimit": "25", "x-discogs-ratelimit-used": "30"})
    assert quota == AnnouncedQuota(DISCOGS, limit=25, remaining=0, used=30, window=60.0)


# --- Absent, helpers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"retry-after": "30", "date": DATE, "content-type": "application/json"},
        {"x-ratelimit-limit": "", "ratelimit": ""},
    ],
)
def test_no_announcement_gives_none(headers: dict[str, Any]) -> None:
    assert parse(headers) is None


@pytest.mark.parametrize(
    ("quota", "pause", "ceiling"),
    [
        (AnnouncedQuota(IETF, limit=100, remaining=0, reset=12.0, window=60.0), 12.0, (99 / 60, 1)),
        (AnnouncedQuota(IETF, limit=100, remaining=1, reset=12.0, window=60.0), None, (99 / 60, 1)),
        (AnnouncedQuota(IETF, remaining=0), None, None),  # no reset: nothing to wait for
        (AnnouncedQuota(X, limit=5000, remaining=0, reset=0.0), 0.0, None),  # no window
        (AnnouncedQuota(IETF, limit=0, window=60.0), None, None),  # q=0: no rate to set
    ],
)
def test_pause_and_ceiling_helpers(
    quota: AnnouncedQuota, pause: float | None, ceiling: tuple[float, int] | None
) -> None:
    assert quota.pause_seconds() == pause
    assert quota.ceiling() == ceiling


def test_a_documented_window_is_used_only_where_the_headers_announce_none() -> None:
    ietf = parse({"ratelimit-policy": '"a";q=10;w=1'}, window=3600.0)
    assert ietf is not None and ietf.window == 1.0
    x = parse({"x-ratelimit-limit": "10"}, window=3600.0)
    assert x is not None and x.window == 3600.0
    bad = parse({"x-ratelimit-limit": "10"}, window=0.0)
    assert bad is not None and bad.window is None


# --- Never raises -------------------------------------------------------------------------------

_NAMES = st.sampled_from(
    [
        "ratelimit",
        "ratelimit-policy",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-used",
        "x-ratelimit-reset",
        "x-ratelimit-resource",
        "x-discogs-ratelimit",
        "x-discogs-ratelimit-used",
        "x-discogs-ratelimit-remaining",
        "date",
    ]
)
_SF_LIKE = st.text(alphabet='"abc;=,:?*0123456789.- tqwrpk', max_size=40)
_VALUES = st.one_of(st.text(), st.binary(), _SF_LIKE, st.integers().map(str))


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(st.one_of(_NAMES, st.text()), _VALUES, max_size=8),
    now=st.floats(allow_nan=True, allow_infinity=True),
    reset_format=st.sampled_from(["auto", "delta", "epoch"]),
    window=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
)
def test_never_raises_on_arbitrary_headers(
    headers: dict[str, Any], now: float, reset_format: Any, window: float | None
) -> None:
    quota = parse_ratelimit_headers(headers, now, reset_format=reset_format, window=window)
    if quota is not None:
        assert quota.reset is None or quota.reset >= 0.0
        assert quota.window is None or quota.window > 0.0
        quota.pause_seconds()
        quota.ceiling()
