"""The sandbox catalog: which tracks exist, loaded from JSON, with their provider records.

File format: a JSON list of objects, each with at least ``"title"`` (str) and ``"artists"``
(non-empty list of str, main artist first); ``"genre"`` (str) is optional and selects the
plausible tags, tempo, years and labels of the generated records; other keys are ignored.
Tracks with the same normalised ``(artists, title)`` are listed once (the first wins).

The default catalog ships as ``scrapy_apigw/sandbox/data/catalog.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from scrapy_apigw.sandbox.decoys import EXTRA_TRACKS, decoys_for
from scrapy_apigw.sandbox.records import TrackRecord, derive_record, track_key
from scrapy_apigw.sandbox.text import artist_tokens, tokens

__all__ = ["Catalog", "CatalogError", "TrackText", "default_catalog_path", "load_entries"]


class CatalogError(ValueError):
    """The catalog file is missing, not JSON, or an entry lacks a title or artists."""


@dataclass(frozen=True)
class TrackText:
    """Pre-tokenised names of one track, for the matchers of every provider."""

    title: tuple[str, ...]
    artists: tuple[frozenset[str], ...]
    all_artists: frozenset[str]
    album: tuple[str, ...]


def default_catalog_path() -> Path:
    """Path of the catalog shipped with the package."""
    return Path(str(resources.files("scrapy_apigw.sandbox") / "data" / "catalog.json"))


def load_entries(path: str | Path | None = None) -> list[tuple[str, tuple[str, ...], str]]:
    """Read and validate a catalog file; return ``(title, artists, genre)`` per unique track.

    Raises:
        CatalogError: unreadable file, invalid JSON or an invalid entry (the message names it).
    """
    source = Path(path) if path is not None else default_catalog_path()
    try:
        data: Any = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CatalogError(f"cannot read catalog {source}: {exc}") from exc
    if not isinstance(data, list):
        raise CatalogError(f"catalog {source} must be a JSON list of track objects")
    entries: list[tuple[str, tuple[str, ...], str]] = []
    seen: set[str] = set()
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise CatalogError(f"catalog entry {i} is not an object")
        title, artists, genre = item.get("title"), item.get("artists"), item.get("genre", "")
        if not isinstance(title, str) or not title.strip():
            raise CatalogError(f"catalog entry {i} needs a non-empty string 'title'")
        if (
            not isinstance(artists, list)
            or not artists
            or not all(isinstance(a, str) and a.strip() for a in artists)
        ):
            raise CatalogError(f"catalog entry {i} needs 'artists': a non-empty list of strings")
        if not isinstance(genre, str):
            raise CatalogError(f"catalog entry {i}: 'genre' must be a string")
        names = tuple(a.strip() for a in artists)
        key = track_key(title.strip(), names)
        if key in seen:
            continue
        seen.add(key)
        entries.append((title.strip(), names, genre.strip()))
    if not entries:
        raise CatalogError(f"catalog {source} lists no tracks")
    return entries


class Catalog:
    """All tracks with their records and the lookups the provider handlers need.

    Args:
        entries: ``(title, artists, genre)`` triples, e.g. from :func:`load_entries`.
        decoys: share (0..1) of the tracks that get decoys (:mod:`scrapy_apigw.sandbox.decoys`);
            above 0 the catalog also holds :data:`~scrapy_apigw.sandbox.decoys.EXTRA_TRACKS`.

    Attributes:
        originals: the catalog tracks (what the tracklist site plays), in entry order.
        decoys: the decoy records, after them.
        tracks: both (indexes are positions in this list).

    Raises:
        ValueError: *decoys* outside 0..1.
    """

    def __init__(
        self, entries: Sequence[tuple[str, Sequence[str], str]], decoys: float = 0.0
    ) -> None:
        if not 0.0 <= decoys <= 1.0:
            raise ValueError(f"decoys must be a share in 0..1, got {decoys!r}")
        entries = list(entries)
        if decoys > 0:
            known = {track_key(t, a) for t, a, _ in entries}
            entries += [e for e in EXTRA_TRACKS if track_key(e[0], e[1]) not in known]
        self.originals: list[TrackRecord] = [
            derive_record(i, title, artists, genre)
            for i, (title, artists, genre) in enumerate(entries)
        ]
        self.decoys: list[TrackRecord] = (
            decoys_for(self.originals, decoys, len(self.originals)) if decoys > 0 else []
        )
        self.tracks: list[TrackRecord] = self.originals + self.decoys
        self.texts: list[TrackText] = [
            TrackText(
                title=tokens(t.title),
                artists=tuple(artist_tokens(a) for a in t.artists),
                all_artists=frozenset().union(*(artist_tokens(a) for a in t.artists)),
                album=tokens(t.spotify.album_name),
            )
            for t in self.tracks
        ]
        self._at = {
            name: [
                (t, x) for t, x in zip(self.tracks, self.texts, strict=True) if t.present_at(name)
            ]
            for name in ("spotify", "musicbrainz", "discogs", "lastfm")
        }
        self.by_spotify_id = {t.spotify.id: t for t, _ in self._at["spotify"]}
        #: MusicBrainz's ISRC index (records MusicBrainz lists)
        self.by_isrc: dict[str, list[TrackRecord]] = {}
        for t, _ in self._at["musicbrainz"]:
            self.by_isrc.setdefault(t.isrc, []).append(t)
        self.by_recording_id: dict[str, tuple[TrackRecord, bool]] = {}
        for t, _ in self._at["musicbrainz"]:
            self.by_recording_id[t.musicbrainz.recording_id] = (t, False)
            if t.musicbrainz.atmos_recording_id:
                self.by_recording_id[t.musicbrainz.atmos_recording_id] = (t, True)
        self.by_discogs_release = {t.discogs.release_id: t for t in self.tracks if t.discogs}
        self.by_discogs_master = {t.discogs.master_id: t for t in self.tracks if t.discogs}

    @classmethod
    def load(cls, path: str | Path | None = None, decoys: float = 0.0) -> Catalog:
        """Load the catalog at *path*, or the default catalog when ``None`` (with *decoys*)."""
        return cls(load_entries(path), decoys)

    def at(self, provider: str) -> list[tuple[TrackRecord, TrackText]]:
        """The records *provider* lists (every catalog track, and its decoys), with texts."""
        return self._at[provider]

    def __len__(self) -> int:
        """The number of catalog tracks (decoys not counted)."""
        return len(self.originals)

    def __iter__(self) -> Iterator[TrackRecord]:
        return iter(self.originals)

    def decoy_summary(self) -> list[dict[str, Any]]:
        """Per decoy: family, kind, the track it imitates and its ids (``GET
        /_sandbox/catalog``)."""
        out = []
        for t in self.decoys:
            assert t.decoy is not None
            out.append(
                {
                    "index": t.index,
                    "family": t.decoy.family,
                    "kind": t.decoy.kind,
                    "of_index": t.decoy.of_index,
                    "title": t.title,
                    "musicbrainz_title": t.mb_title,
                    "artists": list(t.artists),
                    "providers": sorted(t.decoy.providers),
                    "isrc": t.isrc,
                    "spotify_id": t.spotify.id if t.present_at("spotify") else None,
                    "musicbrainz_recording_id": t.musicbrainz.recording_id
                    if t.present_at("musicbrainz")
                    else None,
                    "discogs_release_id": t.discogs.release_id if t.discogs else None,
                }
            )
        return out

    def summary(self) -> list[dict[str, Any]]:
        """Per track: names and the ids every provider uses (``GET /_sandbox/catalog``)."""
        return [
            {
                "index": t.index,
                "title": t.title,
                "artists": list(t.artists),
                "genre": t.genre,
                "isrc": t.isrc,
                "year": t.year,
                "spotify_id": t.spotify.id,
                "musicbrainz_recording_id": t.musicbrainz.recording_id,
                "musicbrainz_isrc_listed": t.musicbrainz.isrc_listed,
                "discogs_release_id": t.discogs.release_id if t.discogs else None,
                "lastfm_mbid": t.lastfm.mbid,
                "key": t.spotify.features.key,
                "mode": t.spotify.features.mode,
                "tempo": t.spotify.features.tempo,
            }
            for t in self.originals
        ]
