"""AcousticBrainz from its final data dumps: BPM, key and high-level descriptors by MBID.

The service is shut down (PROVIDERS.md section 5b): MetaBrainz ended the project in 2022
(submissions and downloads stopped in June 2022) and took the site offline in early 2023. What
remains are the final CC0 data dumps: one low-level and one high-level JSON document per
recording MBID and submission. The client reads them from ``APIGW_ACOUSTICBRAINZ_DUMPS``:

- a local directory or archive (``.tar``, ``.tar.gz``, ``.tar.bz2``, ``.tar.xz``, ``.zip``) of
  the dumps, in their layout ``<dump>/lowlevel/<mbid[0:2]>/<mbid[2]>/<mbid>-<n>.json`` and
  ``<dump>/highlevel/...`` (acousticbrainz-server's dump code; the ``<dump>`` folder, e.g.
  ``acousticbrainz-lowlevel-json-20220623``, and the two fan-out folders may be there or not:
  any ``lowlevel/`` or ``highlevel/`` folder, at any depth, is searched for ``<mbid>-<n>.json``;
  ``n`` is the submission, the lowest one is read). The real dumps ship as ``.tar.zst``, which
  Python's ``tarfile`` reads from 3.14 on only: decompress them first (``zstd -d``), or unpack;
- or the URL of a mirror serving the same layout (``<url>/lowlevel/<mbid[0:2]>/<mbid[2]>/
  <mbid>-0.json``), fetched through the gateway and cached 90 days (data type ``"features"``).

A document gives ``rhythm.bpm``, ``tonal.key_key`` + ``tonal.key_scale`` (low level) and
``highlevel.<descriptor>.value`` / ``.probability`` (high level; fixture
``beets_acousticbrainz_data.json``). The client needs the MBID, so it runs after MusicBrainz
in the waterfall.

Without dumps, the provider is the former API (``https://acousticbrainz.org/api/v1``), which is
gone: pointed at acousticbrainz.org it is not called at all; pointed elsewhere (the sandbox's
imitation answers ``410 Gone``) it is asked once. Either way it is reported ONCE, as a
warning saying the service is shut down and how to use the dumps, and every track is
``skipped`` for it: nothing is retried, no breaker failure is counted, no alarm is raised. An
API-compatible server that does answer (a self-hosted acousticbrainz-server) is used as such
(``GET /{mbid}/low-level``, ``/{mbid}/high-level``).
"""

from __future__ import annotations

import json
import logging
import re
import tarfile
import threading
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import Deferred

from scrapy_apigw import validate as v
from scrapy_apigw.core.camelot import PITCH_CLASSES, camelot_from_spotify, key_name
from scrapy_apigw.core.outcome import Outcome, classify_status
from scrapy_apigw.exceptions import ConfigError, ProviderUnavailable
from scrapy_apigw.providers.base import (
    ApiAnswer,
    ApiCall,
    Fetch,
    ProviderResult,
    TrackContext,
)
from scrapy_apigw.providers.registry import DAY, ProviderConfig
from scrapy_apigw.providers.spec import ClientContext, ProviderSpec
from scrapy_apigw.validate import read

__all__ = [
    "DEAD_HOSTS",
    "PROVIDER",
    "SHUT_DOWN_MESSAGE",
    "AcousticBrainzClient",
    "DumpReader",
    "document_fields",
    "dump_path",
]

logger = logging.getLogger(__name__)

#: Hosts of the shut-down service: never called.
DEAD_HOSTS = frozenset({"acousticbrainz.org", "www.acousticbrainz.org"})

#: The one warning a crawl pointed at the dead service logs (``%s``: what happened).
SHUT_DOWN_MESSAGE = (
    "apigw: acousticbrainz: the AcousticBrainz service was shut down (submissions stopped in "
    "June 2022, the API went offline in 2023) and %s; it is not asked again in this crawl and "
    "every track is skipped for it. Use its final CC0 data dumps instead: set "
    "APIGW_ACOUSTICBRAINZ_DUMPS to a directory or a .tar/.zip archive of the per-MBID "
    "low-level and high-level JSON documents, or to the URL of a mirror in the same layout"
)

_MBID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MEMBER = re.compile(
    r"(?:^|/)(lowlevel|highlevel)/(?:.*/)?"
    r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})-(\d+)\.json$"
)
_FLATS = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#", "Cb": "B", "Fb": "E"}
_PITCH = {name: index for index, name in enumerate(PITCH_CLASSES)}
KINDS = ("lowlevel", "highlevel")


def dump_path(kind: str, mbid: str, submission: int = 0) -> str:
    """The path of one document in the dumps' layout: ``lowlevel/ab/c/abc...-0.json``."""
    return f"{kind}/{mbid[:2]}/{mbid[2]}/{mbid}-{submission}.json"


def _key(key: Any, scale: Any) -> tuple[str, str] | None:
    """``(key, camelot_key)`` of Essentia's ``key_key`` (``"A"``, ``"C#"``, ``"Bb"``) and
    ``key_scale`` (``"minor"``/``"major"``), written as the other sources write them."""
    if not isinstance(key, str) or scale not in ("major", "minor"):
        return None
    note = key.strip()
    note = _FLATS.get(note, note)
    pitch = _PITCH.get(note[:1].upper() + note[1:])
    if pitch is None:
        return None
    mode = 1 if scale == "major" else 0
    name, camelot = key_name(pitch, mode), camelot_from_spotify(pitch, mode)
    return (name, camelot) if name and camelot else None


def document_fields(low: Any, high: Any) -> dict[str, Any]:
    """Output fields of a low-level and a high-level document (either may be None).

    ``bpm`` (``rhythm.bpm``, 0.1 precision), ``key`` and ``camelot_key`` (``tonal.key_key`` +
    ``tonal.key_scale``: ``"A minor"``, ``"8A"``), ``acousticbrainz_highlevel``
    (``{descriptor: {"value": str, "probability": float}}``, e.g. ``{"danceability":
    {"value": "danceable", "probability": 0.913}}``, probabilities to 3 decimals).
    """
    fields: dict[str, Any] = {}
    low = low if isinstance(low, dict) else {}
    rhythm = low.get("rhythm") if isinstance(low.get("rhythm"), dict) else {}
    bpm = rhythm.get("bpm")
    if isinstance(bpm, int | float) and not isinstance(bpm, bool) and 0 < bpm < 1000:
        fields["bpm"] = round(float(bpm), 1)
    tonal = low.get("tonal") if isinstance(low.get("tonal"), dict) else {}
    key = _key(tonal.get("key_key"), tonal.get("key_scale"))
    if key is not None:
        fields["key"], fields["camelot_key"] = key
    descriptors = high.get("highlevel") if isinstance(high, dict) else None
    highlevel: dict[str, Any] = {}
    for name, entry in (descriptors if isinstance(descriptors, dict) else {}).items():
        if not isinstance(entry, dict) or not isinstance(entry.get("value"), str):
            continue
        probability = entry.get("probability")
        described: dict[str, Any] = {"value": entry["value"]}
        if (
            isinstance(probability, int | float)
            and not isinstance(probability, bool)
            and 0 <= probability <= 1  # also rules out NaN (the feed must be strict JSON)
        ):
            described["probability"] = round(float(probability), 3)
        highlevel[str(name)] = described
    if highlevel:
        fields["acousticbrainz_highlevel"] = highlevel
    return fields


class DumpReader:
    """The documents of local dumps: a directory or an archive.

    Args:
        path: the directory, or a ``.tar[.gz|.bz2|.xz]`` / ``.zip`` archive.

    An archive is indexed once, at the first lookup (every member name is read: with a
    compressed tar that is one pass over the archive); a directory is looked up by path.
    Thread-safe.

    Raises:
        ConfigError: (from :meth:`read`) *path* does not exist or is not a readable archive.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._index: dict[tuple[str, str], tuple[int, str]] | None = None
        self._roots: dict[str, list[Path]] | None = None
        self._archive: tarfile.TarFile | zipfile.ZipFile | None = None

    def read(self, kind: str, mbid: str) -> dict[str, Any] | None:
        """The *kind* (``"lowlevel"``/``"highlevel"``) document of *mbid*'s first submission,
        or None when the dumps have none (or it is not a JSON object)."""
        with self._lock:
            raw = (
                self._read_dir(kind, mbid) if self.path.is_dir() else self._read_archive(kind, mbid)
            )
        if raw is None:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            logger.warning("apigw: acousticbrainz: unreadable %s document of %s", kind, mbid)
            return None
        return data if isinstance(data, dict) else None

    def _read_dir(self, kind: str, mbid: str) -> bytes | None:
        if self._roots is None:
            roots: dict[str, list[Path]] = {k: [] for k in KINDS}
            for depth in ("", "*/", "*/*/"):
                for name in KINDS:
                    roots[name] += [p for p in self.path.glob(depth + name) if p.is_dir()]
            self._roots = roots
        for root in self._roots.get(kind, []):
            for folder in (root / mbid[:2] / mbid[2], root / mbid[:2], root):
                found = sorted(folder.glob(f"{mbid}-*.json"), key=_submission)
                if found:
                    return found[0].read_bytes()
        return None

    def _read_archive(self, kind: str, mbid: str) -> bytes | None:
        if self._index is None:
            self._open_archive()
        assert self._index is not None and self._archive is not None
        entry = self._index.get((kind, mbid))
        if entry is None:
            return None
        if isinstance(self._archive, zipfile.ZipFile):
            return self._archive.read(entry[1])
        member = self._archive.extractfile(entry[1])
        return member.read() if member is not None else None

    def _open_archive(self) -> None:
        try:
            archive: tarfile.TarFile | zipfile.ZipFile
            if zipfile.is_zipfile(self.path):
                archive = zipfile.ZipFile(self.path)
                names = archive.namelist()
            else:
                archive = tarfile.open(self.path)  # noqa: SIM115 (kept open for the crawl)
                names = [m.name for m in archive.getmembers() if m.isfile()]
        except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
            raise ConfigError(
                f"APIGW_ACOUSTICBRAINZ_DUMPS = {str(self.path)!r}: not a directory or a readable "
                f".tar/.zip archive ({type(exc).__name__}: {exc})"
            ) from None
        index: dict[tuple[str, str], tuple[int, str]] = {}
        for name in names:
            match = _MEMBER.search(name)
            if match:
                kind, mbid, submission = match.group(1), match.group(2), int(match.group(3))
                if (kind, mbid) not in index or submission < index[(kind, mbid)][0]:
                    index[(kind, mbid)] = (submission, name)
        self._archive, self._index = archive, index
        logger.info("apigw: acousticbrainz: %d documents indexed in %s", len(index), self.path.name)

    def close(self) -> None:
        """Close the archive, if one is open."""
        if self._archive is not None:
            self._archive.close()


def _submission(path: Path) -> int:
    try:
        return int(path.stem.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 1 << 30


class AcousticBrainzClient:
    """AcousticBrainz part of the waterfall (see the module docstring for the three sources).

    Args:
        dumps: a local directory or archive of the dumps (None: none).
        mirror: True when the provider's ``base_url`` is a mirror of the dumps' layout.
        base_url: the provider's ``base_url`` (to tell the dead service's host).

    Fields produced: see :func:`document_fields`. ``skipped`` without an MBID, and for every
    track once the dead service has been reported.
    """

    name = "acousticbrainz"

    def __init__(
        self, dumps: str | Path | None = None, mirror: bool = False, base_url: str = ""
    ) -> None:
        self.reader = DumpReader(dumps) if dumps is not None else None
        self.mirror = mirror
        self.base_url = base_url
        #: why the service is gone, once known (then every track is skipped)
        self.gone: str | None = None
        #: None until the API was probed, then True/False (it answers, or it is gone)
        self._api: bool | None = None
        self._probing: list[Deferred[None]] | None = None

    def classify(self, status: int, data: Any) -> Outcome:
        """By status, except ``410 Gone`` (the dead service): CLIENT_ERROR, a refused request,
        which is neither retried, nor cached, nor a breaker failure (it is not a "not found"
        to remember for this MBID)."""
        if status == 410:
            return Outcome.CLIENT_ERROR
        return classify_status(status)

    def check_shape(self, call: ApiCall, data: Any) -> str | None:
        """A document is a JSON object."""
        return None if isinstance(data, dict) else "no JSON object"

    async def enrich(self, track: TrackContext, fetch: Fetch) -> ProviderResult:
        """The track's documents by MBID, from the dumps, the mirror or a live API."""
        mbid = (track.musicbrainz_id or "").strip().lower()
        if not _MBID.match(mbid):
            return ProviderResult("skipped", reason="no MusicBrainz ID (run musicbrainz first)")
        if self.reader is not None:
            low, high = self.reader.read("lowlevel", mbid), self.reader.read("highlevel", mbid)
        elif self.mirror and not self._dead_host():
            low = await self._fetch(fetch, "/" + dump_path("lowlevel", mbid))
            high = await self._fetch(fetch, "/" + dump_path("highlevel", mbid))
        else:
            if not await self._api_answers(fetch, mbid):
                return ProviderResult("skipped", reason="service shut down (use the dumps)")
            low = await self._fetch(fetch, f"/{mbid}/low-level")
            high = await self._fetch(fetch, f"/{mbid}/high-level")
        fields = document_fields(low, high)
        if not fields:
            return ProviderResult("not_found", reason="no document for this MBID")
        return ProviderResult("ok", fields)

    def _dead_host(self) -> bool:
        return (urlsplit(self.base_url).hostname or "").lower() in DEAD_HOSTS

    async def _fetch(self, fetch: Fetch, path: str) -> dict[str, Any] | None:
        answer = await fetch(ApiCall(self.name, "features", path))
        return answer.data if answer.kind == "ok" and isinstance(answer.data, dict) else None

    async def _api_answers(self, fetch: Fetch, mbid: str) -> bool:
        """True when the former API answers; asked once per crawl (the first track's
        low-level document; the tracks arriving meanwhile wait for that answer)."""
        if self._api is not None:
            return self._api
        if self._probing is not None:
            waiter: Deferred[None] = Deferred()
            self._probing.append(waiter)
            await maybe_deferred_to_future(waiter)
            return bool(self._api)
        self._probing = []
        try:
            self._api = await self._probe(fetch, mbid)
        finally:
            # A cancelled probe leaves ``_api`` None: the next track asks again.
            waiters, self._probing = self._probing, None
            for waiter in waiters:
                if not waiter.called:
                    waiter.callback(None)
        return self._api

    async def _probe(self, fetch: Fetch, mbid: str) -> bool:
        if self._dead_host():
            self._report("was not called (its host is gone)")
            return False
        try:
            answer: ApiAnswer = await fetch(ApiCall(self.name, "probe", f"/{mbid}/low-level"))
        except ProviderUnavailable as exc:
            self._report(f"did not answer ({exc.reason})")
            return False
        if answer.kind in ("ok", "not_found") and answer.status != 410:
            return True
        self._report(f"answered HTTP {answer.status}")
        return False

    def _report(self, what: str) -> None:
        self.gone = what
        logger.warning(SHUT_DOWN_MESSAGE, what)


# -- the provider declaration (scrapy_apigw.providers.spec) --------------------------------------


def _options(settings: Any) -> Mapping[str, Any]:
    """``APIGW_ACOUSTICBRAINZ_DUMPS``: a local path (``dumps``) or an http(s) mirror URL
    (``base_url``, kept as the provider's URL even in sandbox mode)."""
    value = read(settings, "APIGW_ACOUSTICBRAINZ_DUMPS", v.optional(v.text), None)
    if value is None:
        return {}
    if value.startswith(("http://", "https://")):
        return {"base_url": v.http_url("APIGW_ACOUSTICBRAINZ_DUMPS", value).rstrip("/")}
    return {"dumps": value}


def _configure(config: ProviderConfig, options: Mapping[str, Any]) -> ProviderConfig:
    """A mirror URL becomes the provider's ``base_url`` (and its host its domain). The former
    API is never retried (it is gone, and a retry could only count breaker failures)."""
    import dataclasses

    mirror = options.get("base_url")
    if mirror:
        host = (urlsplit(mirror).hostname or "").lower()
        return dataclasses.replace(config, base_url=mirror, domains=(host,) if host else ())
    return dataclasses.replace(config, max_retries=0)


def _client(ctx: ClientContext) -> AcousticBrainzClient:
    return AcousticBrainzClient(
        ctx.options.get("dumps"), bool(ctx.options.get("base_url")), ctx.config.base_url
    )


#: AcousticBrainz: PROVIDERS.md section 0 (5 req/s, burst 5, breaker 5 / 60 s / 2; features
#: cached 90 days).
PROVIDER = ProviderSpec(
    name="acousticbrainz",
    config=ProviderConfig(
        name="acousticbrainz",
        base_url="https://acousticbrainz.org/api/v1",
        domains=("acousticbrainz.org",),
        rate=5,
        burst=5,
        failure_threshold=5,
        open_timeout=60,
        success_threshold=2,
        cache_ttl={"features": 90 * DAY},
    ),
    client=_client,
    sandbox_path="/acousticbrainz/api/v1",
    options=_options,
    configure=_configure,
)
