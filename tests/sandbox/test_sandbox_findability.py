"""What a crawl of the sandbox site can find: each scraped row looked up at each provider.

Drives the provider handlers directly (no sockets), with the strings the website shows, the
way an enrichment client would query: ≥95 % of catalog tracks must be found everywhere.
"""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from scrapy_apigw.sandbox.catalog import Catalog
from scrapy_apigw.sandbox.config import SandboxConfig
from scrapy_apigw.sandbox.discogs import Discogs
from scrapy_apigw.sandbox.http import SandboxRequest
from scrapy_apigw.sandbox.lastfm import Lastfm
from scrapy_apigw.sandbox.musicbrainz import MusicBrainz
from scrapy_apigw.sandbox.site import build_tracklists, display_artist
from scrapy_apigw.sandbox.spotify import Spotify

CONFIG = SandboxConfig()
#: A User-Agent that names a contact, as MusicBrainz and Discogs require.
UA = "findability-tests/1.0 ( tests@example.invalid )"


def request(path: str, query: str = "", *, now: float = 0.0, **headers: str) -> SandboxRequest:
    return SandboxRequest(
        method="GET",
        path=path,
        full_path=path,
        query=parse_qs(query, keep_blank_values=True),
        headers={k.replace("_", "-").lower(): v for k, v in headers.items()},
        now=now,
    )


def mb_phrase(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def test_every_track_is_on_the_site_once_or_more(catalog: Catalog) -> None:
    lists = build_tracklists(catalog)
    seen = {row.track.index for t in lists for row in t.rows if row.track is not None}
    assert seen == {t.index for t in catalog}
    assert all(19 <= len(t.rows) <= 23 for t in lists[:-1])
    assert build_tracklists(catalog) == lists  # deterministic


def test_site_rows_are_found_at_every_provider(catalog: Catalog) -> None:
    spotify = Spotify(catalog, CONFIG)
    musicbrainz = MusicBrainz(catalog)
    discogs = Discogs(catalog, CONFIG)
    lastfm = Lastfm(catalog, CONFIG)
    everywhere = 0
    for n, track in enumerate(catalog):
        shown = display_artist(track)
        main = track.artists[0]
        title = track.title.replace('"', "")
        on_spotify = track in spotify.search(f'track:"{title}" artist:"{shown}"')
        query = f'recording:"{mb_phrase(track.title)}" AND artist:"{mb_phrase(main)}"'
        reply = musicbrainz.serve(
            request("/ws/2/recording", f"fmt=json&query={_q(query)}", now=n, user_agent=UA)
        )
        hits = reply.json()["recordings"]
        on_mb = bool(hits) and hits[0]["title"] == track.title and hits[0]["score"] == 100
        on_discogs = bool(
            discogs._matches(
                track, track.discogs, request("/", f"artist={_q(main)}&track={_q(track.title)}")
            )
            if track.discogs
            else False
        )
        on_lastfm = lastfm.find(shown, track.title, None) is track
        assert on_spotify, track.title
        assert on_mb, track.title
        assert on_lastfm, (shown, track.title)
        everywhere += on_spotify and on_mb and on_discogs and on_lastfm
    assert everywhere / len(catalog) >= 0.95


def test_missing_discogs_tracks_give_empty_results(catalog: Catalog) -> None:
    discogs = Discogs(catalog, CONFIG)
    missing = [t for t in catalog if t.discogs is None]
    assert missing
    for track in missing[:3]:
        reply = discogs.serve(
            request(
                "/database/search",
                f"type=release&artist={_q(track.artists[0])}&track={_q(track.title)}"
                f"&token={CONFIG.discogs_token}",
                user_agent=UA,
            )
        )
        body = reply.json()
        assert reply.status == 200 and body["results"] == [] and body["pagination"]["items"] == 0


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
