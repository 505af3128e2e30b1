"""The fault matrix (issue 5 §4): providers x faults x both paths, against real sandboxes.

One test per row of :data:`fault_matrix.ROWS` and provider. The crawls of a row run once (the
first of its four tests runs them, side by side) and each test checks its provider: the outcome
class, the retries against the policy, the breaker transitions, the cache, the items' status
and reason (or what the spider's requests got), and the time against the bound derived from
the policy. Run it alone with ``python -m pytest tests/faults``; ``docs/reliability.md`` has the
table.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from fault_harness import (
    PROVIDERS,
    FaultSandbox,
    OneByOneItemsSpider,
    ProviderRequestsSpider,
    breaker_counts,
    cache_entries,
    crawl_settings,
    outcome_counts,
    run_side_by_side,
    stat,
)
from fault_matrix import PIPELINE, ROWS, SPIDER, XFAIL, Row, bound, render_table

from scrapy_apigw.sandbox.config import BASE_PATHS

REPO = Path(__file__).resolve().parents[2]
TOKEN_PATH = BASE_PATHS["spotify_token"]


@dataclass
class ProviderRun:
    """What one provider went through in one row's crawl."""

    result: Any  # CrawlResult
    settings: dict[str, Any]
    log: list[dict[str, Any]]
    seconds: float  # the crawl (pipeline) or the provider's requests (spider)
    endings: list[str] = field(default_factory=list)  # spider: what each request ended with


_RUNS: dict[str, dict[str, ProviderRun]] = {}
_BASELINE: dict[str, float] = {}


async def _run(row: Row, sandboxes: list[FaultSandbox], workdir: Path) -> dict[str, ProviderRun]:
    """Run *row*: on the pipeline path one crawl per provider, each on its own sandbox
    (``sandboxes[:4]``) faulting that provider; on the spider path one crawl on
    ``sandboxes[4]`` with the four providers faulted."""
    if row.path == PIPELINE:
        jobs = []
        own = sandboxes[: len(PROVIDERS)]
        for sandbox, provider in zip(own, PROVIDERS, strict=True):
            sandbox.reset()
            if row.faults:
                sandbox.process.set_faults(provider, **row.faults)
            settings = crawl_settings(
                sandbox, workdir / provider, {provider: row.policy}, **row.settings
            )
            items = [sandbox.item(n) for n in range(row.steps)]
            jobs.append((OneByOneItemsSpider, settings, {"items": items, "pause": row.pause}))
        results = await run_side_by_side(jobs)
        runs = {}
        for sandbox, provider, job, result in zip(own, PROVIDERS, jobs, results, strict=True):
            runs[provider] = ProviderRun(result, job[1], sandbox.log(provider), result.seconds)
        return runs
    sandbox = sandboxes[len(PROVIDERS)]
    sandbox.reset()
    for provider in PROVIDERS:
        if row.faults:
            sandbox.process.set_faults(provider, **row.faults)
    settings = crawl_settings(sandbox, workdir, {p: row.policy for p in PROVIDERS}, **row.settings)
    batches = [[sandbox.spider_request(p, track=n) for p in PROVIDERS] for n in range(row.steps)]
    [result] = await run_side_by_side(
        [(ProviderRequestsSpider, settings, {"batches": batches, "pause": row.pause})]
    )
    spider = result.crawler.spider
    runs = {}
    for provider in PROVIDERS:
        urls = {sandbox.spider_request(provider, track=n)[0] for n in range(row.steps)}
        ends = [(what, at) for url, what, at in spider.endings if url in urls]
        last = max((at for _, at in ends), default=spider.started)
        runs[provider] = ProviderRun(
            result, settings, sandbox.log(provider), last - spider.started, [w for w, _ in ends]
        )
    return runs


async def row_run(
    row: Row, sandboxes: list[FaultSandbox], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, ProviderRun]:
    """The row's crawls, run once, beside those of its twin on the other path (different
    sandboxes). The unfaulted rows are run first: they measure the baseline, after one warm-up
    run (the first crawls of a process pay for its imports)."""
    if row.id in _RUNS:
        return _RUNS[row.id]
    if row.key != "none" and not _BASELINE:
        await row_run(next(r for r in ROWS if r.key == "none"), sandboxes, tmp_path_factory)
    twins = [r for r in ROWS if r.key == row.key and r.id not in _RUNS]
    if row.key == "none":
        await _run_side_by_side(twins, sandboxes, tmp_path_factory, "warm-up")
    runs = await _run_side_by_side(twins, sandboxes, tmp_path_factory)
    for twin, run in zip(twins, runs, strict=True):
        _RUNS[twin.id] = run
        if twin.key == "none":
            _BASELINE[twin.path] = max(r.seconds for r in run.values())
    return _RUNS[row.id]


async def _run_side_by_side(
    rows: list[Row],
    sandboxes: list[FaultSandbox],
    tmp_path_factory: pytest.TempPathFactory,
    tag: str = "",
) -> list[dict[str, ProviderRun]]:
    from twisted.internet import defer

    work = [
        defer.ensureDeferred(
            _run(row, sandboxes, tmp_path_factory.mktemp(tag or row.id.replace("/", "-")))
        )
        for row in rows
    ]
    return list(await defer.gatherResults(work, consumeErrors=True))


def problems_of(row: Row, provider: str, run: ProviderRun, baseline: float) -> list[str]:
    """Every way *provider*'s run differs from the row's expectation (empty: as expected)."""
    expect = row.expect_for(provider)
    problems: list[str] = []

    def check(what: str, got: Any, want: Any) -> None:
        if got != want:
            problems.append(f"{what}: got {got!r}, want {want!r}")

    result = run.result
    counts = outcome_counts(result, provider)
    healthy = {"success", "not_found"}
    if expect.outcome is not None:
        check(f"responses/{expect.outcome}", counts.get(expect.outcome, 0), expect.exchanges)
    if expect.outcome is not None or expect.faulted == 0:
        # The faulted exchanges are the only failures (a row that checks no outcome, like the
        # item deadline whose cancelled call may count either way, skips this).
        check("other failure outcomes", sorted(set(counts) - healthy - {expect.outcome}), [])
    faulted = [r for r in run.log if r["fault"]]
    if expect.faulted is not None:
        check("faulted sandbox requests", len(faulted), expect.faulted)
    if expect.calls is not None:
        calls = [r for r in run.log if not r["path"].endswith(TOKEN_PATH)]
        check("provider requests (token requests aside)", len(calls), expect.calls)
    if expect.retries is not None:
        check("apigw/retries", stat(result, provider, "retries"), expect.retries)
    if expect.breaker is not None:
        counts_b = breaker_counts(result, provider)
        check("breaker (open, half_open, closed)", tuple(counts_b.values()), expect.breaker)
    if expect.rejected is not None:
        check("breaker/rejected", stat(result, provider, "breaker/rejected"), expect.rejected)
    if expect.min_gap:
        times = [r["t"] for r in faulted]
        gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
        if any(gap < expect.min_gap - 0.05 for gap in gaps):
            problems.append(f"Retry-After not honoured: gaps {gaps} < {expect.min_gap} s")
    if expect.cached != "n/a":
        entries = cache_entries(run.settings, provider)
        if expect.cached == "none":
            check("cache entries", [(e.kind, e.status) for e in entries], [])
        else:
            bad = [(e.kind, e.status) for e in entries if e.kind != "ok" or e.data is None]
            if not entries or bad:
                problems.append(f"cache: want only ok answers with data, got {entries!r}")
    if row.path == PIPELINE:
        items = result.items
        check("items in the feed", len(items), row.steps)
        for n, (item, (status, reason)) in enumerate(zip(items, expect.items, strict=False)):
            errors = item.get("enrichment_errors") or {}
            check(f"item {n + 1} enrichment_status", item.get("enrichment_status"), status)
            others = {p: e for p, e in errors.items() if p != provider}
            if row.item_deadline and reason is not None:
                # The deadline is the item's: providers after the hanging one never ran.
                late = {p: e for p, e in others.items() if not re.fullmatch(reason, e)}
                check(f"item {n + 1} other providers' errors not the deadline", late, {})
            else:
                check(f"item {n + 1} errors of other providers", sorted(others), [])
            got = errors.get(provider)
            if reason is None:
                check(f"item {n + 1} {provider} error", got, None)
            elif got is None or not re.fullmatch(reason, got):
                problems.append(f"item {n + 1} {provider} error: got {got!r}, want /{reason}/")
    else:
        ends = run.endings
        if len(ends) != len(expect.requests) or not all(
            re.fullmatch(want, got) for want, got in zip(expect.requests, ends, strict=False)
        ):
            problems.append(f"spider requests ended {ends}, want {list(expect.requests)}")
    limit = bound(row, provider, baseline)
    if run.seconds > limit:
        problems.append(f"took {run.seconds:.2f} s, over the bound {limit:.2f} s")
    return problems


def _params() -> list[Any]:
    params = []
    for row in ROWS:
        for provider in PROVIDERS:
            reason = row.xfail_reason(provider)
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            params.append(pytest.param(row, provider, id=f"{row.id}/{provider}", marks=marks))
    return params


@pytest.mark.crawl
@pytest.mark.parametrize(("row", "provider"), _params())
@pytest_twisted.ensureDeferred
async def test_fault_matrix(
    row: Row,
    provider: str,
    fault_sandboxes: list[FaultSandbox],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    runs = await row_run(row, fault_sandboxes, tmp_path_factory)
    run = runs[provider]
    problems = problems_of(row, provider, run, _BASELINE[row.path])
    assert not problems, f"{row.id} {provider} ({run.seconds:.2f} s):\n  " + "\n  ".join(problems)


# -- the table itself ---------------------------------------------------------------------------


def test_the_matrix_has_at_least_25_distinct_scenarios_on_both_paths() -> None:
    ids = [row.id for row in ROWS]
    assert len(ids) == len(set(ids))
    faults = {row.key for row in ROWS}
    assert len(faults) >= 25
    both = {row.key for row in ROWS if row.path == SPIDER} & {
        row.key for row in ROWS if row.path == PIPELINE
    }
    assert len(both) >= len(faults) - 1  # only the item deadline is pipeline-only


def test_every_row_expects_one_result_per_step() -> None:
    for row in ROWS:
        for provider in PROVIDERS:
            expect = row.expect_for(provider)
            steps = expect.items if row.path == PIPELINE else expect.requests
            assert len(steps) == row.steps, (row.id, provider)
            key = row.xfail or row.xfail_for.get(provider)
            assert key is None or key in XFAIL, (row.id, provider, key)


def test_reliability_doc_shows_the_matrix() -> None:
    doc = (REPO / "docs" / "reliability.md").read_text(encoding="utf-8")
    start, end = "<!-- matrix:start -->\n", "<!-- matrix:end -->"
    assert start in doc and end in doc, "docs/reliability.md lost its matrix markers"
    shown = doc.split(start, 1)[1].split(end, 1)[0]
    assert shown == render_table(), (
        "docs/reliability.md is out of date: paste `python tests/faults/fault_matrix.py`"
    )
