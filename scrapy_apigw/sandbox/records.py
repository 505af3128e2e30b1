"""Deterministic provider records for one catalog track.

Everything a provider says about a track (Spotify id, ISRC, MBIDs, Discogs release, label, year,
audio features, popularity, Last.fm counts and tags) is drawn from SHA-256 digests of the track's
identity key, the normalised ``(artists, title)`` pair. The same track therefore gets the same
records in every run, process and machine (``hashlib``, never Python's salted ``hash()``), and
independently of the other tracks of the catalog.

Deliberate gaps, each decided per track from its own digest (thresholds in per-mille below):

- about 3.5 % of tracks have no Discogs release (a search finds nothing);
- about 3 % of tracks have no ISRC in MusicBrainz (``/isrc/{isrc}`` answers 404) but are found
  by a recording search;
- about 4 % have a second MusicBrainz recording (a Dolby Atmos mix) sharing the ISRC, as
  PROVIDERS.md section 2 reports for real ISRC lookups.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from scrapy_apigw.sandbox.genres import LABELS, GenreProfile, profile_for
from scrapy_apigw.sandbox.text import fold

__all__ = [
    "AudioFeatures",
    "Decoy",
    "Digest",
    "DiscogsRecord",
    "LastfmRecord",
    "MusicBrainzRecord",
    "SpotifyRecord",
    "TrackRecord",
    "artist_key",
    "base62_id",
    "derive_record",
    "release_title_of",
    "track_key",
]

T = TypeVar("T")

#: Namespace of every MBID the sandbox invents (uuid5 of a path under it).
MBID_NAMESPACE = uuid.UUID("6f1d3a52-7c0e-5b7e-9a57-3d1bb0e6a5c1")

DISCOGS_MISSING_PER_MILLE = 35
MB_ISRC_MISSING_PER_MILLE = 30
MB_ATMOS_PER_MILLE = 40

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_VERSION_WORDS = re.compile(
    r"\b(mix|edit|remix|version|rework|dub|vip|remaster(ed)?|radio|extended|club|bootleg)\b",
    re.IGNORECASE,
)
_ISRC_COUNTRIES = ("GB", "US", "DE", "NL", "SE", "FR", "NO", "BE", "AU", "IT", "CA", "DK")
_DISCOGS_COUNTRIES = (
    "UK", "US", "Germany", "Netherlands", "Sweden", "France", "Europe", "Belgium", "Norway",
    "Australia", "Italy", "Canada",
)  # fmt: skip
_MB_COUNTRIES = {"UK": "GB", "US": "US", "Germany": "DE", "Netherlands": "NL", "Sweden": "SE",
                 "France": "FR", "Europe": "XE", "Belgium": "BE", "Norway": "NO",
                 "Australia": "AU", "Italy": "IT", "Canada": "CA"}  # fmt: skip
_ALBUM_WORDS = (
    ("Night", "Endless", "Golden", "Electric", "Silent", "Neon", "Distant", "Open", "Future"),
    ("Signals", "Horizons", "Motion", "Lights", "Rooms", "Waves", "Stories", "Circuits", "Skies"),
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class Digest:
    """Deterministic pseudo-random values derived from one identity key.

    Each value has a *purpose* label, so adding a new value never changes existing ones.
    """

    def __init__(self, key: str) -> None:
        self.key = key

    def raw(self, purpose: str) -> bytes:
        """32 bytes: SHA-256 of ``purpose`` and the key."""
        return hashlib.sha256(f"{purpose}\x1f{self.key}".encode()).digest()

    def number(self, purpose: str) -> int:
        """A 64-bit unsigned integer."""
        return int.from_bytes(self.raw(purpose)[:8], "big")

    def below(self, purpose: str, n: int) -> int:
        """An integer in ``[0, n)``."""
        return self.number(purpose) % n

    def between(self, purpose: str, lo: int, hi: int) -> int:
        """An integer in ``[lo, hi]``."""
        return lo + self.below(purpose, hi - lo + 1)

    def unit(self, purpose: str) -> float:
        """A float in ``[0, 1)``."""
        return self.number(purpose) / 2.0**64

    def uniform(self, purpose: str, lo: float, hi: float, digits: int = 3) -> float:
        """A float in ``[lo, hi]`` rounded to *digits*."""
        return round(lo + (hi - lo) * self.unit(purpose), digits)

    def choice(self, purpose: str, seq: Sequence[T]) -> T:
        """One element of *seq*."""
        return seq[self.below(purpose, len(seq))]

    def per_mille(self, purpose: str) -> int:
        """An integer in ``[0, 1000)``, to decide rare cases."""
        return self.below(purpose, 1000)

    def hex(self, purpose: str, length: int = 40) -> str:
        """Lower-case hex digits (image file names and the like)."""
        return self.raw(purpose).hex()[:length]

    def mbid(self, purpose: str) -> str:
        """An MBID (UUID version 5)."""
        return str(uuid.uuid5(MBID_NAMESPACE, f"{purpose}/{self.key}"))


def base62_id(data: bytes) -> str:
    """A 22-character base62 id from the first 16 bytes of *data* (Spotify's id format)."""
    n = int.from_bytes(data[:16], "big")
    chars = []
    while n:
        n, r = divmod(n, 62)
        chars.append(_BASE62[r])
    return "".join(reversed(chars)).rjust(22, "0")


def track_key(title: str, artists: Sequence[str]) -> str:
    """The identity of a track: folded artists and title (order of artists kept)."""
    return " & ".join(fold(a) for a in artists) + "\x1e" + fold(title)


def artist_key(name: str) -> str:
    """The identity of an artist, shared by all its tracks."""
    return "artist\x1e" + fold(name)


def release_title_of(title: str) -> str:
    """The release a single is named after: the title without its mix or edit suffix.

    >>> release_title_of("Losing It - Extended Mix")
    'Losing It'
    >>> release_title_of("Gecko (Overdrive) [Radio Edit]")
    'Gecko (Overdrive)'
    """
    result = title.strip()
    while True:
        match = re.search(r"\s*(\(([^()]*)\)|\[([^\[\]]*)\])\s*$", result)
        if match and _VERSION_WORDS.search(match.group(2) or match.group(3) or ""):
            result = result[: match.start()].rstrip()
            continue
        match = re.search(r"\s+-\s+([^-]+)$", result)
        if match and _VERSION_WORDS.search(match.group(1)):
            result = result[: match.start()].rstrip()
            continue
        return result or title.strip()


@dataclass(frozen=True)
class AudioFeatures:
    """Spotify audio features (``GET /v1/audio-features/{id}``); key -1 = no key detected."""

    danceability: float
    energy: float
    key: int
    loudness: float
    mode: int
    speechiness: float
    acousticness: float
    instrumentalness: float
    liveness: float
    valence: float
    tempo: float
    time_signature: int


@dataclass(frozen=True)
class SpotifyRecord:
    """What Spotify knows: ids, album, dates (with precision), popularity, ISRC."""

    id: str
    album_id: str
    album_name: str
    album_type: str  # "single", "album" or "compilation"
    album_total_tracks: int
    track_number: int
    release_date: str
    release_date_precision: str  # "day", "month" or "year"
    duration_ms: int
    explicit: bool
    popularity: int
    artist_ids: tuple[str, ...]
    image_hash: str
    features: AudioFeatures


@dataclass(frozen=True)
class MusicBrainzRecord:
    """What MusicBrainz knows: recording, artists, first release, ISRC listing, tags."""

    recording_id: str
    length: int
    first_release_date: str
    disambiguation: str
    artist_ids: tuple[str, ...]
    release_id: str
    release_group_id: str
    release_title: str
    release_country: str
    release_type: str  # "Single" or "Album"
    media_format: str
    track_id: str
    track_count: int
    track_position: int
    isrc_listed: bool
    atmos_recording_id: str | None
    tags: tuple[tuple[str, int], ...]
    #: release-group secondary types (``Live``, ``Compilation``, ``Remix``...); decoys only
    secondary_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class DiscogsRecord:
    """A Discogs release of the track (``GET /releases/{id}``)."""

    release_id: int
    master_id: int
    title: str
    year: int  # 0 when unknown, as Discogs says
    released: str | None  # "YYYY-MM-DD", "YYYY-MM-00" or "YYYY"; None when unknown
    released_formatted: str | None
    country: str
    label: str
    label_id: int
    catno: str  # "none" for Not On Label
    format_name: str
    format_descriptions: tuple[str, ...]
    genres: tuple[str, ...]
    styles: tuple[str, ...]
    tracklist: tuple[tuple[str, str, str], ...]  # (position, title, duration "m:ss" or "")
    artist_ids: tuple[int, ...]
    have: int
    want: int
    rating_average: float
    rating_count: int
    num_for_sale: int
    lowest_price: float | None
    date_added: str
    image_hash: str
    #: Non-empty for a compilation by "Various" (Discogs artist :data:`DISCOGS_VARIOUS_ID`, as
    #: on real compilations): the artists credited on each tracklist entry, in tracklist order
    #: (the release itself credits "Various").
    track_artists: tuple[tuple[str, ...], ...] = ()


#: Discogs' "Various" artist (``{"name": "Various", "id": 194}``): the credit of compilations.
DISCOGS_VARIOUS_ID = 194
DISCOGS_VARIOUS = "Various"


@dataclass(frozen=True)
class LastfmRecord:
    """What Last.fm knows: counts (rendered as strings), tags, optional mbid and album."""

    listeners: int
    playcount: int
    duration_ms: int  # 0 for some tracks, as Last.fm often reports
    mbid: str | None
    album_position: int | None  # None: no album block
    tags: tuple[tuple[str, int], ...]  # (name, count) top tag first, count 100
    wiki: bool


@dataclass(frozen=True)
class Decoy:
    """What a decoy record is, and where it exists.

    Attributes:
        family: one of :data:`scrapy_apigw.sandbox.decoys.FAMILIES` (``"version"``,
            ``"karaoke"``...).
        kind: the version kind for ``"version"`` (``"radio_edit"``, ``"live"``...), else the
            family again.
        of_key: identity key of the catalog track it imitates.
        of_index: that track's catalog index.
        providers: the providers listing it (``spotify``, ``musicbrainz``, ``discogs``,
            ``lastfm``).
        mb_title: the recording title on MusicBrainz (clean: no version words).
    """

    family: str
    kind: str
    of_key: str
    of_index: int
    providers: frozenset[str]
    mb_title: str


@dataclass(frozen=True)
class TrackRecord:
    """One catalog track with everything every provider says about it."""

    index: int
    title: str
    artists: tuple[str, ...]
    genre: str
    key: str
    isrc: str
    year: int
    release_title: str
    spotify: SpotifyRecord
    musicbrainz: MusicBrainzRecord
    discogs: DiscogsRecord | None
    lastfm: LastfmRecord
    #: what makes this record a decoy (``None``: a catalog track), see
    #: :mod:`scrapy_apigw.sandbox.decoys`
    decoy: Decoy | None = None

    @property
    def mb_title(self) -> str:
        """The recording title MusicBrainz shows (decoys: the clean title, no version)."""
        return self.decoy.mb_title if self.decoy is not None else self.title

    def present_at(self, provider: str) -> bool:
        """True when *provider* lists this record (catalog tracks: everywhere)."""
        return self.decoy is None or provider in self.decoy.providers

    @property
    def credit(self) -> str:
        """The artists joined as a display credit ("A & B", "A, B & C")."""
        if len(self.artists) == 1:
            return self.artists[0]
        return ", ".join(self.artists[:-1]) + " & " + self.artists[-1]


def _spotify_artist_id(name: str) -> str:
    return base62_id(Digest(artist_key(name)).raw("spotify-artist"))


def _mb_artist_id(name: str) -> str:
    return Digest(artist_key(name)).mbid("artist")


def discogs_artist_id(name: str) -> int:
    """The Discogs artist id of *name* (shared by all its releases)."""
    return Digest(artist_key(name)).between("discogs-artist", 1000, 9_999_999)


def _isrc(d: Digest, year: int) -> str:
    country = d.choice("isrc-country", _ISRC_COUNTRIES)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    registrant = d.choice("isrc-reg0", alphabet[:26]) + "".join(
        d.choice(f"isrc-reg{i}", alphabet) for i in (1, 2)
    )
    return f"{country}{registrant}{year % 100:02d}{d.below('isrc-designation', 100000):05d}"


def _length_ms(d: Digest, title: str, profile: GenreProfile) -> int:
    folded = fold(title)
    lo, hi = profile.length
    if "radio edit" in folded or "edit" in folded.split():
        lo, hi = 170, 235
    elif "extended" in folded or "original mix" in folded:
        lo, hi = max(lo, 330), max(hi, 480)
    return d.between("length", lo * 1000, hi * 1000)


def _features(d: Digest, profile: GenreProfile) -> AudioFeatures:
    no_key = d.per_mille("no-key") < 30
    signature = 4
    roll = d.per_mille("time-signature")
    if roll < 15:
        signature = 3
    elif roll < 20:
        signature = 5
    return AudioFeatures(
        danceability=d.uniform("danceability", *profile.danceability),
        energy=d.uniform("energy", *profile.energy),
        key=-1 if no_key else d.below("key", 12),
        loudness=d.uniform("loudness", -14.0, -3.0),
        mode=d.below("mode", 2),
        speechiness=d.uniform("speechiness", 0.025, 0.2, 4),
        acousticness=d.uniform("acousticness", *profile.acousticness, 4),
        instrumentalness=d.uniform("instrumentalness", *profile.instrumentalness, 4),
        liveness=d.uniform("liveness", 0.03, 0.35, 4),
        valence=d.uniform("valence", 0.05, 0.95),
        tempo=d.uniform("tempo", *profile.tempo),
        time_signature=signature,
    )


def _date(d: Digest, year: int) -> tuple[int, int]:
    return d.between("month", 1, 12), d.between("day", 1, 28)


def _spotify(
    d: Digest, title: str, artists: Sequence[str], release_title: str, year: int,
    profile: GenreProfile, length: int,
) -> SpotifyRecord:  # fmt: skip
    month, day = _date(d, year)
    roll = d.per_mille("album-type")
    if roll < 750:
        album_type, album_name, total = "single", release_title, d.between("single-tracks", 1, 4)
    elif roll < 950:
        words = _ALBUM_WORDS
        album_name = f"{d.choice('album-w1', words[0])} {d.choice('album-w2', words[1])}"
        album_type, total = "album", d.between("album-tracks", 9, 16)
    else:
        album_type = "compilation"
        album_name = f"Sandbox Club Classics Vol. {d.between('compilation-vol', 1, 12)}"
        total = d.between("compilation-tracks", 20, 40)
    precision_roll = d.per_mille("date-precision")
    if precision_roll < 50:
        release_date, precision = f"{year}", "year"
    elif precision_roll < 80:
        release_date, precision = f"{year}-{month:02d}", "month"
    else:
        release_date, precision = f"{year}-{month:02d}-{day:02d}", "day"
    pop_genre = "Pop" in profile.genres
    return SpotifyRecord(
        id=base62_id(d.raw("spotify-track")),
        album_id=base62_id(d.raw("spotify-album")),
        album_name=album_name,
        album_type=album_type,
        album_total_tracks=total,
        track_number=d.between("track-number", 1, total),
        release_date=release_date,
        release_date_precision=precision,
        duration_ms=length + d.between("spotify-length-delta", -400, 400),
        explicit=d.per_mille("explicit") < (60 if pop_genre else 10),
        popularity=d.between("popularity", 15, 88),
        artist_ids=tuple(_spotify_artist_id(a) for a in artists),
        image_hash=d.hex("spotify-image"),
        features=_features(d, profile),
    )


def _tags(d: Digest, profile: GenreProfile, year: int) -> tuple[tuple[str, int], ...]:
    first, rest = profile.tags[0], list(profile.tags[1:])
    rest.sort(key=lambda tag: d.number(f"tag-order/{tag}"))
    names = [first, *rest[: d.between("tag-count", 2, len(rest))]]
    decade = f"{year % 100 // 10}0s"
    if d.per_mille("decade-tag") < 400 and decade not in names:
        names.append(decade)
    if d.per_mille("seen-live") < 150:
        names.append("seen live")
    counts = [100]
    for i in range(1, len(names)):
        counts.append(max(1, counts[-1] - d.between(f"tag-drop{i}", 5, 35)))
    return tuple(zip(names, counts, strict=True))


def _musicbrainz(
    d: Digest, title: str, artists: Sequence[str], release_title: str, year: int,
    album_type: str, length: int, discogs_country: str, tags: tuple[tuple[str, int], ...],
) -> MusicBrainzRecord:  # fmt: skip
    month, day = _date(d, year)
    disambiguation = ""
    if d.per_mille("mb-disambiguation") < 60:
        disambiguation = d.choice("mb-disambiguation-text", ("single version", "original mix"))
    return MusicBrainzRecord(
        recording_id=d.mbid("recording"),
        length=length + d.between("mb-length-delta", -1500, 1500),
        first_release_date=f"{year}-{month:02d}-{day:02d}",
        disambiguation=disambiguation,
        artist_ids=tuple(_mb_artist_id(a) for a in artists),
        release_id=d.mbid("release"),
        release_group_id=d.mbid("release-group"),
        release_title=release_title,
        release_country=_MB_COUNTRIES.get(discogs_country, "XW"),
        release_type="Single" if album_type == "single" else "Album",
        media_format=d.choice("mb-media", ("Digital Media", "Digital Media", '12" Vinyl', "CD")),
        track_id=d.mbid("track"),
        track_count=d.between("mb-track-count", 1, 4),
        track_position=1,
        isrc_listed=d.per_mille("mb-isrc-missing") >= MB_ISRC_MISSING_PER_MILLE,
        atmos_recording_id=d.mbid("atmos")
        if d.per_mille("mb-atmos") < MB_ATMOS_PER_MILLE
        else None,
        tags=tags[:3],
    )


def _duration_text(ms: int) -> str:
    seconds = round(ms / 1000)
    return f"{seconds // 60}:{seconds % 60:02d}"


def _discogs(
    d: Digest, title: str, artists: Sequence[str], release_title: str, year: int,
    profile: GenreProfile, length: int, country: str,
) -> DiscogsRecord | None:  # fmt: skip
    if d.per_mille("discogs-missing") < DISCOGS_MISSING_PER_MILLE:
        return None
    month, day = _date(d, year)
    label = LABELS[d.choice("label", profile.labels)]
    not_on_label = d.per_mille("not-on-label") < 25
    descriptions: tuple[str, ...]
    number = d.between("catno", 1, 480)
    catno = "none" if not_on_label else f"{label.prefix}{label.separator}{number:03d}"
    label_name = "Not On Label" if not_on_label else label.name
    if year < 2006 or d.per_mille("format") < 250:
        format_name, descriptions = "Vinyl", ('12"', "33 ⅓ RPM")
        positions = ("A", "B", "B2")
    elif d.per_mille("format-cd") < 150:
        format_name, descriptions = "CD", ("Single",)
        positions = ("1", "2", "3")
    else:
        format_name = "File"
        descriptions = (d.choice("file-type", ("MP3", "WAV", "FLAC")), "Single")
        positions = ("1", "2", "3")
    versions = [(title, length)]
    if d.per_mille("second-version") < 600:
        versions.append((f"{release_title} (Dub)", length + d.between("dub-delta", -30000, 30000)))
    tracklist = tuple(
        (pos, t, "" if d.per_mille(f"no-duration{i}") < 150 else _duration_text(ms))
        for i, (pos, (t, ms)) in enumerate(zip(positions, versions, strict=False))
    )
    roll = d.per_mille("released-precision")
    released: str | None
    if roll < 20:
        disc_year, released, formatted = 0, None, None
    elif roll < 100:
        disc_year, released, formatted = year, f"{year}", f"{year}"
    elif roll < 300:
        disc_year, released = year, f"{year}-{month:02d}-00"
        formatted = f"{_MONTHS[month - 1]} {year}"
    else:
        disc_year, released = year, f"{year}-{month:02d}-{day:02d}"
        formatted = f"{day:02d} {_MONTHS[month - 1]} {year}"
    styles = sorted(profile.styles, key=lambda s: d.number(f"style/{s}"))
    have = d.between("have", 10, 9000)
    for_sale = d.between("for-sale", 0, 40)
    return DiscogsRecord(
        release_id=d.between("discogs-release", 100_000, 29_999_999),
        master_id=d.between("discogs-master", 10_000, 3_499_999),
        title=release_title,
        year=disc_year,
        released=released,
        released_formatted=formatted,
        country=country,
        label=label_name,
        label_id=1818 if not_on_label else Digest(fold(label.name)).between("label", 1, 999_999),
        catno=catno,
        format_name=format_name,
        format_descriptions=descriptions,
        genres=profile.genres,
        styles=tuple(styles[: d.between("style-count", 1, len(styles))]),
        tracklist=tracklist,
        artist_ids=tuple(discogs_artist_id(a) for a in artists),
        have=have,
        want=d.between("want", 5, have * 2),
        rating_average=d.uniform("rating", 3.2, 4.9, 2),
        rating_count=d.between("rating-count", 1, 400),
        num_for_sale=for_sale,
        lowest_price=d.uniform("lowest-price", 2.5, 60.0, 2) if for_sale else None,
        date_added=f"{max(year, 2004) + d.between('added-delta', 0, 3)}-"
        f"{month:02d}-{day:02d}T{d.between('added-hour', 0, 23):02d}:14:05-07:00",
        image_hash=d.hex("discogs-image", 16),
    )


def _lastfm(
    d: Digest, recording_id: str, length: int, popularity: int,
    tags: tuple[tuple[str, int], ...],
) -> LastfmRecord:  # fmt: skip
    listeners = popularity * popularity * d.between("listeners-scale", 20, 260)
    listeners += d.between("listeners-noise", 0, 9999)
    return LastfmRecord(
        listeners=listeners,
        playcount=listeners * d.between("plays-per-listener", 3, 14),
        duration_ms=0 if d.per_mille("lastfm-no-duration") < 60 else round(length, -3),
        mbid=recording_id if d.per_mille("lastfm-mbid") >= 150 else None,
        album_position=None if d.per_mille("lastfm-album") < 200 else d.between("lf-pos", 1, 12),
        tags=tags,
        wiki=d.per_mille("lastfm-wiki") < 300,
    )


def derive_record(
    index: int, title: str, artists: Sequence[str], genre: str, key: str | None = None
) -> TrackRecord:
    """Build every provider record of the track ``(artists, title)`` from its digests.

    Args:
        index: position of the track in the catalog (0-based); not part of the identity.
        title: track title as listed (mix names included).
        artists: credited artists, main artist first.
        genre: genre name selecting a :class:`GenreProfile`.
        key: identity key to draw from instead of :func:`track_key` (decoys that share a
            title and artists with their track still get their own ids).
    """
    key = key if key is not None else track_key(title, artists)
    d = Digest(key)
    profile = profile_for(genre)
    year = d.between("year", *profile.years)
    release_title = release_title_of(title)
    length = _length_ms(d, title, profile)
    country = d.choice("country", _DISCOGS_COUNTRIES)
    tags = _tags(d, profile, year)
    spotify = _spotify(d, title, artists, release_title, year, profile, length)
    mb = _musicbrainz(
        d, title, artists, release_title, year, spotify.album_type, length, country, tags
    )
    return TrackRecord(
        index=index,
        title=title,
        artists=tuple(artists),
        genre=genre,
        key=key,
        isrc=_isrc(d, year),
        year=year,
        release_title=release_title,
        spotify=spotify,
        musicbrainz=mb,
        discogs=_discogs(d, title, artists, release_title, year, profile, length, country),
        lastfm=_lastfm(d, mb.recording_id, length, spotify.popularity, tags),
    )
