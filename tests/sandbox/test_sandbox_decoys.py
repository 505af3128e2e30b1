"""Decoys: each family in each provider's own style, ranked by text relevance, deterministic.

Drives the provider handlers directly (no sockets) over a tiny catalog where every track gets
decoys (``decoys=1.0``): Strobe (deadmau5), Hoppípolla (Sigur Rós), Do It Again (Röyksopp &
Robyn), plus the Cyrillic tracks decoys add (Мумий Тролль, Кино, Земфира).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest

from scrapy_apigw.sandbox.__main__ import build_parser, config_from_args
from scrapy_apigw.sandbox.catalog import Catalog
from scrapy_apigw.sandbox.config import DEFAULT_DECOYS, DEFAULT_MESSY_SITE, SandboxConfig
from scrapy_apigw.sandbox.decoys import VERSION_KINDS, decoy_record, families_for
from scrapy_apigw.sandbox.discogs import Discogs
from scrapy_apigw.sandbox.http import SandboxRequest
from scrapy_apigw.sandbox.lastfm import Lastfm
from scrapy_apigw.sandbox.musicbrainz import MusicBrainz
from scrapy_apigw.sandbox.records import TrackRecord
from scrapy_apigw.sandbox.spotify import Spotify

CONFIG = SandboxConfig()
UA = "decoy-tests/1.0 ( tests@example.invalid )"
ENTRIES = [
    ("Strobe", ("deadmau5",), "progressive house"),
    ("Hoppípolla", ("Sigur Rós",), "ambient"),
    ("Do It Again", ("Röyksopp", "Robyn"), "electronica"),
]


class Clock:
    """Request times 10 s apart, so no rate limit ever applies."""

    def __init__(self) -> None:
        self.now = 0.0

    def tick(self) -> float:
        self.now += 10.0
        return self.now


def request(path: str, params: dict[str, str], now: float, **headers: str) -> SandboxRequest:
    return SandboxRequest(
        method="GET",
        path=path,
        full_path=path,
        query=parse_qs(urlencode(params), keep_blank_values=True),
        headers={"user-agent": UA, **{k.lower(): v for k, v in headers.items()}},
        now=now,
    )


@pytest.fixture(scope="module")
def tiny() -> Catalog:
    return Catalog(ENTRIES, decoys=1.0)


def decoy(catalog: Catalog, title: str, family: str, kind: str | None = None) -> TrackRecord:
    """The decoy of *family* (and *kind*) of the catalog track titled *title*."""
    original = next(t for t in catalog.originals if t.title == title)
    return next(
        t
        for t in catalog.decoys
        if t.decoy is not None
        and t.decoy.of_index == original.index
        and t.decoy.family == family
        and (kind is None or t.decoy.kind == kind)
    )


def original(catalog: Catalog, title: str) -> TrackRecord:
    return next(t for t in catalog.originals if t.title == title)


def mb_search(catalog: Catalog, query: str) -> list[dict[str, Any]]:
    mb = MusicBrainz(catalog)
    reply = mb.serve(request("/ws/2/recording", {"query": query, "fmt": "json"}, 10.0))
    assert reply.status == 200
    recordings: list[dict[str, Any]] = reply.json()["recordings"]
    return recordings


def discogs_get(catalog: Catalog, path: str, **params: str) -> Any:
    discogs = Discogs(catalog, CONFIG)
    auth = f"Discogs token={CONFIG.discogs_token}"
    reply = discogs.serve(request(path, params, 10.0, Authorization=auth))
    assert reply.status == 200
    return reply.json()


# -- the generator ---------------------------------------------------------------------------


def test_tiny_catalog_families_and_ids(tiny: Catalog) -> None:
    assert len(tiny) == 6 and len(tiny.decoys) == 53  # 3 entries + 3 Cyrillic tracks
    strobe = original(tiny, "Strobe")
    assert families_for(strobe) == [
        ("version", "acoustic"), ("version", "extended"), ("karaoke", "karaoke"),
        ("tribute", "tribute"), ("same_title", "same_title"), ("featuring", "featuring"),
        ("compilation", "compilation"), ("isrc_shared", "isrc_shared"),
    ]  # fmt: skip
    # Only tracks with accented or non-Latin credits get a transliteration decoy.
    with_translit = {
        tiny.tracks[t.decoy.of_index].title
        for t in tiny.decoys
        if t.decoy is not None and t.decoy.family == "transliteration"
    }
    assert with_translit == {"Hoppípolla", "Do It Again", "Владивосток 2000", "Группа крови",
                             "Искала"}  # fmt: skip
    # Own ids everywhere; the ISRC shared only by compilation (Spotify) and isrc_shared (MB).
    assert len({t.spotify.id for t in tiny.tracks}) == len(tiny.tracks)
    assert len({t.musicbrainz.recording_id for t in tiny.tracks}) == len(tiny.tracks)
    sharing = {(t.decoy.family if t.decoy else "-") for t in tiny.tracks if t.isrc == strobe.isrc}
    assert sharing == {"-", "compilation", "isrc_shared"}
    assert decoy(tiny, "Strobe", "compilation").spotify.id == "1QZEs5C9lcayIq4sSPtc93"
    assert decoy(tiny, "Strobe", "isrc_shared").musicbrainz.recording_id.startswith("f723c187")


def test_same_share_same_decoys_and_smaller_share_is_a_subset() -> None:
    first, second = Catalog(ENTRIES, decoys=1.0), Catalog(ENTRIES, decoys=1.0)
    assert first.decoy_summary() == second.decoy_summary()
    full = Catalog.load(decoys=1.0)
    part = Catalog.load(decoys=0.3)
    assert len(part) == 376 and len(part.decoys) == 901
    assert len({t.decoy.of_index for t in part.decoys if t.decoy}) == 111
    assert {t.spotify.id for t in part.decoys} < {t.spotify.id for t in full.decoys}
    assert len(Catalog.load().tracks) == 373  # a bare Catalog has none: the catalog alone


def test_decoys_and_messy_site_are_on_by_default() -> None:
    """A sandbox is like the real catalogs unless told otherwise (issue 9): 0.3 of each."""
    assert (DEFAULT_DECOYS, DEFAULT_MESSY_SITE) == (0.3, 0.3)
    config = SandboxConfig()
    assert (config.decoys, config.messy_site) == (0.3, 0.3)
    args = build_parser().parse_args([])
    assert config_from_args(args) == config
    off = config_from_args(build_parser().parse_args(["--decoys", "0", "--messy-site", "0"]))
    assert (off.decoys, off.messy_site) == (0.0, 0.0)
    assert "default 0.3" in build_parser().format_help()


def test_decoy_share_is_validated() -> None:
    with pytest.raises(ValueError, match="decoys must be a share"):
        SandboxConfig(decoys=1.5)
    with pytest.raises(ValueError, match="messy_site must be a share"):
        SandboxConfig(messy_site=-0.1)


# -- one test per family: the provider's own style --------------------------------------------

_VERSION_STYLE = {  # kind: Spotify suffix, Discogs parenthesis, MB disambiguation, types
    "extended": ("Extended Mix", "Extended Mix", "extended mix", ()),
    "radio_edit": ("Radio Edit", "Radio Edit", "radio edit", ()),
    "club": ("Club Mix", "Club Mix", "club mix", ()),
    "acoustic": ("Acoustic", "Acoustic", "acoustic", ()),
    "vip": ("VIP", "VIP Mix", "VIP mix", ()),
    "instrumental": ("Instrumental", "Instrumental", "instrumental", ()),
    "sped_up": ("Sped Up", "Sped Up", "sped up", ()),
}
_LENGTH_SHARE = {  # kind: (low, high) share of the original length
    "remix": (0.90, 1.30), "extended": (1.30, 1.60), "radio_edit": (0.55, 0.75),
    "club": (1.15, 1.40), "live": (1.05, 1.30), "remaster": (0.99, 1.01),
    "acoustic": (0.80, 1.00), "vip": (0.90, 1.20), "instrumental": (0.99, 1.01),
    "sped_up": (0.77, 0.83),
}  # fmt: skip


@pytest.mark.parametrize("kind", VERSION_KINDS)
def test_version_family_in_each_providers_style(tiny: Catalog, kind: str) -> None:
    strobe = original(tiny, "Strobe")  # 6:08, long enough for a real radio edit
    rec = decoy_record(strobe, "version", kind, 999)
    assert rec.decoy is not None and rec.decoy.providers == {
        "spotify", "musicbrainz", "discogs", "lastfm"
    }  # fmt: skip
    assert rec.mb_title == "Strobe"  # MusicBrainz keeps the title clean
    assert rec.discogs is not None
    discogs_title = rec.discogs.tracklist[0][1]
    if kind == "remix":
        remixer = rec.artists[-1]
        assert rec.artists == ("deadmau5", remixer) and remixer != "deadmau5"
        assert rec.title == f"Strobe - {remixer} Remix"
        assert discogs_title == f"Strobe ({remixer} Remix)"
        assert rec.musicbrainz.disambiguation == f"{remixer} remix"
        assert rec.musicbrainz.secondary_types == ("Remix",)
    elif kind == "live":
        assert rec.title == "Strobe - Live" and discogs_title == "Strobe (Live)"
        assert rec.musicbrainz.disambiguation.startswith("live, ")
        assert rec.musicbrainz.secondary_types == ("Live",)
        assert rec.spotify.album_name.startswith("Live at ")
    elif kind == "remaster":
        year = rec.year
        assert year > strobe.year
        assert rec.title == f"Strobe - Remastered {year}"
        assert discogs_title == f"Strobe (Remastered {year})"
        assert rec.musicbrainz.disambiguation == f"{year} remaster"
    else:
        spotify, discogs, disambiguation, types = _VERSION_STYLE[kind]
        assert rec.title == f"Strobe - {spotify}"
        assert discogs_title == f"Strobe ({discogs})"
        assert rec.musicbrainz.disambiguation == disambiguation
        assert rec.musicbrainz.secondary_types == types
    low, high = _LENGTH_SHARE[kind]
    share = rec.musicbrainz.length / strobe.musicbrainz.length
    assert low <= share <= high
    assert rec.isrc != strobe.isrc and rec.spotify.id != strobe.spotify.id


def test_version_served_by_spotify_and_musicbrainz(tiny: Catalog) -> None:
    spotify = Spotify(tiny, CONFIG)
    found = spotify.search('track:"Strobe" artist:"deadmau5"')
    # Exact titles first (then popularity), whatever is true: compilation and tribute in them.
    assert [(t.title, t.decoy.family if t.decoy else None) for t in found] == [
        ("Strobe", None), ("Strobe", "compilation"), ("Strobe", "tribute"),
        ("Strobe - Extended Mix", "version"), ("Strobe (feat. Yumi Sato)", "featuring"),
        ("Strobe - Acoustic", "version"),
    ]  # fmt: skip
    recordings = mb_search(tiny, 'recording:"Strobe" AND artist:"deadmau5"')
    extended = decoy(tiny, "Strobe", "version", "extended")
    entry = next(r for r in recordings if r["id"] == extended.musicbrainz.recording_id)
    assert entry["title"] == "Strobe" and entry["disambiguation"] == "extended mix"
    assert entry["length"] == 534219 and entry["score"] == 100


def test_live_has_secondary_type_live_on_musicbrainz(tiny: Catalog) -> None:
    live = decoy(tiny, "Группа крови", "version", "live")
    recordings = mb_search(tiny, 'recording:"Группа крови"')
    entry = next(r for r in recordings if r["id"] == live.musicbrainz.recording_id)
    assert entry["title"] == "Группа крови"
    assert entry["disambiguation"] == "live, 1995-10-07: Coachella"
    group = entry["releases"][0]["release-group"]
    assert group["primary-type"] == "Album" and group["secondary-types"] == ["Live"]
    true_id = original(tiny, "Группа крови").musicbrainz.recording_id
    plain = next(r for r in recordings if r["id"] == true_id)
    assert "secondary-types" not in plain["releases"][0]["release-group"]
    assert "disambiguation" not in plain  # only when present, as in real search answers


def test_karaoke_family(tiny: Catalog) -> None:
    karaoke = decoy(tiny, "Strobe", "karaoke")
    spotify = Spotify(tiny, CONFIG)
    # An artist filter keeps it out; free words find it through its title.
    assert karaoke not in spotify.search('track:"Strobe" artist:"deadmau5"')
    assert karaoke in spotify.search("Strobe deadmau5")
    assert karaoke.title == "Strobe (Originally Performed by deadmau5) [Karaoke Version]"
    assert karaoke.artists == ("Karaoke Hits Band",)
    assert karaoke.spotify.album_type == "compilation"
    recordings = mb_search(tiny, 'recording:"Strobe" AND artist:"Karaoke Hits Band"')
    assert [r["id"] for r in recordings] == [karaoke.musicbrainz.recording_id]
    assert recordings[0]["disambiguation"] == "karaoke version"
    assert recordings[0]["releases"][0]["release-group"]["secondary-types"] == ["Compilation"]
    assert karaoke.discogs is None  # not a Discogs release


def test_tribute_family(tiny: Catalog) -> None:
    tribute = decoy(tiny, "Strobe", "tribute")
    assert (tribute.title, tribute.artists) == ("Strobe", ("deadmau5 Tribute Band",))
    assert tribute.spotify.album_name == "A Tribute to deadmau5"
    results = discogs_get(tiny, "/database/search", type="release", artist="deadmau5",
                          track="Strobe")["results"]  # fmt: skip
    assert "deadmau5 Tribute Band - A Tribute to deadmau5" in [r["title"] for r in results]


def test_same_title_by_another_artist(tiny: Catalog) -> None:
    other = decoy(tiny, "Strobe", "same_title")
    assert (other.title, other.artists) == ("Strobe", ("Oskar Hale",))
    spotify = Spotify(tiny, CONFIG)
    assert other in spotify.search('track:"Strobe"')
    assert other not in spotify.search('track:"Strobe" artist:"deadmau5"')
    lastfm = Lastfm(tiny, CONFIG)
    assert lastfm.find("Oskar Hale", "Strobe", None) == other
    assert lastfm.find("deadmau5", "Strobe", None) == original(tiny, "Strobe")


def test_featuring_family(tiny: Catalog) -> None:
    guest = decoy(tiny, "Strobe", "featuring")  # one artist: a version with a guest
    assert (guest.title, guest.artists) == ("Strobe (feat. Yumi Sato)", ("deadmau5", "Yumi Sato"))
    assert guest.mb_title == "Strobe"
    solo = decoy(tiny, "Do It Again", "featuring")  # two artists: the featured one alone
    assert (solo.title, solo.artists) == ("Do It Again", ("Robyn",))
    found = Spotify(tiny, CONFIG).search('track:"Do It Again" artist:"Robyn"')
    assert [t.decoy.family if t.decoy else None for t in found] == [
        "compilation",
        None,
        "featuring",
        "transliteration",
        "version",
        "version",
    ]  # exact titles by popularity (68, 64, 63, 24), then the versions
    assert found[2] == solo


def test_transliteration_ranks_above_the_true_track(tiny: Catalog) -> None:
    translit = decoy(tiny, "Hoppípolla", "transliteration")
    true = original(tiny, "Hoppípolla")
    assert (translit.title, translit.artists) == ("Hoppipolla", ("Sigur Ros",))
    found = Spotify(tiny, CONFIG).search('track:"Hoppípolla" artist:"Sigur Rós"')
    # Text relevance folds accents: both are exact, and the more popular decoy comes first.
    assert found[0] == translit and found.index(true) == 1
    assert translit.spotify.artist_ids != true.spotify.artist_ids  # a sound-alike, not the band
    cyrillic = decoy(tiny, "Владивосток 2000", "transliteration")
    assert (cyrillic.title, cyrillic.artists) == ("Vladivostok 2000", ("Mumiy Troll",))


def test_compilation_family(tiny: Catalog) -> None:
    comp = decoy(tiny, "Strobe", "compilation")
    true = original(tiny, "Strobe")
    found = Spotify(tiny, CONFIG).search(f"isrc:{true.isrc}")
    assert found == [true, comp]  # same ISRC, its own id, ranked by popularity
    assert comp.spotify.album_type == "compilation"
    assert not comp.present_at("musicbrainz")  # the same recording there
    results = discogs_get(tiny, "/database/search", type="release", artist="deadmau5",
                          track="Strobe")["results"]  # fmt: skip
    assert comp.discogs is not None
    assert comp.discogs.release_id in [r["id"] for r in results]
    # A later release of the same recording: the same audio, never dated before the original.
    assert comp.spotify.features == true.spotify.features
    assert comp.spotify.release_date[:4] > true.spotify.release_date[:4]
    # Discogs: a compilation by "Various" (artist 194), as real ones are (go-discogs
    # releases_71989: "Compilation" among the descriptions, every track crediting its artists).
    listed = next(r for r in results if r["id"] == comp.discogs.release_id)
    assert listed["title"] == f"Various - {comp.discogs.title}"
    assert "Compilation" in listed["format"]
    release = discogs_get(tiny, f"/releases/{comp.discogs.release_id}")
    assert [(a["name"], a["id"]) for a in release["artists"]] == [("Various", 194)]
    assert release["artists_sort"] == "Various"
    assert "Compilation" in release["formats"][0]["descriptions"]
    assert release["year"] == int(comp.spotify.release_date[:4])
    tracks = [(t["position"], t["title"], [a["name"] for a in t["artists"]]) for t in
              release["tracklist"]]  # fmt: skip
    assert tracks[1] == ("2-07", "Strobe", ["deadmau5"])
    assert [p for p, _, _ in tracks] == ["2-06", "2-07", "2-08"]
    assert all(names and "deadmau5" not in names for _, _, names in (tracks[0], tracks[2]))


def test_several_recordings_per_isrc(tiny: Catalog) -> None:
    shared = decoy(tiny, "Strobe", "isrc_shared")
    true = original(tiny, "Strobe")
    mb = MusicBrainz(tiny)
    reply = mb.serve(request(f"/ws/2/isrc/{true.isrc}", {"fmt": "json"}, 10.0))
    listed = {r["id"]: r for r in reply.json()["recordings"]}
    assert set(listed) == {true.musicbrainz.recording_id, shared.musicbrainz.recording_id}
    assert listed[shared.musicbrainz.recording_id]["disambiguation"] == "radio edit"
    assert listed[shared.musicbrainz.recording_id]["length"] == 291057
    assert not shared.present_at("spotify") and shared.discogs is None


def test_musicbrainz_ranks_a_decoy_above_the_true_recording(tiny: Catalog) -> None:
    recordings = mb_search(tiny, 'recording:"Strobe" AND artist:"deadmau5"')
    ids = [r["id"] for r in recordings]
    true = original(tiny, "Strobe").musicbrainz.recording_id
    shared = decoy(tiny, "Strobe", "isrc_shared").musicbrainz.recording_id
    assert ids[0] == shared and ids[1] == true  # both score 100; the decoy is more popular
    assert [r["score"] for r in recordings[:5]] == [100] * 5


def test_discogs_ranks_by_exact_track_title_then_owners(tiny: Catalog) -> None:
    results = discogs_get(tiny, "/database/search", type="release", artist="deadmau5",
                          track="Strobe")["results"]  # fmt: skip
    families = {
        t.discogs.release_id: (t.decoy.kind if t.decoy else "true")
        for t in tiny.tracks
        if t.discogs is not None
    }
    # Releases listing exactly "Strobe" first (most owned first: the tribute album), then the
    # versions: the true single is second, whatever the truth.
    assert [families[r["id"]] for r in results] == [
        "tribute", "true", "compilation", "extended", "acoustic", "featuring"
    ]  # fmt: skip
    assert [r["community"]["have"] for r in results[:3]] == [8566, 2486, 1686]
