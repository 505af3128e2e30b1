"""A provider of a user's own, as a project would write it: its client only (the rest is
declared in the settings, see ``test_user_provider.py``), and a tiny loopback API for it.

The "moodbase" API: ``GET /tracks?artist=&title=`` with ``Authorization: Bearer <token>``
answers ``{"tracks": [{"id": "mb-1", "artist": ..., "title": ..., "mood": ...}]}``; without the
right token 401 ``{"error": "bad token"}``.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.web.resource import Resource

from scrapy_apigw.core.outcome import Outcome, classify_status
from scrapy_apigw.providers.base import ApiCall, Fetch, ProviderResult, TrackContext

MOODS = {("daft punk", "da funk"): ("mb-1", "funky"), ("moloko", "sing it back"): ("mb-2", "warm")}


class MoodClient:
    """The waterfall client of "moodbase": ``moodbase_id`` and ``mood`` by artist and title."""

    name = "moodbase"

    def classify(self, status: int, data: Any) -> Outcome:
        return classify_status(status)

    def check_shape(self, call: ApiCall, data: Any) -> str | None:
        return (
            None
            if isinstance(data, dict) and isinstance(data.get("tracks"), list)
            else ("no tracks list")
        )

    async def enrich(self, track: TrackContext, fetch: Fetch) -> ProviderResult:
        if not (track.artist and track.title):
            return ProviderResult("skipped", reason="no artist and title")
        params = (("artist", track.artist), ("title", track.title))
        answer = await fetch(ApiCall(self.name, "mood", "/tracks", params))
        tracks = answer.data.get("tracks") if answer.kind == "ok" else None
        if not tracks:
            return ProviderResult("not_found", reason="no such track")
        return ProviderResult("ok", {"moodbase_id": tracks[0]["id"], "mood": tracks[0]["mood"]})


class MoodApi(Resource):
    """The loopback "moodbase" API; remembers the Authorization headers it saw."""

    isLeaf = True

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.authorizations: list[str] = []

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        auth = (request.getHeader(b"authorization") or b"").decode()
        self.authorizations.append(auth)
        if auth != f"Bearer {self.token}":
            request.setResponseCode(401)
            return json.dumps({"error": "bad token"}).encode()
        args = {k.decode(): v[0].decode() for k, v in request.args.items()}
        found = MOODS.get((args.get("artist", "").lower(), args.get("title", "").lower()))
        tracks = (
            []
            if found is None
            else [
                {"id": found[0], "artist": args["artist"], "title": args["title"], "mood": found[1]}
            ]
        )
        return json.dumps({"tracks": tracks}).encode()


def _declared() -> Any:
    """The same provider as one declaration in a module (``APIGW_PROVIDER_MODULES =
    ["user_provider:declared"]``), as a package's own provider module declares it."""
    from scrapy_apigw.providers.auth import HeaderAuth
    from scrapy_apigw.providers.registry import ProviderConfig
    from scrapy_apigw.providers.spec import Credential, ProviderSpec

    return ProviderSpec(
        name="moodbase",
        config=ProviderConfig(
            name="moodbase",
            base_url="https://api.moodbase.example/v1",
            rate=50,
            burst=5,
            cache_ttl={"mood": 86400},
        ),
        client=lambda ctx: MoodClient(),
        credentials=(Credential("token", "MOODBASE_TOKEN"),),
        auth=lambda creds, ctx: HeaderAuth("Authorization", "Bearer {secret}", creds["token"]),
    )


declared = _declared()
