"""Match-quality benchmark: wrong-match rate and recall per provider (issue 9, section 1).

Run from the repository root (not part of the test suite)::

    python bench/bench_match.py [--speed 20] [--decoys 0.3] [--messy 0.3] [--tracklists N]
    python bench/bench_match.py --feed tracks.jsonl --truth bench/results/match-truth.json

It starts ONE provider sandbox with decoys and a messy tracklist site (``python -m
scrapy_apigw.sandbox --decoys D --messy-site M``), crawls the site with the example project's
``tracklists`` spider (one process, as ``bench_crawl.py`` does: full enrichment, cold cache),
reads the sandbox's ground truth (``GET /_sandbox/truth``) and scores every filled identifier
(:mod:`scrapy_apigw.sandbox.scoring`): per provider filled, correct, wrong, missed, findable,
wrong-match rate (wrong / filled) and recall (correct / findable). Targets of issue 9:
wrong-match < 0.5 %, recall >= 95 % of the findable tracks.

Then the same scoring on the real recorded search answers of ``../shared/fixtures``
(:mod:`scrapy_apigw.sandbox.recorded`), with two choosers: the top-ranked candidate, and
today's client (:func:`client_chooser`: the provider clients' own candidate pickers, called on
the recorded answer). That chooser is the hook for the confidence work (branch i9-match):
replace its body by the new matcher and rerun.

Prints markdown tables, writes JSON to ``bench/results/match.json``. Exit status 0 even when
the targets are missed (this is a measurement), 1 when the crawl failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_crawl import CrawlSpec, run_crawl
from provenance import git_commit, machine, write_results

from scrapy_apigw.sandbox import start_sandbox_process
from scrapy_apigw.sandbox.recorded import first_candidate, score_recorded
from scrapy_apigw.sandbox.scoring import breakdown, format_table, score_items

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT.parent / "shared" / "fixtures"
RESULTS = ROOT / "bench" / "results"


def client_chooser(provider: str, answer: Any, artist: str, title: str) -> str | None:
    """Today's client picking a candidate from a recorded *answer* (its own pickers: Spotify
    ``_pick`` of a text search, MusicBrainz ``_pick_search`` / ``_pick_isrc``, Discogs'
    ``_rank``). The hook for the confidence work: swap in the new matcher here."""
    from scrapy_apigw.providers.base import ApiAnswer, TrackContext
    from scrapy_apigw.providers.discogs import DiscogsClient
    from scrapy_apigw.providers.musicbrainz import MusicBrainzClient
    from scrapy_apigw.providers.spotify import SpotifyClient

    track = TrackContext(artist=artist, title=title)
    if provider == "spotify":
        item = SpotifyClient()._pick(ApiAnswer("ok", 200, answer), track, True)
        return str(item["id"]) if item else None
    if provider == "musicbrainz":
        recordings = answer.get("recordings") or []
        mb = MusicBrainzClient()
        is_search = "count" in answer
        rec = mb._pick_search(recordings, track) if is_search else mb._pick_isrc(recordings, track)
        return str(rec["id"]) if rec else None
    if provider == "discogs":
        ranked = DiscogsClient._rank(answer.get("results"), track)
        return str(ranked[0]["id"]) if ranked else None
    return None


def load_fixture(relative: str) -> Any:
    """A recorded answer of ``../shared/fixtures``."""
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


def read_items(path: Path) -> list[dict[str, Any]]:
    """The items of a JSON Lines feed, or of a JSON list (a saved ``-items.json``)."""
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        items: list[dict[str, Any]] = json.loads(text)
        return items
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def recorded_tables() -> dict[str, Any]:
    """Scores on the recorded answers for each chooser (empty when ``../shared`` is absent)."""
    if not FIXTURES.is_dir():
        print(f"(no recorded answers: {FIXTURES} is absent)", file=sys.stderr)
        return {}
    out: dict[str, Any] = {}
    for name, chooser in (("first candidate", first_candidate), ("today's client", client_chooser)):
        scores, outcomes = score_recorded(chooser, load_fixture)
        print(f"\n### Recorded answers, chooser: {name}\n\n{format_table(scores)}")
        out[name] = {
            "scores": [s.as_dict() for s in scores.values()],
            "cases": [
                {"case": c.name, "provider": c.provider, "chosen": chosen, "outcome": outcome}
                for c, chosen, outcome in outcomes
            ],
        }
    return out


def _by_count(entry: tuple[str, int]) -> tuple[int, str]:
    return (-entry[1], entry[0])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speed", type=float, default=20.0, help="sandbox speed (default 20)")
    parser.add_argument("--decoys", type=float, default=0.3, help="decoy share (default 0.3)")
    parser.add_argument("--messy", type=float, default=0.3, help="messy-row share (0.3)")
    parser.add_argument("--tracklists", type=int, default=None, help="crawl only the first N")
    parser.add_argument("--feed", type=Path, default=None, help="score this feed, no crawl")
    parser.add_argument("--truth", type=Path, default=None, help="truth JSON for --feed")
    parser.add_argument("--output", type=Path, default=RESULTS / "match.json")
    args = parser.parse_args(argv)

    crawl: dict[str, Any] = {}
    decoys: list[dict[str, Any]] = []
    if args.feed is not None:
        if args.truth is None:
            parser.error("--feed needs --truth (a saved GET /_sandbox/truth answer)")
        items = read_items(args.feed)
        data = json.loads(args.truth.read_text(encoding="utf-8"))
        truth = data["rows"] if isinstance(data, dict) else data
        saved = Path(str(args.truth).replace("-truth.json", "-decoys.json"))
        decoys = json.loads(saved.read_text(encoding="utf-8")) if saved.is_file() else []
    else:
        options = ("--decoys", str(args.decoys), "--messy-site", str(args.messy))
        with start_sandbox_process(args.speed, *options, timeout=60) as sandbox, \
                tempfile.TemporaryDirectory(prefix="bench-match-") as tmp:  # fmt: skip
            work = Path(tmp)
            spec = CrawlSpec("match", "decoys + messy site, cold cache", {}, "match.sqlite3")
            run = run_crawl(spec, sandbox, args.tracklists, work, 0, use_time=False)
            if run.returncode != 0:
                return 1
            items = read_items(work / "match0.jsonl")
            truth = sandbox.truth()
            decoys = sandbox.catalog()["decoys"]
            # Kept for --feed/--truth rescoring (git-ignored *.json next to the output).
            args.output.parent.mkdir(parents=True, exist_ok=True)
            stem = args.output.with_suffix("")
            Path(f"{stem}-truth.json").write_text(json.dumps(truth), encoding="utf-8")
            Path(f"{stem}-items.json").write_text(json.dumps(items), encoding="utf-8")
            Path(f"{stem}-decoys.json").write_text(json.dumps(decoys), encoding="utf-8")
            crawl = {
                "wall_s": run.wall_s,
                "items": run.items,
                "statuses": run.statuses,
                "provider_calls": run.provider_calls,
                "rate_limited": run.rate_limited,
            }
    scores, unmatched = score_items(items, truth)
    findable_rows = sum(1 for r in truth if r.get("findable"))
    source = f"feed {args.feed}" if args.feed else f"decoys {args.decoys}, messy rows {args.messy}"
    print(
        f"## Decoy catalog ({source}): "
        f"{len(items)} items, {len(truth)} site rows, {findable_rows} findable, "
        f"{unmatched} items without a truth row\n"
    )
    print(format_table(scores))
    missed_targets = [p for p, s in scores.items() if s.findable and not s.meets_targets()]
    print(
        "\ntargets (wrong-match < 0.5 %, recall >= 95 %): "
        + ("met" if not missed_targets else "missed by " + ", ".join(missed_targets))
    )
    causes = breakdown(items, truth, decoys)
    print("\nwhy (wrong: the decoy family named, or not findable; missed: the row's style):\n")
    for provider, why in causes.items():
        wrong = ", ".join(f"{k} {v}" for k, v in sorted(why["wrong"].items(), key=_by_count))
        missed = ", ".join(f"{k} {v}" for k, v in sorted(why["missed"].items(), key=_by_count))
        print(f"- {provider}: wrong: {wrong or '-'}; missed: {missed or '-'}")
    recorded = recorded_tables()
    result = {
        "benchmark": "bench_match",
        "commit": git_commit(),
        "machine": machine(),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "crawl": crawl,
        "unmatched_items": unmatched,
        "scores": [s.as_dict() for s in scores.values()],
        "breakdown": causes,
        "recorded": recorded,
    }
    write_results(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
