"""Fixtures of the fault matrix: its sandboxes and a fast engine heartbeat.

Only fixtures live here (no helpers to import): ``tests/integration`` has a ``conftest`` module
too, and two importable ``conftest`` modules would shadow each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest
from fault_harness import PROVIDERS, FaultSandbox, start_fault_sandbox


@pytest.fixture(scope="module")
def fault_sandboxes() -> Iterator[list[FaultSandbox]]:
    """One sandbox per provider (the pipeline crawls of a row run side by side, each faulting
    its own provider) and a fifth for the spider crawl, which runs beside them. Started in
    parallel."""
    count = len(PROVIDERS) + 1
    with ExitStack() as stack, ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(start_fault_sandbox) for _ in range(count)]
        sandboxes, errors = [], []
        for future in futures:
            try:
                sandbox = future.result()
            except Exception as exc:  # the ones that did start are still stopped
                errors.append(exc)
                continue
            stack.callback(sandbox.process.stop)
            sandboxes.append(sandbox)
        if errors:
            raise errors[0]
        yield sandboxes


@pytest.fixture(scope="module", autouse=True)
def fast_engine_heartbeat() -> Iterator[None]:
    """Scrapy's engine notices an idle spider on a 5 s heartbeat when nothing else wakes it,
    which is the case when the last thing to finish is an item: every pipeline crawl would
    last up to 5 s longer than its work. The matrix beats every 0.05 s (its own module only)."""
    from scrapy.core.engine import ExecutionEngine

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ExecutionEngine, "_SLOT_HEARTBEAT_INTERVAL", 0.05)
        yield
