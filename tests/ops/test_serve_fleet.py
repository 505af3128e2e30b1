"""``apigw serve --redis-url``: ``/health`` and ``/admin`` over the fleet's state in Redis, next
to the node's ``/metrics``, from the long-lived process (so between jobs too)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from admin_helpers import TOKEN
from exposition import Serve


def call(port: int, method: str, path: str, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_apigw_serve_answers_health_and_admin_from_redis(redis_url: str, tmp_path: Path) -> None:
    serve = Serve(
        tmp_path / "prometheus", "--redis-url", redis_url, env={"APIGW_ADMIN_TOKEN": TOKEN}
    )
    try:
        port = serve.port()
        deadline = time.monotonic() + 30
        status, health = call(port, "GET", "/health")
        while health.get("redis", {}).get("status") != "ok" and time.monotonic() < deadline:
            time.sleep(0.1)  # the connection to Redis is made once the reactor runs
            status, health = call(port, "GET", "/health")
        assert status == 200, health
        assert health["mode"] == "redis"
        assert {"spotify", "musicbrainz", "discogs", "lastfm"} <= set(health["circuit_breakers"])
        assert health["circuit_breakers"]["spotify"]["state"] == "closed"
        assert call(port, "GET", "/admin/circuit-breakers")[0] == 401
        status, breakers = call(port, "GET", "/admin/circuit-breakers", TOKEN)
        assert status == 200 and "spotify" in json.dumps(breakers)
        assert call(port, "POST", "/admin/circuit-breakers/spotify/reset", TOKEN)[0] == 200
        assert call(port, "POST", "/admin/circuit-breakers/nosuch/reset", TOKEN)[0] == 404
    finally:
        serve.stop()
    while not serve.lines.empty():
        serve.log.append(serve.lines.get())
    assert serve.log and TOKEN not in "".join(serve.log)
