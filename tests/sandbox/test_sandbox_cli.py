"""``python -m scrapy_apigw.sandbox``: options, the single URL line, SIGTERM, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fixtures_sandbox import start_sandbox_process


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scrapy_apigw.sandbox", *args],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


def test_bad_options_exit_2() -> None:
    assert run("--speed", "0").returncode == 2
    missing = run("--catalog", "/nonexistent/catalog.json")
    assert missing.returncode == 2 and "cannot read catalog" in missing.stderr
    assert run("--audio-features", "maybe").returncode == 2


def test_custom_catalog_forbidden_features_and_sigterm(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.json"
    catalog.write_text(
        json.dumps(
            [
                {"title": "Alpha (Club Mix)", "artists": ["Tester"], "genre": "techno"},
                {"title": "Beta", "artists": ["Tester", "Guest"]},
                {"title": "Gamma", "artists": ["Other"], "extra": True},
            ]
        )
    )
    handle = start_sandbox_process(
        5.0,
        "--catalog", str(catalog), "--audio-features", "forbidden", "--lastfm-api-key", "k2",
        "--discogs-token", "t2", "--seed", "3",
    )  # fmt: skip
    try:
        served = handle.catalog()
        # decoys are on by default: the three entries first, then the three Cyrillic tracks
        # decoys add (scrapy_apigw.sandbox.decoys.EXTRA_TRACKS)
        assert served["count"] == 6 and served["tracks"][1]["artists"] == ["Tester", "Guest"]
        assert [t["title"] for t in served["tracks"]][:3] == ["Alpha (Club Mix)", "Beta", "Gamma"]
        form = (
            b"grant_type=client_credentials"
            b"&client_id=sandbox-client-id&client_secret=sandbox-client-secret"
        )
        token = handle.request(
            "POST", "/spotify/accounts/api/token", data=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ).json()["access_token"]  # fmt: skip
        track_id = served["tracks"][0]["spotify_id"]
        features = handle.get(
            f"/spotify/v1/audio-features/{track_id}", headers={"Authorization": f"Bearer {token}"}
        )
        assert features.status == 403 and features.json() == {"error": {"status": 403}}
        lastfm = handle.get(
            "/lastfm/2.0/",
            params={
                "method": "track.getTopTags",
                "artist": "Other",
                "track": "Gamma",
                "api_key": "k2",
                "format": "json",
            },
        )
        assert lastfm.status == 200 and lastfm.json()["toptags"]["tag"]
        discogs = handle.get("/discogs/database/search", params={"q": "gamma", "token": "t2"})
        assert discogs.status == 200
    finally:
        handle.process.terminate()
        assert handle.process.wait(timeout=10) == 0
        assert handle.process.stdout is not None
        assert handle.process.stdout.read() == b""  # nothing after the one URL line
        handle.stop()


def test_import_and_construction_leave_the_reactor_alone() -> None:
    code = (
        "import sys\n"
        "from scrapy_apigw.sandbox import Sandbox, SandboxConfig\n"
        "Sandbox(SandboxConfig(speed=2))\n"
        "assert 'twisted.internet.reactor' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=20, check=False
    )
    assert result.returncode == 0, result.stderr
