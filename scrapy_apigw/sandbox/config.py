"""Settings of one sandbox: where it listens, how fast its clocks run, which credentials pass."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "BASE_PATHS",
    "DEFAULT_BEATPORT_API_KEY",
    "DEFAULT_BEATPORT_API_SECRET",
    "DEFAULT_DECOYS",
    "DEFAULT_DISCOGS_CONSUMER_KEY",
    "DEFAULT_DISCOGS_CONSUMER_SECRET",
    "DEFAULT_DISCOGS_TOKEN",
    "DEFAULT_LASTFM_API_KEY",
    "DEFAULT_MESSY_SITE",
    "DEFAULT_SPOTIFY_CLIENT_ID",
    "DEFAULT_SPOTIFY_CLIENT_SECRET",
    "MODES",
    "SandboxConfig",
]

DEFAULT_SPOTIFY_CLIENT_ID = "sandbox-client-id"
DEFAULT_SPOTIFY_CLIENT_SECRET = "sandbox-client-secret"
DEFAULT_DISCOGS_TOKEN = "sandbox-discogs-token"
DEFAULT_DISCOGS_CONSUMER_KEY = "sandbox-discogs-key"
DEFAULT_DISCOGS_CONSUMER_SECRET = "sandbox-discogs-secret"
DEFAULT_LASTFM_API_KEY = "sandbox-lastfm-key"
DEFAULT_BEATPORT_API_KEY = "sandbox-beatport-key"
DEFAULT_BEATPORT_API_SECRET = "sandbox-beatport-secret"
#: Default share (0..1) of the catalog tracks that get decoys, and of the tracklist site's rows
#: written the DJ-tracklist way: real catalogs hold other versions, covers and look-alikes of
#: nearly every track, and real tracklists are messy (issue 9), so the sandbox is too unless a
#: caller asks for 0.
DEFAULT_DECOYS = 0.3
DEFAULT_MESSY_SITE = 0.3

#: Where each imitated provider lives under the sandbox's base URL (the client's sandbox
#: routing reads this too).
BASE_PATHS = {
    "spotify": "/spotify/v1",
    "spotify_token": "/spotify/accounts/api/token",
    "musicbrainz": "/musicbrainz/ws/2",
    "discogs": "/discogs",
    "lastfm": "/lastfm/2.0",
    "beatport": "/beatport/v4",
    "beatport_token": "/beatport/v4/auth/o/token/",
    "acousticbrainz": "/acousticbrainz/api/v1",
    "site": "/site/",
}


#: The choices of each mode field of :class:`SandboxConfig` (the first is the default).
MODES: dict[str, tuple[object, ...]] = {
    "spotify_batch": ("allowed", "forbidden"),
    "spotify_rate_limit_body": ("rate", "quota"),
    "musicbrainz_generic_ua": ("throttled", "blocked", "allowed"),
    "lastfm_unknown_track": ("stub", "error6"),
    "lastfm_rate_limit_status": (429, 200),
}


@dataclass
class SandboxConfig:
    """How to run a sandbox.

    Attributes:
        host: interface to listen on.
        port: TCP port; 0 picks a free one (read it back from ``Sandbox.url``).
        speed: time compression factor. Every rate-limit window is divided by it and every
            rate multiplied by it, and Spotify tokens live ``token_ttl / speed`` seconds:
            ``speed=20`` makes a 30 s window last 1.5 s. Latency faults are not scaled.
        catalog_path: JSON catalog file; ``None`` uses the catalog shipped with the package.
        seed: seed of the fault random generators (``error_rate``, ``malformed_rate``).
            Provider records do not depend on it: they derive from the tracks only.
        audio_features: ``"allowed"`` serves ``/v1/audio-features``; ``"forbidden"`` answers
            403 ``{"error":{"status":403}}`` like an app registered after 2024-11-27.
        token_ttl: Spotify token lifetime reported in ``expires_in``, seconds (before scaling).
        spotify_client_id, spotify_client_secret: accepted client-credentials pair.
        discogs_token: accepted personal access token.
        discogs_consumer_key, discogs_consumer_secret: accepted consumer key and secret.
        lastfm_api_key: accepted API key.
        beatport_client_id, beatport_client_secret: accepted Beatport partner client.
        beatport_token_ttl: Beatport access-token lifetime reported in ``expires_in``, seconds
            (36000 seen, PROVIDERS.md section 5a); it really lives ``beatport_token_ttl / speed``.
        spotify_batch: ``"allowed"`` serves ``/v1/tracks?ids=`` and ``/v1/audio-features?ids=``;
            ``"forbidden"`` answers them 403 ``{"error":{"status":403,"message":"Forbidden"}}``
            like a development-mode app created after 2026-02-11 (single lookups still work).
        spotify_rate_limit_body: what Spotify's 429s say: ``"rate"`` ``{"error":{"status":429,
            "message":"API rate limit exceeded"}}`` or ``"quota"``, the July 2026 dev-mode quota
            body ``{"error":{"status":429,"message":"Too many requests","reason":
            "QUOTA_EXCEEDED"}}``.
        musicbrainz_generic_ua: what MusicBrainz does with a generic User-Agent (a library's
            default such as ``python-requests/2.32``, Scrapy's, or one without contact):
            ``"throttled"`` (503 for every request: the shared anonymous pool is exhausted),
            ``"blocked"`` (403) or ``"allowed"``. A missing User-Agent is always 403.
        lastfm_unknown_track: Last.fm's answer to an unknown artist/track on ``track.getInfo``:
            ``"stub"`` (HTTP 200 with a stub track, today's behaviour) or ``"error6"`` (the
            older ``{"error":6,"message":"Track not found"}``).
        lastfm_rate_limit_status: HTTP status of Last.fm's error 29 (rate limit), 429 or 200.
        provider_ports: also serve every provider on a free port of its own, as if it were its
            own host (``Sandbox.hosts``, ``GET /_sandbox/hosts``); the ``connection: "refused"``
            fault closes that port. Off by default.
        decoys: share (0..1) of the catalog tracks that get decoy records (other versions,
            covers, the same title by other artists...: :mod:`scrapy_apigw.sandbox.decoys`);
            default :data:`DEFAULT_DECOYS` (0.3); 0 serves the catalog alone.
        messy_site: share (0..1) of the tracklist website's rows written the DJ-tracklist way
            ("(Original Mix)", "ID - ID", "A vs B", "[Label]", other casings and spellings:
            :mod:`scrapy_apigw.sandbox.site`); default :data:`DEFAULT_MESSY_SITE` (0.3); 0 writes
            every row as catalogued.
    """

    host: str = "127.0.0.1"
    port: int = 0
    speed: float = 1.0
    catalog_path: str | Path | None = None
    seed: int = 0
    audio_features: Literal["allowed", "forbidden"] = "allowed"
    token_ttl: float = 3600.0
    spotify_client_id: str = DEFAULT_SPOTIFY_CLIENT_ID
    spotify_client_secret: str = DEFAULT_SPOTIFY_CLIENT_SECRET
    discogs_token: str = DEFAULT_DISCOGS_TOKEN
    discogs_consumer_key: str = DEFAULT_DISCOGS_CONSUMER_KEY
    discogs_consumer_secret: str = DEFAULT_DISCOGS_CONSUMER_SECRET
    lastfm_api_key: str = DEFAULT_LASTFM_API_KEY
    beatport_client_id: str = DEFAULT_BEATPORT_API_KEY
    beatport_client_secret: str = DEFAULT_BEATPORT_API_SECRET
    beatport_token_ttl: float = 36000.0
    spotify_batch: Literal["allowed", "forbidden"] = "allowed"
    spotify_rate_limit_body: Literal["rate", "quota"] = "rate"
    musicbrainz_generic_ua: Literal["throttled", "blocked", "allowed"] = "throttled"
    lastfm_unknown_track: Literal["stub", "error6"] = "stub"
    lastfm_rate_limit_status: int = 429
    provider_ports: bool = False
    decoys: float = DEFAULT_DECOYS
    messy_site: float = DEFAULT_MESSY_SITE

    def __post_init__(self) -> None:
        problems = []
        if not self.speed > 0:
            problems.append(f"speed must be > 0, got {self.speed!r}")
        if not 0 <= self.port <= 65535:
            problems.append(f"port must be in 0..65535, got {self.port!r}")
        if self.audio_features not in ("allowed", "forbidden"):
            problems.append(
                f"audio_features must be 'allowed' or 'forbidden', got {self.audio_features!r}"
            )
        for name, allowed in MODES.items():
            value = getattr(self, name)
            if value not in allowed:
                choices = " or ".join(repr(a) for a in allowed)
                problems.append(f"{name} must be {choices}, got {value!r}")
        for name in ("decoys", "messy_site"):
            share = getattr(self, name)
            if not (isinstance(share, (int, float)) and 0.0 <= share <= 1.0):
                problems.append(f"{name} must be a share in 0..1, got {share!r}")
        if not self.beatport_token_ttl > 0:
            problems.append(
                f"beatport_token_ttl must be > 0 seconds, got {self.beatport_token_ttl!r}"
            )
        if not self.token_ttl > 0:
            problems.append(f"token_ttl must be > 0 seconds, got {self.token_ttl!r}")
        if problems:
            raise ValueError("invalid SandboxConfig: " + "; ".join(problems))
