"""Command line: ``python -m scrapy_apigw.sandbox [options]`` (also ``apigw-sandbox``).

Prints exactly one line, ``SANDBOX_URL=http://<host>:<port>``, on stdout once listening, then
serves until SIGTERM or SIGINT. Errors go to stderr with exit status 1 (2 for bad options).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from scrapy_apigw.sandbox.catalog import CatalogError
from scrapy_apigw.sandbox.config import (
    DEFAULT_DECOYS,
    DEFAULT_DISCOGS_CONSUMER_KEY,
    DEFAULT_DISCOGS_CONSUMER_SECRET,
    DEFAULT_DISCOGS_TOKEN,
    DEFAULT_LASTFM_API_KEY,
    DEFAULT_MESSY_SITE,
    DEFAULT_SPOTIFY_CLIENT_ID,
    DEFAULT_SPOTIFY_CLIENT_SECRET,
    SandboxConfig,
)

__all__ = ["build_parser", "config_from_args", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The command-line options (one per :class:`SandboxConfig` field)."""
    parser = argparse.ArgumentParser(
        prog="python -m scrapy_apigw.sandbox",
        description="Local imitation of Spotify, MusicBrainz, Discogs, Last.fm and a DJ site.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 = any free port")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="time compression of rate limits and token TTL"
    )
    parser.add_argument("--catalog", default=None, help="catalog JSON file (default: shipped)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault generators")
    parser.add_argument(
        "--audio-features", choices=("allowed", "forbidden"), default="allowed",
        help="serve Spotify audio features, or answer 403 like a post-2024 app",
    )  # fmt: skip
    parser.add_argument(
        "--spotify-batch", choices=("allowed", "forbidden"), default="allowed",
        help="serve /tracks?ids= and /audio-features?ids=, or 403 like a 2026 dev-mode app",
    )  # fmt: skip
    parser.add_argument(
        "--spotify-rate-limit-body", choices=("rate", "quota"), default="rate",
        help="Spotify 429 body: 'API rate limit exceeded' or reason QUOTA_EXCEEDED",
    )  # fmt: skip
    parser.add_argument(
        "--musicbrainz-generic-ua", choices=("throttled", "blocked", "allowed"),
        default="throttled", help="MusicBrainz answer to a generic User-Agent: 503, 403 or none",
    )  # fmt: skip
    parser.add_argument(
        "--lastfm-unknown-track", choices=("stub", "error6"), default="stub",
        help="Last.fm track.getInfo for an unknown track: HTTP 200 stub track, or error 6",
    )  # fmt: skip
    parser.add_argument(
        "--lastfm-rate-limit-status", type=int, choices=(429, 200), default=429,
        help="HTTP status of Last.fm's error 29 (rate limit)",
    )  # fmt: skip
    parser.add_argument(
        "--decoys", type=float, default=DEFAULT_DECOYS, metavar="SHARE",
        help="share 0..1 of the tracks that get decoys (other versions, covers...); "
        f"default {DEFAULT_DECOYS} (0: the catalog alone)",
    )  # fmt: skip
    parser.add_argument(
        "--messy-site", type=float, default=DEFAULT_MESSY_SITE, metavar="SHARE",
        help="share 0..1 of the site's rows written the DJ-tracklist way; "
        f"default {DEFAULT_MESSY_SITE} (0: every row as catalogued)",
    )  # fmt: skip
    parser.add_argument("--token-ttl", type=float, default=3600.0, help="Spotify token TTL, s")
    parser.add_argument("--spotify-client-id", default=DEFAULT_SPOTIFY_CLIENT_ID)
    parser.add_argument("--spotify-client-secret", default=DEFAULT_SPOTIFY_CLIENT_SECRET)
    parser.add_argument("--discogs-token", default=DEFAULT_DISCOGS_TOKEN)
    parser.add_argument("--discogs-consumer-key", default=DEFAULT_DISCOGS_CONSUMER_KEY)
    parser.add_argument("--discogs-consumer-secret", default=DEFAULT_DISCOGS_CONSUMER_SECRET)
    parser.add_argument("--lastfm-api-key", default=DEFAULT_LASTFM_API_KEY)
    parser.add_argument(
        "--provider-ports", action="store_true",
        help="also serve each provider on its own free port (GET /_sandbox/hosts lists them); "
        'the fault connection="refused" closes that port',
    )  # fmt: skip
    return parser


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    """A :class:`SandboxConfig` from parsed options (raises ``ValueError`` if invalid)."""
    return SandboxConfig(
        host=args.host,
        port=args.port,
        speed=args.speed,
        catalog_path=args.catalog,
        seed=args.seed,
        audio_features=args.audio_features,
        spotify_batch=args.spotify_batch,
        spotify_rate_limit_body=args.spotify_rate_limit_body,
        musicbrainz_generic_ua=args.musicbrainz_generic_ua,
        lastfm_unknown_track=args.lastfm_unknown_track,
        lastfm_rate_limit_status=args.lastfm_rate_limit_status,
        token_ttl=args.token_ttl,
        spotify_client_id=args.spotify_client_id,
        spotify_client_secret=args.spotify_client_secret,
        discogs_token=args.discogs_token,
        discogs_consumer_key=args.discogs_consumer_key,
        discogs_consumer_secret=args.discogs_consumer_secret,
        lastfm_api_key=args.lastfm_api_key,
        provider_ports=args.provider_ports,
        decoys=args.decoys,
        messy_site=args.messy_site,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox until SIGTERM/SIGINT; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        from scrapy_apigw.sandbox.server import Sandbox

        sandbox = Sandbox(config)
    except (ValueError, CatalogError) as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2

    from twisted.internet import defer
    from twisted.internet import reactor as _installed

    reactor: Any = _installed

    status = {"code": 0}

    def started(url: str) -> None:
        print(f"SANDBOX_URL={url}", flush=True)

    def failed(failure: Any) -> None:
        print(f"sandbox: cannot start: {failure.getErrorMessage()}", file=sys.stderr, flush=True)
        status["code"] = 1
        reactor.stop()

    def launch() -> None:
        defer.ensureDeferred(sandbox.start()).addCallbacks(started, failed)

    reactor.callWhenRunning(launch)
    reactor.run()
    return status["code"]


if __name__ == "__main__":
    sys.exit(main())
