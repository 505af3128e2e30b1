"""A small tracklist website for the example spider, mounted at ``/site``.

The catalog is grouped deterministically into tracklists of about 20 tracks: 18 tracks of their
own (every catalog track appears in exactly one list) plus 2 repeated anthems from other lists,
as DJ sets repeat popular tracks. Some lists carry realistic bad rows a spider must cope with:
an unreleased ``ID - ID``, a row with an empty artist, ``<Artist> - ID`` and a row with an
empty title.

Pages (all text HTML-escaped, UTF-8):

``GET {url}/site/`` (also ``/site``), optional ``?limit=N`` listing only the first N lists
(pages beyond N are still served)::

    <ul class="tracklists">
      <li class="tracklist-item" data-tracklist-id="1">
        <a class="tracklist-link" href="/site/tracklists/1">Mira Kovac @ Fabric, London</a>
        <span class="track-count">20 tracks</span>
      </li>
    </ul>

``GET {url}/site/tracklists/<n>`` (1-based; 404 beyond the last)::

    <article class="tracklist" data-tracklist-id="3">
      <h1 class="tracklist-title">...</h1>
      <p class="meta"><span class="dj">...</span> <span class="venue">...</span>
        <time class="date" datetime="2023-05-12">2023-05-12</time></p>
      <ol class="tracks">
        <li class="track" data-position="1"><span class="position">01</span>
          <span class="artist">deadmau5</span> <span class="sep">-</span>
          <span class="title">Strobe (Radio Edit)</span></li>
      </ol>
    </article>

With Scrapy: ``response.css("li.track")``, then ``.attrib["data-position"]``,
``.css("span.artist::text").get()`` (``None`` for an empty artist) and
``.css("span.title::text").get()``. Several artists are shown as one credit, joined with
``" & "``, ``", "``, ``" feat. "`` or ``" x "`` (varying per track, as on real sites).

Messy rows (``SandboxConfig.messy_site`` = *share* > 0, 0.3 by default): that share of the rows
that play a catalog track (chosen per tracklist and position from digests, so deterministically)
is written the way DJ tracklists write tracks, one style per row (:data:`MESSY_STYLES`,
``Row.style``):

- ``original_mix``: ``Title (Original Mix)`` (titles without a version of their own);
- ``label``: ``Title [Label]`` (tracks with a Discogs label);
- ``vs``: ``A vs B`` (two or more artists);
- ``reordered``: ``B, A`` (two or more artists, the featured artist first);
- ``casing``: the credit in upper or lower case (``DEADMAU5``, ``daft punk``);
- ``spelling``: the credit as an ASCII keyboard writes it (``Beyonce``, ``Sigur Ros``,
  ``Mumiy Troll``), or ``and`` for ``&``; rows with non-Latin or accented credits take this
  style whenever they are chosen;
- ``id_id``: ``ID - ID`` (a tenth of the messy rows): the DJ played the track but it is
  unidentified, so it is not findable.

``Row.track`` stays the track really played; :mod:`scrapy_apigw.sandbox.truth` says, per row,
what a perfect enrichment would find.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass

from scrapy_apigw.sandbox.catalog import Catalog
from scrapy_apigw.sandbox.http import Reply, SandboxRequest, html_reply
from scrapy_apigw.sandbox.provider import Provider
from scrapy_apigw.sandbox.records import Digest, TrackRecord, release_title_of
from scrapy_apigw.sandbox.text import ascii_spelling

__all__ = [
    "MESSY_STYLES",
    "OWN_TRACKS",
    "Row",
    "Site",
    "Tracklist",
    "build_tracklists",
    "display_artist",
    "messy_row",
]

OWN_TRACKS = 18
REPEATS = 2
DJS = (
    "Mira Kovac", "Tomás Rivera", "Night Shift Collective", "Lena Brandt", "Kofi Mensah",
    "Aiko Tanaka", "Jonas Wirth", "Sofía Marín", "Ravi Anand", "Chloé Dubois", "Sam Okafor",
)  # fmt: skip
VENUES = (
    "Fabric, London", "Berghain, Berlin", "Warehouse Project, Manchester", "Amnesia, Ibiza",
    "De School, Amsterdam", "Output, New York", "Printworks, London", "Trouw, Amsterdam",
    "Sónar by Night, Barcelona", "Tresor, Berlin",
)  # fmt: skip
_JOINS = (" & ", " & ", ", ", " feat. ", " x ")
#: Share of the messy rows that are ``ID - ID``, per mille.
ID_ID_PER_MILLE = 100
MESSY_STYLES = ("original_mix", "label", "vs", "reordered", "casing", "spelling", "id_id")


@dataclass(frozen=True)
class Row:
    """One line of a tracklist page (``track`` is None for bad rows)."""

    position: int
    artist: str
    title: str
    track: TrackRecord | None = None
    #: how a messy row is written (one of :data:`MESSY_STYLES`), ``None`` when as catalogued
    style: str | None = None


@dataclass(frozen=True)
class Tracklist:
    """One tracklist page."""

    number: int
    title: str
    dj: str
    venue: str
    date: str
    rows: tuple[Row, ...]


def display_artist(track: TrackRecord) -> str:
    """The artist credit as the website shows it."""
    if len(track.artists) == 1:
        return track.artists[0]
    if len(track.artists) == 2:
        join = Digest(track.key).choice("site-join", _JOINS)
        return join.join(track.artists)
    return ", ".join(track.artists[:-1]) + " & " + track.artists[-1]


def _styles(track: TrackRecord) -> list[str]:
    """The messy styles that apply to *track*."""
    credit = display_artist(track)
    if ascii_spelling(credit) != credit:
        return ["spelling"]
    styles = []
    if release_title_of(track.title) == track.title and "(" not in track.title:
        styles.append("original_mix")
    if track.discogs is not None and track.discogs.label != "Not On Label":
        styles.append("label")
    if len(track.artists) >= 2:
        styles += ["vs", "reordered"]
    styles.append("casing")
    if " & " in credit:
        styles.append("spelling")
    return styles


def messy_row(position: int, track: TrackRecord, digest: Digest) -> Row:
    """The row at *position* playing *track*, written in a style *digest* picks."""
    styles = _styles(track)
    if digest.per_mille("messy-id") < ID_ID_PER_MILLE:
        style = "id_id"
    else:
        style = digest.choice("messy-style", styles)
    artist, title = display_artist(track), track.title
    if style == "original_mix":
        title = f"{title} (Original Mix)"
    elif style == "label":
        assert track.discogs is not None
        title = f"{title} [{track.discogs.label}]"
    elif style == "vs":
        artist = " vs ".join(track.artists)
    elif style == "reordered":
        artist = ", ".join((*track.artists[1:], track.artists[0]))
    elif style == "casing":
        artist = artist.upper() if digest.below("messy-case", 2) else artist.lower()
    elif style == "spelling":
        spelled = ascii_spelling(artist)
        artist = spelled if spelled != artist else artist.replace(" & ", " and ")
    else:  # id_id
        artist, title = "ID", "ID"
    return Row(position, artist, title, track, style)


def build_tracklists(catalog: Catalog, messy: float = 0.0) -> list[Tracklist]:
    """Group *catalog* into tracklists (deterministic; see the module docstring).

    Args:
        catalog: the tracks (decoys never appear).
        messy: share (0..1) of the track rows written the DJ-tracklist way.
    """
    order = sorted(catalog.originals, key=lambda t: Digest(t.key).number("site-order"))
    chunks = [order[i : i + OWN_TRACKS] for i in range(0, len(order), OWN_TRACKS)]
    lists = []
    for number, chunk in enumerate(chunks, start=1):
        d = Digest(f"tracklist/{number}")
        picks: list[TrackRecord | None] = list(chunk)
        own = {t.index for t in chunk}
        others = [t for t in order if t.index not in own]
        for i in range(min(REPEATS, len(others))):
            picks.insert(d.below(f"repeat-at{i}", len(picks) + 1), d.choice(f"repeat{i}", others))
        bad: list[tuple[str, str]] = []
        if number % 3 == 1:
            bad.append(("ID", "ID"))
        if number % 3 == 2:
            bad.append(("", d.choice("no-artist", order).title))
        if number % 4 == 0:
            bad.append((d.choice("id-artist", order).artists[0], "ID"))
        if number % 5 == 0:
            bad.append((d.choice("no-title", order).artists[0], ""))
        rows: list[Row] = []
        slots: list[TrackRecord | tuple[str, str] | None] = list(picks)
        for i, row in enumerate(bad):
            slots.insert(d.below(f"bad-at{i}", len(slots) + 1), row)
        for position, slot in enumerate(slots, start=1):
            if isinstance(slot, tuple):
                rows.append(Row(position, slot[0], slot[1]))
            elif slot is not None:
                digest = Digest(f"messy/{number}/{position}")
                if messy > 0 and digest.unit("messy") < messy:
                    rows.append(messy_row(position, slot, digest))
                else:
                    rows.append(Row(position, display_artist(slot), slot.title, slot))
        dj, venue = d.choice("dj", DJS), d.choice("venue", VENUES)
        date = (dt.date(2023, 1, 1) + dt.timedelta(days=d.below("date", 900))).isoformat()
        lists.append(Tracklist(number, f"{dj} @ {venue}", dj, venue, date, tuple(rows)))
    return lists


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8">'
        f"<title>{html.escape(title)} | Sandbox Tracklists</title></head>\n<body>\n{body}</body>\n"
        "</html>\n"
    )


class Site(Provider):
    """The tracklist website."""

    name = "site"

    def __init__(self, catalog: Catalog, messy: float = 0.0) -> None:
        self.tracklists = build_tracklists(catalog, messy)

    def error_reply(self, req: SandboxRequest, status: int, fault: str) -> Reply:
        """A plain HTML error page."""
        return html_reply(status, _page("Error", f"<h1>Error {status}</h1>\n"))

    def rate_limit_reply(self, req: SandboxRequest, retry_after: str | None) -> Reply:
        """429 HTML page (``Retry-After`` only when forced with one)."""
        reply = html_reply(429, _page("Too Many Requests", "<h1>Too Many Requests</h1>\n"))
        return reply.with_headers(("Retry-After", retry_after)) if retry_after else reply

    def serve(self, req: SandboxRequest) -> Reply:
        """Index page or one tracklist page."""
        segs = req.segments()
        if not segs:
            return self._index(req)
        if len(segs) == 2 and segs[0] == "tracklists" and segs[1].isdigit():
            number = int(segs[1])
            if 1 <= number <= len(self.tracklists):
                return html_reply(200, self.render(self.tracklists[number - 1]))
        return html_reply(404, _page("Not found", "<h1>Not found</h1>\n"))

    def _index(self, req: SandboxRequest) -> Reply:
        raw = req.arg("limit")
        shown = self.tracklists
        if raw is not None:
            if not raw.isdigit():
                return html_reply(400, _page("Bad request", "<h1>limit must be an integer</h1>\n"))
            shown = shown[: int(raw)]
        items = "".join(
            f'  <li class="tracklist-item" data-tracklist-id="{t.number}">'
            f'<a class="tracklist-link" href="/site/tracklists/{t.number}">'
            f"{html.escape(t.title)}</a>"
            f' <span class="track-count">{len(t.rows)} tracks</span></li>\n'
            for t in shown
        )
        body = f'<h1>Tracklists</h1>\n<ul class="tracklists">\n{items}</ul>\n'
        return html_reply(200, _page("Tracklists", body))

    @staticmethod
    def render(tracklist: Tracklist) -> str:
        """The HTML page of *tracklist*."""
        e = html.escape
        rows = "".join(
            f'  <li class="track" data-position="{r.position}">'
            f'<span class="position">{r.position:02d}</span> '
            f'<span class="artist">{e(r.artist)}</span> <span class="sep">-</span> '
            f'<span class="title">{e(r.title)}</span></li>\n'
            for r in tracklist.rows
        )
        body = (
            '<nav><a class="index-link" href="/site/">All tracklists</a></nav>\n'
            f'<article class="tracklist" data-tracklist-id="{tracklist.number}">\n'
            f'<h1 class="tracklist-title">{e(tracklist.title)}</h1>\n'
            f'<p class="meta"><span class="dj">{e(tracklist.dj)}</span> '
            f'<span class="venue">{e(tracklist.venue)}</span> '
            f'<time class="date" datetime="{tracklist.date}">{tracklist.date}</time></p>\n'
            f'<ol class="tracks">\n{rows}</ol>\n</article>\n'
        )
        return _page(tracklist.title, body)
