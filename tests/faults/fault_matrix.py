"""The fault matrix as data: one :class:`Row` per (fault, path), expected behaviour per provider.

Every row is run for the four providers (a test per row and provider), on both paths where the
fault applies: the spider path (a request through the downloader middlewares) and the pipeline
path (an enrichment call through the transport). ``docs/reliability.md`` shows this table;
:func:`render_table` writes it and a test checks the document still matches.

What a row expects is what issue 5 asks for. Rows whose behaviour does not exist yet carry an
``xfail`` reason (the whole row) or ``xfail_for`` (some providers); the marks are strict, so a
row that starts passing must have its mark removed.

The time bound of a row is derived from the policy (:func:`policy_seconds`), never guessed:
the faulted call's attempts (a timeout each when no answer comes), the waits between them
(Retry-After when the answers carry one, else the capped backoff at its largest jitter), the
pauses the row itself makes; then the crawl's own time, measured on an unfaulted crawl of the
same shape, and a tolerance for timers firing late on a loaded machine (:func:`bound`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fault_harness import POLICY, PROVIDERS

PIPELINE, SPIDER = "pipeline", "spider"
NAMES = {
    "spotify": "Spotify",
    "musicbrainz": "MusicBrainz",
    "discogs": "Discogs",
    "lastfm": "Last.fm",
}

#: ``APIGW_PROVIDERS`` fields that make a streak of two rate-limited answers mark a provider
#: unavailable for the hint's length (issue 5 §2).
UNAVAILABLE_AFTER_TWO: dict[str, Any] = {"max_rate_limit_streak": 2}

#: Why rows fail today: key -> (label in the docs table, the xfail reason).
XFAIL: dict[str, tuple[str, str]] = {}
#: Expect fields of a spider request answered with a plain 200 (nothing faulted but its label).
_CLEAN_200: dict[str, Any] = {
    "outcome": None,
    "exchanges": None,
    "retries": 0,
    "breaker": (0, 0, 0),
    "rejected": 0,
}
#: The spider request ended, either way (what a malformed answer gives a spider is not fixed).
ANY = r"\d+|errback:\w+"


@dataclass(frozen=True)
class Expect:
    """What the faulted provider does in one row. ``None`` fields are not checked.

    Attributes:
        outcome: outcome class of the faulted exchanges (``apigw/<p>/responses/<outcome>``).
        exchanges: how many exchanges ended with that outcome.
        faulted: sandbox log entries of the provider that carry the fault.
        calls: all sandbox log entries of the provider except Spotify's token requests.
        retries: ``apigw/<p>/retries``.
        breaker: transitions into (open, half_open, closed), ``apigw/<p>/breaker/*``.
        rejected: calls refused at once by the open circuit, ``apigw/<p>/breaker/rejected``.
        cached: ``"none"``: no cache entry of the provider; ``"answers"``: some, each an ``ok``
            answer with data; ``"n/a"``: the spider path does not use the cache.
        items: pipeline: per item, its ``enrichment_status`` and a regex the provider's
            ``enrichment_errors`` entry must match (``None``: no error for the provider).
        requests: spider: per request, a regex fully matching ``"<status>"`` for a response
            or ``"errback:<exception class>"``.
        min_gap: seconds at least between consecutive faulted requests (Retry-After honoured).
    """

    outcome: str | None = None
    exchanges: int | None = None
    faulted: int | None = None
    calls: int | None = None
    retries: int | None = None
    breaker: tuple[int, int, int] | None = (0, 0, 0)
    rejected: int | None = 0
    cached: str = "none"
    items: tuple[tuple[str, str | None], ...] = ()
    requests: tuple[str, ...] = ()
    min_gap: float = 0.0


@dataclass(frozen=True)
class Row:
    """One fault on one path.

    Attributes:
        key: short id, e.g. ``"burst-503"``.
        fault: what happens, in words (the docs table's first column).
        path: ``"pipeline"`` or ``"spider"``.
        faults: ``POST /_sandbox/faults`` keys set on the faulted provider.
        expect: the expected behaviour; ``per_provider`` overrides fields for some providers.
        policy: ``APIGW_PROVIDERS`` fields overriding the harness policy for the faulted
            provider.
        settings: further crawl settings.
        steps: items enriched one after the other (pipeline) or request batches (spider).
        pause: seconds between two steps (after the first has finished).
        no_answer: every faulted attempt ends by the client's timeout.
        retry_after: seconds the client waits before each retry (the answers' Retry-After).
        item_deadline: the row's bound is this per-item deadline, seconds, not the policy.
        xfail: the row fails today, for every provider, for this reason (a key of
            :data:`XFAIL`).
        xfail_for: provider -> :data:`XFAIL` key, for rows failing today for some providers.
    """

    key: str
    fault: str
    path: str
    faults: Mapping[str, Any]
    expect: Expect
    per_provider: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    policy: Mapping[str, Any] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    steps: int = 2
    pause: float = 0.0
    no_answer: bool = False
    retry_after: float | None = None
    item_deadline: float | None = None
    xfail: str | None = None
    xfail_for: Mapping[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.key}/{self.path}"

    def expect_for(self, provider: str) -> Expect:
        return dataclasses.replace(self.expect, **self.per_provider.get(provider, {}))

    def policy_for(self, provider: str) -> dict[str, Any]:
        return {**POLICY, **self.policy}

    def xfail_reason(self, provider: str) -> str | None:
        key = self.xfail or self.xfail_for.get(provider)
        return XFAIL[key][1] if key else None


# -- bounds -------------------------------------------------------------------------------------


def backoff_max(policy: Mapping[str, Any], retry: int) -> float:
    """Largest wait before retry number *retry*: ``min(base * 2**(retry-1), cap) * (1 + jitter)``
    (core/retry.py: the cap first, then the jitter)."""
    base, cap, jitter = policy["backoff_base"], policy["backoff_cap"], policy["jitter"]
    return float(min(base * 2 ** (retry - 1), cap) * (1 + jitter))


#: ``twisted.internet.endpoints.HostnameEndpoint``'s default ``attemptDelay``, seconds.
HOSTNAME_ATTEMPT_DELAY = 0.3


def attempt_seconds(row: Row, policy: Mapping[str, Any]) -> float:
    """Longest time one faulted attempt takes: nothing when the sandbox answers; else the
    timeout, twice on the pipeline path (treq's timeout stops at the headers, the transport
    gives the body a timeout of its own), once on the spider path (Scrapy's download timeout
    covers the whole exchange)."""
    if row.path == SPIDER and row.faults.get("connection") == "refused":
        # Scrapy connects through Twisted's HostnameEndpoint, which waits its attemptDelay
        # (0.3 s) before giving up on a refused address: a cost of the spider path itself.
        return HOSTNAME_ATTEMPT_DELAY
    if not row.no_answer:
        return 0.0
    timeout = float(policy["timeout"])
    return 2 * timeout if row.path == PIPELINE else timeout


def policy_seconds(row: Row, provider: str) -> float:
    """Seconds the policy lets the row's faulted calls take, for *provider* (see the module
    docstring), plus the row's own pauses."""
    if row.item_deadline is not None:
        return row.item_deadline + row.pause * (row.steps - 1)
    policy = row.policy_for(provider)
    expect = row.expect_for(provider)
    retries = expect.retries or 0
    attempts = retries + 1 if expect.outcome else 0
    wait = row.retry_after
    if wait is None and provider == "spotify" and expect.outcome == "rate_limited":
        wait = 1.0  # Spotify sends Retry-After with every 429 (1 s when nothing else is set)
    waits = sum(wait if wait is not None else backoff_max(policy, n) for n in range(1, retries + 1))
    return attempts * attempt_seconds(row, policy) + waits + row.pause * (row.steps - 1)


def bound(row: Row, provider: str, baseline: float) -> float:
    """The row's time bound for *provider*: 1.25 x the policy time, plus twice the measured
    crawl time of the unfaulted crawl (*baseline*), plus 1.5 s: a stall the matrix exists to catch
    costs a whole timeout or Retry-After (tens of seconds unbounded), while a loaded CI machine
    delays a short crawl by a few tenths of a second (1.24 s against a bound of 1.13 s seen)."""
    return 1.25 * policy_seconds(row, provider) + 2 * baseline + 1.5


# -- the rows -----------------------------------------------------------------------------------

R = POLICY["max_retries"]
FAILED = rf"\w+ after {R} retries"
CIRCUIT_OPEN = r"circuit open \(probe in [\d.]+ s\)"


def _fails(outcome: str, reason: str, faulted: int | None = R + 1) -> Expect:
    """A call that fails every attempt: 1 + max_retries exchanges open the breaker (threshold
    3), the item is partial with the reason, the next item finds the circuit open."""
    return Expect(
        outcome=outcome,
        exchanges=R + 1,
        faulted=faulted,
        retries=R,
        breaker=(1, 0, 0),
        rejected=1,
        items=(("partial", reason), ("partial", CIRCUIT_OPEN)),
    )


def _spider(expect: Expect, *requests: str) -> Expect:
    return dataclasses.replace(expect, items=(), requests=requests, cached="n/a")


def _both(row: Row, spider: Mapping[str, Any]) -> list[Row]:
    """The pipeline row and its spider twin (*spider*: the fields that differ)."""
    return [row, dataclasses.replace(row, path=SPIDER, **spider)]


def _rows() -> list[Row]:
    rows: list[Row] = []
    completed = (("completed", None), ("completed", None))
    rows += _both(
        Row(
            "none",
            "no fault (the baseline)",
            PIPELINE,
            {},
            Expect(faulted=0, retries=0, cached="answers", items=completed),
        ),
        {"expect": _spider(Expect(faulted=0, retries=0), "200"), "steps": 1},
    )
    for status in (500, 502, 503, 504):
        burst = Expect(
            outcome="server_error",
            exchanges=2,
            faulted=2,
            retries=2,
            cached="answers",
            items=(("completed", None),),
        )
        rows += _both(
            Row(
                f"burst-{status}",
                f"{status} burst: two answers, then the provider recovers",
                PIPELINE,
                {"error_rate": 1.0, "error_status": status, "expire_after": 2},
                burst,
                steps=1,
            ),
            {"expect": _spider(burst, "200")},
        )
    outage = _fails("server_error", r"HTTP 503 after 2 retries")
    rows += _both(
        Row(
            "outage",
            "outage for the whole crawl",
            PIPELINE,
            {"outage": True},
            outage,
            per_provider={
                "musicbrainz": {
                    "items": (("partial", "HTTP 502 after 2 retries"), ("partial", CIRCUIT_OPEN))
                }
            },
        ),
        {
            "expect": _spider(outage, "503", "errback:CircuitOpenError"),
            "per_provider": {"musicbrainz": {"requests": ("502", "errback:CircuitOpenError")}},
        },
    )
    recovery = dataclasses.replace(
        outage,
        breaker=(1, 1, 1),
        rejected=0,
        cached="answers",
        items=(("partial", r"HTTP 503 after 2 retries"), ("completed", None)),
    )
    rows += _both(
        Row(
            "outage-recovery",
            "outage for 3 requests, then recovery: the half-open probe closes the circuit",
            PIPELINE,
            {"outage": True, "expire_after": R + 1},
            recovery,
            per_provider={
                "musicbrainz": {
                    "items": (("partial", "HTTP 502 after 2 retries"), ("completed", None))
                }
            },
            policy={"open_timeout": 0.3},
            pause=0.6,
        ),
        {
            "expect": _spider(recovery, "503", "200"),
            "per_provider": {"musicbrainz": {"requests": ("502", "200")}},
        },
    )
    storm = Expect(
        outcome="rate_limited",
        exchanges=R + 1,
        faulted=R + 1,
        retries=R,
        items=(("partial", r"HTTP 429 after 2 retries"),),
    )
    rows += _both(
        Row(
            "storm-429",
            "429 storm without Retry-After (longer than the retries)",
            PIPELINE,
            {"rate_limit_next": R + 1},
            storm,
            per_provider={
                "musicbrainz": {"items": (("partial", r"HTTP 503 after 2 retries"),)},
                "spotify": {"min_gap": 1.0},  # Spotify always sends Retry-After (here 1)
            },
            steps=1,
        ),
        {
            "expect": _spider(storm, "429"),
            "per_provider": {"musicbrainz": {"requests": ("503",)}, "spotify": {"min_gap": 1.0}},
        },
    )
    storm_ra = Expect(
        outcome="rate_limited",
        exchanges=2,
        faulted=2,
        retries=1,
        items=(("partial", r"HTTP 429 after 1 retries"),),
        min_gap=1.0,
    )
    rows += _both(
        Row(
            "storm-429-retry-after",
            "429 storm with Retry-After: 1 (max_retries 1)",
            PIPELINE,
            {"rate_limit_next": 2, "retry_after": "1"},
            storm_ra,
            per_provider={"musicbrainz": {"items": (("partial", r"HTTP 503 after 1 retries"),)}},
            policy={"max_retries": 1},
            steps=1,
            retry_after=1.0,
        ),
        {
            "expect": _spider(storm_ra, "429"),
            "per_provider": {"musicbrainz": {"requests": ("503",)}},
        },
    )
    over = Expect(
        outcome="rate_limited",
        exchanges=1,
        faulted=1,
        calls=1,
        retries=0,
        items=(("partial", r"rate limited \(unavailable for 30 s\)"),),
    )
    rows += _both(
        Row(
            "retry-after-over-max",
            "Retry-After: 30, over max_retry_after (5 s): not retried",
            PIPELINE,
            {"rate_limit_next": 1, "retry_after": "30"},
            over,
            steps=1,
        ),
        {"expect": _spider(over, "429"), "per_provider": {"musicbrainz": {"requests": ("503",)}}},
    )
    unavailable = r"(?i).*(rate.limit|unavailable).*"
    over_next = dataclasses.replace(
        over,
        items=(("partial", r"rate limited \(unavailable for 2 s\)"), ("partial", unavailable)),
        rejected=None,
    )
    rows += _both(
        Row(
            "retry-after-over-max-next",
            "Retry-After: 2 over max_retry_after (1 s): the next call fails at once",
            PIPELINE,
            {"rate_limit_next": 1, "retry_after": "2"},
            over_next,
            policy={"max_retry_after": 1.0},
        ),
        {
            "expect": _spider(over_next, "429", r"errback:\w+"),
            "per_provider": {"musicbrainz": {"requests": ("503", r"errback:\w+")}},
        },
    )
    storm_next = dataclasses.replace(
        storm_ra,
        calls=2,
        rejected=None,
        # With a streak of two, the first item's retry already ends the streak.
        items=(("partial", unavailable), ("partial", unavailable)),
    )
    rows += _both(
        Row(
            "storm-429-continuous",
            "continuous 429 with Retry-After: 1: after the streak the next call fails at once",
            PIPELINE,
            {"rate_limit_next": 1000, "retry_after": "1"},
            storm_next,
            per_provider={
                "musicbrainz": {"items": (("partial", unavailable), ("partial", unavailable))}
            },
            policy={"max_retries": 1, **UNAVAILABLE_AFTER_TWO},
            retry_after=1.0,
        ),
        {
            "expect": _spider(storm_next, "429", r"errback:\w+"),
            "per_provider": {"musicbrainz": {"requests": ("503", r"errback:\w+")}},
        },
    )
    timeouts = [
        ("timeout", "latency 1 s, twice the provider's timeout (0.5 s)", {"latency": 1.0},
         "ResponseNeverReceived", "DownloadTimeoutError", True),
        ("refused", "connection refused (the provider's port is closed)", {"connection": "refused"},
         "ConnectionRefusedError", "DownloadConnectionRefusedError", False),
        ("reset", "connection reset before the response", {"connection": "reset"},
         "ResponseNeverReceived", "DownloadFailedError", False),
        ("reset-mid-body", "connection reset mid-body (headers and half the body sent)",
         {"connection": "reset_mid_body"}, "ResponseFailed", "ResponseDataLossError", False),
        ("hang", "accepted, never answered", {"connection": "hang"},
         "ResponseNeverReceived", "DownloadTimeoutError", True),
        ("trickle", "body trickled over 1 s, twice the timeout",
         {"connection": "trickle", "trickle_seconds": 1.0},
         "TimeoutError", "DownloadTimeoutError", True),
    ]  # fmt: skip
    for key, text, faults, pipeline_error, spider_error, no_answer in timeouts:
        failing = _fails("network_error", rf"{pipeline_error} after 2 retries")
        if key == "refused":
            failing = dataclasses.replace(failing, faulted=0)  # never reached the sandbox
        rows += _both(
            Row(
                key,
                text,
                PIPELINE,
                faults,
                failing,
                no_answer=no_answer,
            ),
            {
                # One request: nothing comes after it for the open circuit to refuse.
                "expect": _spider(
                    dataclasses.replace(failing, rejected=0), f"errback:{spider_error}"
                ),
                "steps": 1,
            },
        )
    kinds = {
        "truncated": "the first half of the JSON",
        "not_json": "plain text, JSON content type",
        "html": "a 200 HTML page, text/html",
        "wrong_content_type": "the valid JSON labelled text/plain",
        "empty": "an empty body",
        "missing_keys": "{}: JSON without the keys clients need",
    }
    for kind, text in kinds.items():
        malformed = _fails("malformed", r"(?i).*malformed.*")
        rows += _both(
            Row(
                f"malformed-{kind.replace('_', '-')}",
                f"malformed answer: {text}",
                PIPELINE,
                {"malformed_rate": 1.0, "malformed_kind": kind},
                malformed,
            ),
            {
                # One request: nothing comes after it for the open circuit to refuse. The
                # spider path cannot know what keys a request's answer needs: valid JSON
                # without them is the spider's to judge, a plain 200.
                "expect": (
                    _spider(Expect(faulted=1, retries=0), "200")
                    if kind == "missing_keys"
                    else _spider(dataclasses.replace(malformed, rejected=0), ANY)
                ),
                "steps": 1,
                # A valid JSON body labelled text/plain is malformed only where the request
                # asked for JSON (MusicBrainz fmt=json, Last.fm format=json); a Spotify or
                # Discogs spider request asks for nothing in particular.
                "per_provider": (
                    {
                        p: {"requests": ("200",), "faulted": 1, **_CLEAN_200}
                        for p in ("spotify", "discogs")
                    }
                    if kind == "wrong_content_type"
                    else {}
                ),
            },
        )
    rows.append(
        Row(
            "item-timeout",
            "accepted, never answered, provider timeout 2 s, APIGW_ITEM_TIMEOUT 0.5 s",
            PIPELINE,
            {"connection": "hang"},
            Expect(
                faulted=1,
                breaker=None,
                rejected=None,
                items=(("partial", r"(?i).*(time|deadline).*"),),
            ),
            policy={"timeout": 2.0, "max_retries": 0},
            settings={"APIGW_ITEM_TIMEOUT": 0.5},
            steps=1,
            item_deadline=0.5,
            # Spotify runs first: when it hangs, no provider answers before the deadline.
            per_provider={"spotify": {"items": (("failed", r"(?i).*(time|deadline).*"),)}},
        )
    )
    return rows


ROWS: list[Row] = _rows()


# -- the docs table -----------------------------------------------------------------------------


def _faults_text(faults: Mapping[str, Any]) -> str:
    if not faults:
        return "—"
    return ", ".join(
        f"`{k}={v}`" if not isinstance(v, bool) else f"`{k}`" for k, v in faults.items()
    )


def _cell(row: Row, name: str, show: Any) -> str:
    """The value of field *name*, with the providers whose value differs in brackets."""
    base = show(getattr(row.expect, name))
    others = []
    for provider in PROVIDERS:
        value = show(getattr(row.expect_for(provider), name))
        if value != base:
            others.append(f"{NAMES[provider]}: {value}")
    return base + (f" ({'; '.join(others)})" if others else "")


def _breaker(value: tuple[int, int, int] | None) -> str:
    if value is None:
        return "not checked"
    names = ("open", "half-open", "closed")
    steps = [names[i] for i, n in enumerate(value) for _ in range(n)]
    return " → ".join(["closed", *steps]) if steps else "stays closed"


def _result(row: Row, expect: Expect) -> str:
    if row.path == SPIDER:
        return ", ".join(
            "response or errback" if r == ANY else r.replace("\\w+", "…") for r in expect.requests
        )
    parts = []
    for status, reason in expect.items:
        clean = (
            (reason or "")
            .replace("\\(probe in [\\d.]+ s\\)", "")
            .replace("(?i).*", "")
            .replace(".*", "")
        )
        parts.append(status + (f" «{clean.strip()}»" if reason else ""))
    return ", ".join(parts)


def render_table() -> str:
    """The matrix as the Markdown table of ``docs/reliability.md``."""
    header = (
        "| # | fault (sandbox keys) | path | outcome | faulted requests | retries | breaker | "
        "cached | items / requests | policy time | today |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for n, row in enumerate(ROWS, 1):
        policy_time = max(policy_seconds(row, p) for p in PROVIDERS)
        today = "passes"
        if row.xfail:
            today = f"xfail: {XFAIL[row.xfail][0]}"
        elif row.xfail_for:
            today = "passes; " + "; ".join(
                f"xfail for {NAMES[p]}: {XFAIL[k][0]}" for p, k in row.xfail_for.items()
            )
        cells = [
            str(n),
            f"{row.fault} ({_faults_text(row.faults)})",
            row.path,
            _cell(row, "outcome", lambda v: f"`{v}`" if v else "—"),
            _cell(row, "faulted", lambda v: "—" if v is None else str(v)),
            _cell(row, "retries", lambda v: "—" if v is None else str(v)),
            _cell(row, "breaker", _breaker),
            _cell(row, "cached", str),
            _result(row, row.expect)
            + "".join(
                f" ({NAMES[p]}: {_result(row, row.expect_for(p))})"
                for p in PROVIDERS
                if _result(row, row.expect_for(p)) != _result(row, row.expect)
            ),
            f"{policy_time:.2f} s",
            today,
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    if not XFAIL:
        return header + "\n".join(lines) + "\n"
    legend = "\n".join(f"- **{label}**: {reason}." for label, reason in XFAIL.values())
    return header + "\n".join(lines) + "\n\nWhy rows fail today (strict xfail):\n\n" + legend + "\n"


if __name__ == "__main__":  # python tests/faults/fault_matrix.py: print the docs table
    print(render_table(), end="")
