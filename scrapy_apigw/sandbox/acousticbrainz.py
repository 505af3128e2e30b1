"""AcousticBrainz (PROVIDERS.md section 5b), mounted at ``/acousticbrainz``: shut down.

MetaBrainz ended the project in 2022 and took the site offline in early 2023. Every request,
e.g. ``GET {url}/acousticbrainz/api/v1/{mbid}/low-level``, gets ``410 Gone`` with a short JSON
explanation, so clients learn to treat the provider as unavailable for good (not as a
transient error to retry). Faults still apply; there is no rate limit. (PROVIDERS.md: whether
the old API still answers is unverified, "treat it as gone (simulate connection refused, 404
or 410)"; 410 it is.)

What remains are the final CC0 data dumps: :func:`write_dumps` writes the dumps of a catalog
(low-level and high-level documents per recording MBID, in the dumps' layout, derived from the
track's records like every other provider's), for the client to read from a directory, an
archive or a mirror.
"""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scrapy_apigw.sandbox.catalog import Catalog
from scrapy_apigw.sandbox.http import Reply, SandboxRequest, json_reply
from scrapy_apigw.sandbox.provider import Provider
from scrapy_apigw.sandbox.records import Digest, TrackRecord

__all__ = [
    "AcousticBrainz",
    "dump_documents",
    "has_documents",
    "highlevel_document",
    "lowlevel_document",
    "write_dumps",
]

GONE_MESSAGE = (
    "AcousticBrainz has been shut down: submissions stopped in June 2022 and the API went "
    "offline in 2023. Final data dumps remain available from MetaBrainz."
)


class AcousticBrainz(Provider):
    """A provider that is gone."""

    name = "acousticbrainz"

    def serve(self, req: SandboxRequest) -> Reply:
        """410 Gone for every path."""
        return json_reply(410, {"message": GONE_MESSAGE})


# -- the final data dumps ------------------------------------------------------------------------

#: The dumps' folder names (the final dump, June 2022) and the submission every track has.
DUMP_NAME = "acousticbrainz-{kind}-json-20220623"
#: Share of tracks without AcousticBrainz data (nobody submitted their audio), per mille.
MISSING_PER_MILLE = 150
#: Essentia's key names by Spotify pitch class.
ESSENTIA_KEYS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
#: High-level classifiers of the dumps and their two classes (fixture
#: ``beets_acousticbrainz_data.json``).
HIGHLEVEL = {
    "danceability": ("danceable", "not_danceable"),
    "gender": ("female", "male"),
    "mood_acoustic": ("acoustic", "not_acoustic"),
    "mood_aggressive": ("aggressive", "not_aggressive"),
    "mood_electronic": ("electronic", "not_electronic"),
    "mood_happy": ("happy", "not_happy"),
    "mood_party": ("party", "not_party"),
    "mood_relaxed": ("relaxed", "not_relaxed"),
    "mood_sad": ("sad", "not_sad"),
    "timbre": ("bright", "dark"),
    "tonal_atonal": ("tonal", "atonal"),
    "voice_instrumental": ("instrumental", "voice"),
}
_VERSION = {
    "essentia": "2.1-beta2",
    "extractor": "music 1.0",
    "gaia": "2.4.3",
    "models_essentia_git_sha": "v2.1_beta1",
}


def has_documents(track: TrackRecord) -> bool:
    """True when the dumps hold documents for *track*'s recording."""
    return Digest(track.key).per_mille("acousticbrainz-missing") >= MISSING_PER_MILLE


def lowlevel_document(track: TrackRecord) -> dict[str, Any]:
    """The low-level document of *track*'s recording (submission 0), as the dumps hold it:
    ``rhythm.bpm`` (Essentia's estimate near the Spotify tempo, unrounded), ``tonal.key_key``
    and ``key_scale`` (the Spotify key; a digest key where Spotify detected none),
    ``metadata``."""
    d = Digest(track.key)
    features = track.spotify.features
    pitch, mode = features.key, features.mode
    if pitch < 0:
        pitch, mode = d.below("ab-key", 12), d.below("ab-mode", 2)
    bpm = round(features.tempo + d.uniform("ab-bpm-delta", -0.8, 0.8, 9), 9)
    scale = "major" if mode == 1 else "minor"
    return {
        "rhythm": {
            "bpm": bpm,
            "beats_count": round(bpm * track.musicbrainz.length / 60000),
            "danceability": d.uniform("ab-danceability", 0.8, 1.8, 9),
            "onset_rate": d.uniform("ab-onset-rate", 2.0, 6.0, 9),
        },
        "tonal": {
            "key_key": ESSENTIA_KEYS[pitch],
            "key_scale": scale,
            "key_strength": d.uniform("ab-key-strength", 0.4, 0.9, 9),
            "chords_key": ESSENTIA_KEYS[pitch],
            "chords_scale": scale,
            "tuning_frequency": d.uniform("ab-tuning", 438.0, 442.0, 6),
        },
        "lowlevel": {
            "average_loudness": d.uniform("ab-loudness", 0.7, 0.98, 9),
            "dynamic_complexity": d.uniform("ab-dynamic", 1.5, 8.0, 9),
        },
        "metadata": _metadata(track),
    }


def highlevel_document(track: TrackRecord) -> dict[str, Any]:
    """The high-level document of *track*'s recording: each classifier of :data:`HIGHLEVEL`
    with ``all``, ``value``, ``probability`` and ``version``."""
    d = Digest(track.key)
    highlevel: dict[str, Any] = {}
    for name, (first, second) in HIGHLEVEL.items():
        p = d.uniform(f"ab-{name}", 0.02, 0.98, 9)
        value, probability = (first, p) if p >= 0.5 else (second, round(1 - p, 9))
        highlevel[name] = {
            "all": {first: p, second: round(1 - p, 9)},
            "value": value,
            "probability": probability,
            "version": dict(_VERSION),
        }
    return {"highlevel": highlevel, "metadata": _metadata(track)}


def _metadata(track: TrackRecord) -> dict[str, Any]:
    return {
        "audio_properties": {
            "analysis_sample_rate": 44100,
            "length": round(track.musicbrainz.length / 1000, 6),
            "codec": "flac",
            "lossless": 1,
        },
        "tags": {
            "musicbrainz_recordingid": [track.musicbrainz.recording_id],
            "artist": [track.credit],
            "title": [track.title],
            "isrc": [track.isrc],
        },
        "version": {"lowlevel": dict(_VERSION), "highlevel": dict(_VERSION)},
    }


def dump_documents(catalog: Catalog) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(path, document)`` of every document of the dumps of *catalog*, paths in the dumps'
    layout: ``acousticbrainz-lowlevel-json-20220623/lowlevel/<mbid[0:2]>/<mbid[2]>/<mbid>-0.json``
    (and ``highlevel``)."""
    for track in catalog:
        if not has_documents(track):
            continue
        mbid = track.musicbrainz.recording_id
        for kind, render in (("lowlevel", lowlevel_document), ("highlevel", highlevel_document)):
            path = f"{DUMP_NAME.format(kind=kind)}/{kind}/{mbid[:2]}/{mbid[2]}/{mbid}-0.json"
            yield path, render(track)


def write_dumps(catalog: Catalog, root: str | Path, archive: str | None = None) -> Path:
    """Write the dumps of *catalog* under the directory *root*, or as the archive *root*
    (``archive``: ``"tar"``, ``"tar.gz"`` or ``"zip"``); return the path written."""
    root = Path(root)
    documents = (
        (path, json.dumps(doc, separators=(",", ":")).encode())
        for path, doc in dump_documents(catalog)
    )
    if archive is None:
        for path, body in documents:
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    if archive == "zip":
        with zipfile.ZipFile(root, "w", zipfile.ZIP_DEFLATED) as out:
            for path, body in documents:
                out.writestr(path, body)
        return root
    mode = {"tar": "w", "tar.gz": "w:gz"}[archive]
    with tarfile.open(root, mode) as tar:  # type: ignore[call-overload]
        for path, body in documents:
            info = tarfile.TarInfo(path)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return root
