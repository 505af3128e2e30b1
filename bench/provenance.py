"""A benchmark's results file: where its figures come from (commit, machine) and writing it."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: Where results files go by default (git-ignored: a ``.gitignore`` is written on first use).
RESULTS = ROOT / "bench" / "results"


def git_commit() -> str | None:
    """HEAD's commit (read-only), or None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def machine() -> dict[str, Any]:
    """``{"cpus": int | None, "platform": str, "python": str}`` of this machine."""
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def write_results(output: Path, result: dict[str, Any]) -> None:
    """Write *result* as indented JSON to *output* (its folder created; a ``.gitignore`` of
    ``*.json`` put in :data:`RESULTS` the first time) and say where on stderr."""
    output.parent.mkdir(parents=True, exist_ok=True)
    gitignore = output.parent / ".gitignore"
    if output.parent == RESULTS and not gitignore.exists():
        gitignore.write_text("*.json\n", encoding="utf-8")
    output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {output}", file=sys.stderr)


def host_reference_ms(repeats: int = 5) -> float:
    """The host's single-core speed now: milliseconds (best of *repeats*) of one fixed
    pure-Python workload (JSON round trips of a 4 KB document, sorting, string folding; no
    project code), so that figures of runs made at different times, or on different hosts, can
    be told apart from a change in the code (on a shared VM one host's speed varies by tens of
    percent from hour to hour). Lower is faster; takes about ``repeats * 0.1`` s."""
    import time

    document = {
        "tracks": [
            {"id": f"{n:022d}", "name": f"Track {n} (Extended Mix)", "artists": ["A", "B & C"]}
            for n in range(40)
        ]
    }
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(1500):
            names = [t["name"] for t in json.loads(json.dumps(document))["tracks"]]
            sorted(" ".join(n.casefold().split()) for n in names)
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)
