"""Candidate selection on the real recorded responses in ``../shared/fixtures`` (read-only).

The Spotify search fixture (``q=gatan``, 20 items) lists the same title by four artists and a
radio edit next to the original: a text search must pick the exact track or none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scrapy_apigw.core.confidence import Wanted, confidence
from scrapy_apigw.providers import lastfm, musicbrainz
from scrapy_apigw.providers.base import ApiAnswer, TrackContext
from scrapy_apigw.providers.discogs import track_confidence
from scrapy_apigw.providers.musicbrainz import MusicBrainzClient
from scrapy_apigw.providers.spotify import SpotifyClient

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
FIXTURES = SHARED / "fixtures"


def fixture(name: str) -> Any:
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"{path} absent: the recorded responses (../shared) are not checked out")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("artist", "title", "expected"),
    [
        ("Timo Räisänen", "Lyckliga gatan", "3od3TT0urEB8HMaFZhaEYW"),
        ("Timo Raisanen", "Lyckliga Gatan (Radio Edit)", "4fWtlkaM9bnRzbJkpBQ4fg"),
        ("TIMO RÄISÄNEN", "Lyckliga gatan (Original Mix)", "3od3TT0urEB8HMaFZhaEYW"),
        ("Anna-Lena Lofgren", "Lyckliga gatan", "6VKhjanHmI88gbeAJfGBns"),
        ("Nisse Hellberg", "Lyckliga gatan", "3pEr1rOrfLha8gkEwpBbTS"),
        ("Veronica Maggio", "Satan i gatan", "3q8WojYJVZsGClFGFBYdTc"),
        ("Stress, Abidaz & Hooks", "Gatan", "5GqZe05VEXpzmDrNTc8DDj"),
        ("Hooks vs Stress", "Gatan", "5GqZe05VEXpzmDrNTc8DDj"),
        ("Governor Andy feat. Loreen", "Lyckliga Gatan", "3qOCMkCrsQBczAvvuYoJG3"),
        # the same title by an artist who never recorded it here: none, not a guess
        ("Veronica Maggio", "Lyckliga gatan", None),
        ("Timo Räisänen", "Lyckliga gatan (Club Edit)", None),
        ("Maskinen", "Gatan", None),
    ],
)
def test_spotify_search_fixture_picks_the_exact_track_or_none(
    artist: str, title: str, expected: str | None
) -> None:
    answer = ApiAnswer("ok", 200, fixture("spotify/spotify-web-api-js_search_track.json"))
    track = TrackContext(artist=artist, title=title, artists=(artist,))
    found = SpotifyClient.pick(answer, track, by_isrc=False)
    assert (found[0]["id"] if found else None) == expected


def test_musicbrainz_isrc_fixture_picks_its_recording() -> None:
    body = fixture("musicbrainz/TRANSCRIBED_mbserver_isrc_GBAAA9900303.json")
    track = TrackContext(
        artist="The Chemical Brothers", title="Hey Boy Hey Girl", duration_ms=290000
    )
    picked = MusicBrainzClient._pick_isrc(body["recordings"], track)
    assert picked is not None and picked["id"] == "bf7845cc-eac3-48a3-8b06-543b4b7ba117"


def test_musicbrainz_recording_fixture_reads_length_isrcs_and_credit() -> None:
    recording = fixture("musicbrainz/picard_recording.json")
    candidate = musicbrainz.candidate(recording)
    assert (candidate.title, list(candidate.artists), candidate.duration_ms) == (
        "Thinking Out Loud",
        ["Ed Sheeran"],
        281000,
    )
    wanted = Wanted("Thinking Out Loud", ["Ed Sheeran"], 280500, "GBAHS1400099")
    assert confidence(wanted, candidate) == 1.0
    assert confidence(Wanted("Thinking Out Loud - Live", ["Ed Sheeran"]), candidate) == 0.4


def test_discogs_release_fixture_lists_its_tracks_only() -> None:
    release = fixture("discogs/go-discogs_releases_10507194.json")
    assert track_confidence(release, Wanted("Hillraiser", ["HOLOVR"])) == 1.0
    assert track_confidence(release, Wanted("Hillraiser (VIP Mix)", ["HOLOVR"])) is None
    assert track_confidence(release, Wanted("Likemind 05", ["HOLOVR"])) is None


def test_lastfm_getinfo_fixture_is_checked_against_the_names_asked() -> None:
    info = fixture("lastfm/LastFM.swift_track.getInfo_withTrackArtist_noUsername_noMBID.json")
    candidate = lastfm.candidate(info["track"])
    assert (candidate.title, list(candidate.artists), candidate.duration_ms) == (
        "Some Track",
        ["Some Artist"],
        302000,
    )
    assert confidence(Wanted("Some Track", ["some artist"]), candidate) == 1.0
    assert confidence(Wanted("Some Track", ["Other Band"]), candidate) < 0.8
