"""Ground truth: what a perfect enrichment finds for each row of the tracklist website.

For every row (tracklist number, position) of :func:`scrapy_apigw.sandbox.site.build_tracklists`
the sandbox knows the track really played and so the true identifier at each provider, or that
there is none to find:

- a bad row (``ID - ID``, an empty artist or title, ``Artist - ID``) and a messy ``id_id`` row
  are not findable anywhere (``findable`` false, every id ``None``);
- ``discogs_id`` is ``None`` for the tracks without a Discogs release (about 3.5 %);
- every other catalog track is findable at Spotify (``spotify_id``, ``isrc``), MusicBrainz
  (``musicbrainz_id``, the recording, never its Atmos twin or a decoy sharing the ISRC) and
  Last.fm (``lastfm_listeners`` of the canonical track, with its artist, title and ``mbid``
  when Last.fm has one).

Decoys are never a true answer. Served as ``GET /_sandbox/truth`` (``SandboxProcess.truth()``);
scored by :mod:`scrapy_apigw.sandbox.scoring`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scrapy_apigw.sandbox.records import TrackRecord
from scrapy_apigw.sandbox.site import Row, Tracklist

__all__ = ["TRUTH_FIELDS", "ground_truth", "row_truth"]

#: The identifier fields of an item a truth row gives a true value for.
TRUTH_FIELDS = ("spotify_id", "isrc", "musicbrainz_id", "discogs_id", "lastfm_listeners")


def _ids(track: TrackRecord | None) -> dict[str, Any]:
    if track is None:
        return {"findable": False, **dict.fromkeys(TRUTH_FIELDS), "lastfm": None}
    lastfm = {
        "artist": track.artists[0],
        "title": track.title,
        "mbid": track.lastfm.mbid,
        "listeners": track.lastfm.listeners,
        "playcount": track.lastfm.playcount,
    }
    return {
        "findable": True,
        "spotify_id": track.spotify.id,
        "isrc": track.isrc,
        "musicbrainz_id": track.musicbrainz.recording_id,
        "discogs_id": track.discogs.release_id if track.discogs else None,
        "lastfm_listeners": track.lastfm.listeners,
        "lastfm": lastfm,
    }


def row_truth(tracklist: int, row: Row) -> dict[str, Any]:
    """The truth of one row: where it is, what it shows, and the true ids (``None``: nothing
    to find there).

    Returns:
        ``{"tracklist", "position", "path", "artist", "title", "style", "catalog_index",
        "findable", "spotify_id", "isrc", "musicbrainz_id", "discogs_id",
        "lastfm_listeners", "lastfm": {"artist", "title", "mbid", "listeners", "playcount"}}``;
        ``catalog_index`` is the track played, even on an ``id_id`` row.
    """
    findable_track = row.track if row.style != "id_id" else None
    return {
        "tracklist": tracklist,
        "position": row.position,
        "path": f"/site/tracklists/{tracklist}",
        "artist": row.artist,
        "title": row.title,
        "style": row.style,
        "catalog_index": row.track.index if row.track is not None else None,
        **_ids(findable_track),
    }


def ground_truth(tracklists: Sequence[Tracklist]) -> list[dict[str, Any]]:
    """:func:`row_truth` of every row of every tracklist, in site order."""
    return [row_truth(t.number, row) for t in tracklists for row in t.rows]
