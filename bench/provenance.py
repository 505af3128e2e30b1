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
