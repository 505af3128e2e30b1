"""Decoys: the other records a real catalog holds next to each track (issue 9, section 1).

A real search for "Strobe" by deadmau5 finds the radio edit, the extended mix, a live take, a
remaster, karaoke and tribute covers, compilation appearances and the same title by other
artists; MusicBrainz returns many recordings scoring 100 and several recordings per ISRC
(PROVIDERS.md sections 1 and 2). With ``SandboxConfig.decoys`` = *share* > 0 (0.3 by default),
that share of the catalog tracks (chosen from each track's own digest, so deterministically)
gets one decoy of every family below that applies to it. Decoys are records of their own: their
own ids, ISRCs (except where a real catalog shares one: ``compilation`` on Spotify,
``isrc_shared`` on MusicBrainz), durations, popularity and counts, all drawn from digests of a
decoy key, never from a random generator. They are served by the providers' searches and lookups
like any record, ranked by the providers' own text relevance (then popularity), not by truth;
they never appear on the tracklist website.

Families (``Decoy.family``) and how each provider marks them (PROVIDERS.md: Spotify and Discogs
put the version in the title, MusicBrainz keeps the title clean and uses ``disambiguation``,
release-group ``secondary-types`` and ``length``):

============== ================================ ============================= ==================
family         Spotify ``name``                 MusicBrainz                   Discogs track
============== ================================ ============================= ==================
version        ``Title - Radio Edit``, ``- X    title clean; disambiguation   ``Title (Radio
               Remix``, ``- Live``...           ``radio edit``, ``live, date: Edit)``...
                                                venue``...; Live/Remix types
karaoke        ``Title (Originally Performed    disambiguation ``karaoke      (not listed)
               by A) [Karaoke Version]``        version``; Compilation type
tribute        ``Title`` by ``A Tribute Band``  cover recording               ``Title``
same_title     ``Title`` by another artist      same                          same
featuring      1 artist: ``Title (feat. G)``    title clean, credit A feat. G ``Title (feat. G)``
               by A, G; 2+: ``Title`` by the    / the featured artist alone
               featured artist alone
transliteration ``Title`` by the ASCII or        a sound-alike cover credited  same
               Latin spelling ("Sigur Ros")     to that spelling
compilation    ``Title`` on a compilation, same (same recording: not a new    on a compilation
               ISRC and audio, its own id,      one)                          by "Various" (194),
               1-10 years after the original                                  per-track artists
isrc_shared    (not listed)                     another recording under the   (not listed)
                                                same ISRC: ``radio edit``...
============== ================================ ============================= ==================

Version kinds (two per chosen track, never the track's own version): ``remix`` (by another
artist), ``extended``, ``radio_edit``, ``club``, ``live``, ``remaster``, ``acoustic``, ``vip``,
``instrumental``, ``sped_up``. Durations differ as real versions do: a radio edit is 55-75 % of
a long original (85-95 % of a short one), an extended mix 130-160 %, sped up 77-83 %, a
remaster or instrumental within a few seconds.

With decoys on, the catalog also holds :data:`EXTRA_TRACKS` (Cyrillic names such as
"Мумий Тролль"), so the transliteration family has non-Latin scripts to work on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from scrapy_apigw.sandbox.records import (
    DISCOGS_VARIOUS_ID,
    Decoy,
    Digest,
    DiscogsRecord,
    TrackRecord,
    base62_id,
    derive_record,
    discogs_artist_id,
    release_title_of,
)
from scrapy_apigw.sandbox.text import ascii_spelling, fold

__all__ = [
    "ALL_PROVIDERS",
    "EXTRA_TRACKS",
    "FAMILIES",
    "VERSION_KINDS",
    "chosen",
    "decoy_record",
    "decoys_for",
    "families_for",
    "version_kinds_for",
]

ALL_PROVIDERS = frozenset({"spotify", "musicbrainz", "discogs", "lastfm"})
FAMILIES = (
    "version", "karaoke", "tribute", "same_title", "featuring", "transliteration", "compilation",
    "isrc_shared",
)  # fmt: skip
VERSION_KINDS = (
    "remix", "extended", "radio_edit", "club", "live", "remaster", "acoustic", "vip",
    "instrumental", "sped_up",
)  # fmt: skip
#: Tracks with non-Latin names, added to the catalog when decoys are on.
EXTRA_TRACKS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("Владивосток 2000", ("Мумий Тролль",), "Indie Dance"),
    ("Группа крови", ("Кино",), "Synth-pop"),
    ("Искала", ("Земфира",), "Synth-pop"),
)
_PROVIDERS = {
    "version": ALL_PROVIDERS,
    "karaoke": frozenset({"spotify", "musicbrainz", "lastfm"}),
    "tribute": ALL_PROVIDERS,
    "same_title": ALL_PROVIDERS,
    "featuring": ALL_PROVIDERS,
    "transliteration": ALL_PROVIDERS,
    "compilation": frozenset({"spotify", "discogs"}),
    "isrc_shared": frozenset({"musicbrainz"}),
}
#: (Spotify suffix after " - ", Discogs parenthesis, MusicBrainz disambiguation); ``{x}`` is
#: the remixer, ``{year}`` the remaster year, ``{live}`` the live date and venue.
_STYLES = {
    "remix": ("{x} Remix", "{x} Remix", "{x} remix"),
    "extended": ("Extended Mix", "Extended Mix", "extended mix"),
    "radio_edit": ("Radio Edit", "Radio Edit", "radio edit"),
    "club": ("Club Mix", "Club Mix", "club mix"),
    "live": ("Live", "Live", "live, {live}"),
    "remaster": ("Remastered {year}", "Remastered {year}", "{year} remaster"),
    "acoustic": ("Acoustic", "Acoustic", "acoustic"),
    "vip": ("VIP", "VIP Mix", "VIP mix"),
    "instrumental": ("Instrumental", "Instrumental", "instrumental"),
    "sped_up": ("Sped Up", "Sped Up", "sped up"),
}
#: Per version kind: (low, high) percent of the original length (a short original's radio edit
#: uses ``_SHORT_EDIT``), or None: within a few seconds of the original.
_LENGTH_PERCENT: dict[str, tuple[int, int] | None] = {
    "remix": (90, 130), "extended": (130, 160), "radio_edit": (55, 75), "club": (115, 140),
    "live": (105, 130), "remaster": None, "acoustic": (80, 100), "vip": (90, 120),
    "instrumental": None, "sped_up": (77, 83),
}  # fmt: skip
_SHORT_EDIT = (85, 95)
_SECONDARY = {"remix": ("Remix",), "live": ("Live",)}
_KIND_WORDS = {
    "remix": ("remix",), "extended": ("extended",), "radio_edit": ("radio", "edit"),
    "club": ("club",), "live": ("live",), "remaster": ("remaster", "remastered"),
    "acoustic": ("acoustic",), "vip": ("vip",), "instrumental": ("instrumental",),
    "sped_up": ("sped",),
}  # fmt: skip
REMIXERS = (
    "Kasper Lind", "Mara Solene", "Dusk Theory", "Ilan Okoro", "Pale Harbour", "Reva Quinn",
    "Tomo Arden", "Velvet Static",
)  # fmt: skip
OTHER_ARTISTS = (
    "Nora Vale", "The Midnight Arcade", "Jules Marrow", "Citrine Club", "Oskar Hale",
    "Lumen Drift", "Sasha Creed", "Northbound Choir",
)  # fmt: skip
GUESTS = ("Ella Rowe", "MC Tarik", "Ines Calder", "Yumi Sato")
KARAOKE_ARTISTS = ("Karaoke Hits Band", "The Karaoke Channel", "Sing Karaoke Stars")
VENUES = ("Brixton Academy", "Red Rocks", "Alexandra Palace", "Printworks", "Coachella")
COMPILATIONS = ("Ministry of Sandbox: Anthems", "Club Classics Collection", "Now Dance Sandbox")
#: Titles of the other artists' tracks next to the track on a Discogs compilation.
FILLER_TITLES = ("Night Drive", "Second Sun", "Glasshouse", "Afterglow", "Low Tide", "Parallels")
#: A compilation appearance comes 1-10 years after the original, not after this year.
COMPILATION_LAST_YEAR = 2026


def chosen(track: TrackRecord, share: float) -> bool:
    """True when *track* gets decoys at *share* (0..1), from its own digest."""
    return Digest(track.key).unit("decoy-chosen") < share


def _has_words(title: str, words: Sequence[str]) -> bool:
    folded = set(fold(title).replace("(", " ").replace(")", " ").replace("-", " ").split())
    return any(w in folded for w in words)


def version_kinds_for(track: TrackRecord) -> tuple[str, str]:
    """The two version kinds *track* gets (never one its own title already names)."""
    d = Digest(track.key)
    kinds = [k for k in VERSION_KINDS if not _has_words(track.title, _KIND_WORDS[k])]
    kinds.sort(key=lambda k: d.number(f"decoy-kind/{k}"))
    return kinds[0], kinds[1]


def families_for(track: TrackRecord) -> list[tuple[str, str]]:
    """Every ``(family, kind)`` of decoy *track* gets when chosen, in a fixed order."""
    out = [("version", k) for k in version_kinds_for(track)]
    out += [(f, f) for f in ("karaoke", "tribute", "same_title", "featuring")]
    if any(ascii_spelling(a) != a for a in track.artists):
        out.append(("transliteration", "transliteration"))
    out += [("compilation", "compilation"), ("isrc_shared", "isrc_shared")]
    return out


def decoys_for(tracks: Iterable[TrackRecord], share: float, start: int) -> list[TrackRecord]:
    """The decoys of every chosen track of *tracks*, indexed from *start* on."""
    out: list[TrackRecord] = []
    for track in tracks:
        if not chosen(track, share):
            continue
        for family, kind in families_for(track):
            out.append(decoy_record(track, family, kind, start + len(out)))
    return out


def _percent(d: Digest, length: int, bounds: tuple[int, int] | None, slack_ms: int) -> int:
    if bounds is None:
        return length + d.between("decoy-len-delta", -slack_ms, slack_ms)
    return length * d.between("decoy-len-pct", *bounds) // 100


def decoy_record(track: TrackRecord, family: str, kind: str, index: int) -> TrackRecord:
    """One decoy of *track* (see the module docstring for what each family looks like).

    Args:
        track: the catalog track imitated.
        family: one of :data:`FAMILIES`.
        kind: the version kind for ``"version"`` (one of :data:`VERSION_KINDS`), else
            *family*.
        index: catalog index of the decoy.

    Raises:
        ValueError: unknown family or kind.
    """
    if family not in FAMILIES or (family == "version") != (kind in VERSION_KINDS):
        raise ValueError(f"unknown decoy family/kind {family!r}/{kind!r}")
    if family != "version" and kind != family:
        raise ValueError(f"kind of family {family!r} must be {family!r}, got {kind!r}")
    key = f"decoy/{family}/{kind}\x1e{track.key}"
    d = Digest(key)
    base = release_title_of(track.title)
    main = track.artists[0]
    length = track.musicbrainz.length
    artists: tuple[str, ...] = track.artists
    mb_title, title, discogs_title = base, base, base
    disambiguation, release, album = "", base, base
    secondary: tuple[str, ...] = ()
    album_type, year = "single", track.year
    isrc: str | None = None
    popularity = d.between("decoy-popularity", 15, 88)
    if family == "version":
        spotify_style, discogs_style, mb_style = _STYLES[kind]
        x = d.choice("remixer", REMIXERS)
        year = min(2025, track.year + d.between("remaster-delta", 5, 20)) if kind == "remaster" \
            else track.year  # fmt: skip
        venue = d.choice("venue", VENUES)
        live_year = min(2025, track.year + d.between("live-delta", 0, 8))
        month, day = d.between("live-month", 1, 12), d.between("live-day", 1, 28)
        live = f"{live_year}-{month:02d}-{day:02d}"
        values = {"x": x, "year": year, "live": f"{live}: {venue}"}
        title = f"{base} - {spotify_style.format(**values)}"
        discogs_title = f"{base} ({discogs_style.format(**values)})"
        disambiguation = mb_style.format(**values)
        secondary = _SECONDARY.get(kind, ())
        if kind == "remix":
            artists = (*track.artists, x)
        bounds = _LENGTH_PERCENT[kind]
        if kind == "radio_edit" and length < 240_000:
            bounds = _SHORT_EDIT
        length = _percent(d, length, bounds, 3000)
        if kind == "live":
            release = album = f"Live at {venue}"
            album_type, year = "album", live_year
    elif family == "karaoke":
        artists = (d.choice("karaoke-artist", KARAOKE_ARTISTS),)
        title = f"{base} (Originally Performed by {track.credit}) [Karaoke Version]"
        disambiguation = "karaoke version"
        secondary = ("Compilation",)
        release = album = f"Karaoke Hits Vol. {d.between('karaoke-vol', 1, 30)}"
        album_type, popularity = "compilation", d.between("decoy-popularity-low", 5, 30)
        length = _percent(d, length, None, 5000)
    elif family == "tribute":
        artists = (f"{main} Tribute Band",)
        release = album = f"A Tribute to {main}"
        album_type, popularity = "album", d.between("decoy-popularity-low", 5, 45)
        length = _percent(d, length, (90, 110), 0)
    elif family == "same_title":
        artists = (d.choice("other-artist", [a for a in OTHER_ARTISTS if a not in track.artists]),)
        length = d.between("other-length", 150_000, 420_000)
        year = d.between("other-year", 1995, 2025)
    elif family == "featuring":
        if len(track.artists) == 1:
            guest = d.choice("guest", GUESTS)
            artists = (main, guest)
            title = discogs_title = f"{base} (feat. {guest})"
        else:
            artists = (track.artists[1],)
        length = _percent(d, length, (90, 115), 0)
    elif family == "transliteration":
        artists = tuple(ascii_spelling(a) for a in track.artists)
        mb_title = title = discogs_title = ascii_spelling(base)
        release = album = f"Made Famous by {ascii_spelling(track.credit)}"
        album_type, popularity = "album", d.between("decoy-popularity-low", 5, 40)
        length = _percent(d, length, None, 4000)
    elif family == "compilation":
        mb_title = title = discogs_title = track.title
        isrc = track.isrc
        release = album = d.choice("compilation", COMPILATIONS)
        album_type = "compilation"
        # the same recording, released again later (never before the original)
        year = min(COMPILATION_LAST_YEAR, track.year + d.between("comp-year", 1, 10))
        popularity = max(0, min(100, track.spotify.popularity + d.between("comp-pop", -25, 15)))
        length = _percent(d, length, None, 1000)
    else:  # isrc_shared
        mb_title = title = track.title
        isrc = track.isrc
        disambiguation = d.choice("isrc-shared", ("radio edit", "single edit", "mono", "clean"))
        edit = disambiguation.endswith("edit")
        length = _percent(d, length, (60, 80) if edit else None, 1000)
    providers = _PROVIDERS[family]
    rec = derive_record(index, title, artists, track.genre, key=key)
    spotify = replace(
        rec.spotify,
        album_name=album,
        album_type=album_type,
        duration_ms=length + d.between("spotify-length-delta", -400, 400),
        popularity=popularity,
        release_date=f"{year}" + rec.spotify.release_date[4:],
    )
    if family == "compilation":  # the same recording: the same audio
        spotify = replace(spotify, features=track.spotify.features)
    if family == "transliteration":  # a sound-alike, not the artist: its own artist ids
        spotify = replace(
            spotify,
            artist_ids=tuple(base62_id(Digest(f"{key}/{a}").raw("sp-artist")) for a in artists),
        )
    musicbrainz = replace(
        rec.musicbrainz,
        length=length,
        disambiguation=disambiguation,
        release_title=release,
        release_type="Single" if album_type == "single" else "Album",
        secondary_types=secondary,
        atmos_recording_id=None,
        isrc_listed=True,
        tags=track.musicbrainz.tags,
        first_release_date=f"{year}" + rec.musicbrainz.first_release_date[4:],
    )
    if family == "transliteration":
        musicbrainz = replace(
            musicbrainz, artist_ids=tuple(Digest(f"{key}/{a}").mbid("artist") for a in artists)
        )
    discogs = _discogs(rec, family, key, artists, release, discogs_title, length, year)
    lastfm = replace(
        rec.lastfm,
        mbid=musicbrainz.recording_id if "musicbrainz" in providers else None,
        duration_ms=round(length, -3),
    )
    decoy = Decoy(family, kind, track.key, track.index, providers, mb_title)
    return replace(
        rec,
        isrc=isrc or rec.isrc,
        year=year,
        release_title=release,
        spotify=spotify,
        musicbrainz=musicbrainz,
        discogs=discogs if "discogs" in providers else None,
        lastfm=lastfm,
        decoy=decoy,
    )


def _duration(length_ms: int) -> str:
    seconds = round(length_ms / 1000)
    return f"{seconds // 60}:{seconds % 60:02d}"


def _discogs_compilation(
    d: DiscogsRecord, key: str, artists: Sequence[str], release: str, title: str, length: int,
    year: int,
) -> DiscogsRecord:  # fmt: skip
    """A compilation by "Various" (go-discogs ``releases_71989``'s shape: per-track artists,
    ``Compilation`` in the format's descriptions): the track at 2-07 between two tracks of
    other artists, released in the compilation's *year*."""
    g = Digest(key + "/discogs-compilation")
    before, after = g.choice("filler-artist-1", OTHER_ARTISTS), g.choice("filler-artist-2", GUESTS)
    first = g.choice("filler-title-1", FILLER_TITLES)
    last = g.choice("filler-title-2", [t for t in FILLER_TITLES if t != first])
    tracklist = (
        ("2-06", first, _duration(g.between("filler-length-1", 150_000, 420_000))),
        ("2-07", title, _duration(length)),
        ("2-08", last, _duration(g.between("filler-length-2", 150_000, 420_000))),
    )
    kept = tuple(x for x in d.format_descriptions if x not in ("Single", "Album", "EP"))
    return replace(
        d,
        title=release,
        year=year,
        released=str(year),
        released_formatted=str(year),
        format_descriptions=(*kept, "Compilation"),
        tracklist=tracklist,
        artist_ids=(DISCOGS_VARIOUS_ID,),
        track_artists=((before,), tuple(artists), (after,)),
    )


def _discogs(
    rec: TrackRecord, family: str, key: str, artists: Sequence[str], release: str,
    discogs_title: str, length: int, year: int,
) -> DiscogsRecord | None:  # fmt: skip
    d = rec.discogs
    if d is None:  # the decoy's own digest said "no Discogs release": give it one anyway
        d = derive_record(rec.index, rec.title, artists, rec.genre, key=key + "/discogs").discogs
    if d is None:
        return None
    if family == "compilation":
        return _discogs_compilation(d, key, artists, release, discogs_title, length, year)
    tracklist = ((d.tracklist[0][0], discogs_title, _duration(length)), *d.tracklist[1:])
    if family == "transliteration":
        artist_ids = tuple(
            Digest(f"{key}/{a}").between("dg-artist", 1000, 9_999_999) for a in artists
        )
    else:
        artist_ids = tuple(discogs_artist_id(a) for a in artists)
    return replace(d, title=release, tracklist=tracklist, artist_ids=artist_ids)
