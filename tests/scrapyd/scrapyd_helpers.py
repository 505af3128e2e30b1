"""A real Scrapyd for the tests: start it, deploy the example project, schedule jobs, read back.

Blocking, standard library only (``subprocess``, ``urllib``): nothing here imports
``twisted.internet.reactor``. Scrapyd runs every job as its own process
(``python -m scrapyd.runner crawl ...``) with Scrapyd's environment, so what the jobs import
and the credentials they see come from the ``env`` given to :func:`start_scrapyd`.

Usage (what a later test scheduling several jobs at once against one sandbox and one Redis
needs too)::

    server = start_scrapyd(tmp_path / "scrapyd", env=job_environment(tmp_path))
    try:
        project = copy_example_project(tmp_path / "project", server.url)
        deploy(project)
        jobs = [server.schedule("tracklists", "tracklists", settings, limit=1) for _ in range(3)]
        server.wait_finished("tracklists", jobs, timeout=60)
        for job in jobs:
            assert job_problems(server.log("tracklists", "tracklists", job)) == []
            items = server.items("tracklists", "tracklists", job)
    finally:
        server.stop()
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_PROJECT = REPO / "example_project"
#: The example's default deploy target, which :func:`copy_example_project` points elsewhere.
EXAMPLE_DEPLOY_URL = "http://localhost:6800"

_SCRAPYD_CONF = """\
[scrapyd]
bind_address = 127.0.0.1
http_port = {port}
eggs_dir = {root}/eggs
logs_dir = {root}/logs
items_dir = {root}/items
dbs_dir = {root}/dbs
jobs_to_keep = 100
finished_to_keep = 100
max_proc = {max_proc}
poll_interval = 0.2
"""


class ScrapydError(AssertionError):
    """Scrapyd did not start, refused a call, or a job did not finish in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (Scrapyd cannot bind port 0 and say
    which port it got)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def job_environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Scrapyd's environment for the tests: this checkout first on ``PYTHONPATH`` (the jobs
    must import the code under test, not an installed copy), a private user cache directory
    (``XDG_CACHE_HOME``), and *extra* variables (credentials belong here, not in settings)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg-cache")
    # The suite's own settings module or prometheus dir, or a Redis URL of the caller's shell
    # (the example's settings.py reads it), must not leak into the jobs.
    names = (
        "SCRAPY_SETTINGS_MODULE",
        "SCRAPY_PROJECT",
        "PROMETHEUS_MULTIPROC_DIR",
        "APIGW_REDIS_URL",
    )
    for name in names:
        env.pop(name, None)
    env.update(extra)
    return env


@dataclass
class ScrapydServer:
    """A running ``scrapyd`` with its own directories under *root* (``eggs``, ``logs``,
    ``items``, ``dbs``; its own output in ``scrapyd.log``)."""

    url: str
    root: Path
    process: subprocess.Popen[bytes]
    _output: Any = field(repr=False, default=None)

    # -- the JSON API ---------------------------------------------------------------------------

    def get(self, endpoint: str, **params: str) -> dict[str, Any]:
        """``GET /<endpoint>?<params>``; the decoded JSON answer, checked ``status: ok``."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return self._call(urllib.request.Request(f"{self.url}/{endpoint}{query}"))

    def post(self, endpoint: str, fields: Iterable[tuple[str, str]]) -> dict[str, Any]:
        """``POST /<endpoint>`` with form *fields* (repeated names allowed, as ``curl -d``)."""
        body = urllib.parse.urlencode(list(fields)).encode()
        return self._call(urllib.request.Request(f"{self.url}/{endpoint}", data=body))

    def _call(self, request: urllib.request.Request) -> dict[str, Any]:
        with urllib.request.urlopen(request, timeout=10) as response:
            answer: dict[str, Any] = json.loads(response.read())
        if answer.get("status") != "ok":
            raise ScrapydError(f"{request.full_url}: {answer}")
        return answer

    def schedule(
        self, project: str, spider: str, settings: Mapping[str, Any] | None = None, **args: Any
    ) -> str:
        """Schedule *spider* with Scrapy *settings* (``-d setting=K=V``) and spider *args*;
        return the job id. Never pass credentials here: Scrapyd logs every setting."""
        fields = [("project", project), ("spider", spider)]
        fields += [("setting", f"{k}={v}") for k, v in (settings or {}).items()]
        fields += [(k, str(v)) for k, v in args.items()]
        return str(self.post("schedule.json", fields)["jobid"])

    def wait_finished(
        self, project: str, jobs: Iterable[str], timeout: float = 60.0
    ) -> dict[str, dict[str, Any]]:
        """Poll ``listjobs.json`` until every job of *jobs* is finished; return their entries.

        "finished" also means "died": check the log with :func:`job_problems`.

        Raises:
            ScrapydError: not all finished within *timeout* seconds (with the job list and
                the tail of each log), or Scrapyd exited.
        """
        wanted = set(jobs)
        deadline = time.monotonic() + timeout
        while True:
            listing = self.get("listjobs.json", project=project)
            finished = {job["id"]: job for job in listing["finished"] if job["id"] in wanted}
            if set(finished) == wanted:
                return finished
            if self.process.poll() is not None:
                raise ScrapydError(f"scrapyd exited ({self.process.returncode}):\n{self.output()}")
            if time.monotonic() > deadline:
                raise ScrapydError(
                    f"jobs not finished after {timeout} s: {listing}\n{self.output()[-3000:]}"
                )
            time.sleep(0.2)

    # -- what the jobs left -------------------------------------------------------------------

    def log(self, project: str, spider: str, job: str) -> str:
        """The job's Scrapy log (``logs/<project>/<spider>/<job>.log``)."""
        return (self.root / "logs" / project / spider / f"{job}.log").read_text("utf-8")

    def items(self, project: str, spider: str, job: str) -> list[dict[str, Any]]:
        """The items the job's feed wrote (``items/<project>/<spider>/<job>.jl``); [] if none."""
        path = self.root / "items" / project / spider / f"{job}.jl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]

    def output(self) -> str:
        """Scrapyd's own log so far (its stdout and stderr)."""
        return (self.root / "scrapyd.log").read_text("utf-8", errors="replace")

    def stop(self) -> None:
        """Stop Scrapyd (SIGTERM, then SIGKILL after 10 s) and close its log."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._output is not None:
            self._output.close()


def start_scrapyd(
    root: Path, env: Mapping[str, str], *, max_proc: int = 4, timeout: float = 30.0
) -> ScrapydServer:
    """Start ``python -m scrapyd`` (this interpreter, so jobs run on it too) in *root*, with a
    ``scrapyd.conf`` written there: 127.0.0.1 on a free port, its own directories, *max_proc*
    jobs at once, a 0.2 s poll interval. Waits for ``daemonstatus.json`` to answer.

    Raises:
        ScrapydError: Scrapyd exited or did not answer within *timeout* seconds.
    """
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (root / "scrapyd.conf").write_text(
        _SCRAPYD_CONF.format(port=port, root=root, max_proc=max_proc), "utf-8"
    )
    output = (root / "scrapyd.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "scrapyd"],
        cwd=root,
        env=dict(env),
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    server = ScrapydServer(f"http://127.0.0.1:{port}", root, process, output)
    deadline = time.monotonic() + timeout
    while True:
        try:
            server.get("daemonstatus.json")
            return server
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise ScrapydError(f"scrapyd did not start:\n{server.output()}")
        time.sleep(0.1)


def copy_example_project(dest: Path, url: str) -> Path:
    """Copy ``example_project`` to *dest* (``scrapyd-deploy`` writes ``setup.py``, ``build/``
    and ``project.egg-info`` next to ``scrapy.cfg``: not in the repository) and point its
    default deploy target at *url*. Returns *dest*.

    Raises:
        ScrapydError: the example's ``scrapy.cfg`` has no ``url = http://localhost:6800``.
    """
    shutil.copytree(
        EXAMPLE_PROJECT, dest, ignore=shutil.ignore_patterns("__pycache__", ".scrapy", "*.jsonl")
    )
    cfg = dest / "scrapy.cfg"
    text = cfg.read_text("utf-8")
    line = f"url = {EXAMPLE_DEPLOY_URL}\n"
    if text.count(line) != 1:
        raise ScrapydError(f"example scrapy.cfg has no single {line!r}:\n{text}")
    cfg.write_text(text.replace(line, f"url = {url}\n"), "utf-8")
    return dest


def deploy(project_dir: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    """Run ``scrapyd-deploy *args`` in *project_dir* (this interpreter); return its output.

    Raises:
        ScrapydError: it failed, with its output.
    """
    done = subprocess.run(
        [sys.executable, "-m", "scrapyd_client.deploy", *args],
        cwd=project_dir,
        env=dict(env if env is not None else os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    if done.returncode != 0 or '"status": "ok"' not in output:
        raise ScrapydError(f"scrapyd-deploy failed ({done.returncode}):\n{output}")
    return output


_PROBLEM = re.compile(r"\] (ERROR|CRITICAL): |^Traceback \(most recent call last\)|Unhandled error")
_STAT = re.compile(r"'([^']+)': (-?\d+(?:\.\d+)?)\b")


def job_problems(log: str) -> list[str]:
    """The lines of a job's log that say it went wrong: ERROR or CRITICAL records, tracebacks,
    unhandled errors. A job that dies still shows as "finished": this is how to tell."""
    return [line for line in log.splitlines() if _PROBLEM.search(line)]


def job_stats(log: str) -> dict[str, float]:
    """The numeric stats of the job's final "Dumping Scrapy stats" block ({} if absent)."""
    start = log.rfind("Dumping Scrapy stats:")
    if start < 0:
        return {}
    end = log.find("}", start)
    return {key: float(value) for key, value in _STAT.findall(log[start:end])}


def site_rows(sandbox: Any, limit: int) -> int:
    """The track rows of the first *limit* tracklists, counted without Scrapy."""
    with urllib.request.urlopen(f"{sandbox.url}/site/?limit={limit}") as response:
        links = re.findall(r'class="tracklist-link" href="([^"]+)"', response.read().decode())
    rows = 0
    for link in links[:limit]:
        with urllib.request.urlopen(sandbox.url + link) as response:
            rows += response.read().decode().count('<li class="track"')
    return rows


def assert_complete(items: list[dict], log: str, rows: int) -> None:
    """Every row reached the feed; each row with artist and title is looked up and completed,
    the others are marked skipped; every findable one (all but the site's "ID" rows, DJ
    shorthand for an unreleased track) carries Spotify's and MusicBrainz's ids."""
    assert len(items) == rows == job_stats(log)["item_scraped_count"]
    # "ID" rows are not searched: skipped with a reason (enrichment_skip_reason).
    lookups = [i for i in items if i.get("artist") and i.get("title") and i["title"] != "ID"]
    assert Counter(i["enrichment_status"] for i in items) == Counter(
        {"completed": len(lookups), "skipped": rows - len(lookups)}
    )
    findable = lookups
    assert len(findable) >= 10
    assert all("spotify_id" in i and "musicbrainz_id" in i for i in findable)
