"""The tracklist website, parsed the way a Scrapy spider parses it."""

from __future__ import annotations

from fixtures_sandbox import SandboxProcess
from scrapy.http import HtmlResponse

from scrapy_apigw.sandbox.catalog import Catalog
from scrapy_apigw.sandbox.config import DEFAULT_DECOYS, DEFAULT_MESSY_SITE
from scrapy_apigw.sandbox.site import build_tracklists


def page(sandbox: SandboxProcess, path: str, **params: str) -> HtmlResponse:
    reply = sandbox.get(path, params=params)
    assert reply.status == 200, (path, reply.status)
    assert reply.headers["Content-Type"].startswith("text/html")
    return HtmlResponse(url=sandbox.url + path, body=reply.body, encoding="utf-8")


def test_index_links_every_tracklist(sandbox: SandboxProcess) -> None:
    index = page(sandbox, "/site/")
    links = index.css("a.tracklist-link::attr(href)").getall()
    assert len(links) == sandbox.health()["tracklists"] >= 15
    assert links[0] == "/site/tracklists/1"
    limited = page(sandbox, "/site/", limit="2")
    assert limited.css("a.tracklist-link::attr(href)").getall() == links[:2]
    assert sandbox.get("/site/", params={"limit": "x"}).status == 400
    assert sandbox.get(f"/site/tracklists/{len(links) + 1}").status == 404


def test_tracklists_hold_the_catalog_and_some_bad_rows(sandbox: SandboxProcess) -> None:
    count = sandbox.health()["tracklists"]
    rows = []
    for number in range(1, count + 1):
        response = page(sandbox, f"/site/tracklists/{number}")
        assert response.css("h1.tracklist-title::text").get()
        tracks = response.css("ol.tracks li.track")
        positions = [int(li.attrib["data-position"]) for li in tracks]
        assert positions == list(range(1, len(tracks) + 1))
        for li in tracks:
            rows.append((li.css("span.artist::text").get(), li.css("span.title::text").get()))
    # the session sandbox runs with the default decoys and messy rows: the pages are exactly
    # the site model's rows (HTML-unescaped; an empty cell has no text node)
    catalog = Catalog.load(decoys=DEFAULT_DECOYS)
    model = [r for t in build_tracklists(catalog, DEFAULT_MESSY_SITE) for r in t.rows]
    assert rows == [(r.artist or None, r.title or None) for r in model]
    assert {r.track.index for r in model if r.track} == {t.index for t in catalog}  # every track
    clean = {r.title for r in model if r.track and r.style is None}
    assert len(clean) > len(catalog) * 0.6 and clean <= {t.title for t in catalog}
    assert sum(r.style is not None for r in model) == 129  # the DJ-tracklist way
    assert ("ID", "ID") in rows
    assert any(artist is None and title for artist, title in rows)  # empty artist
    assert any(artist and title is None for artist, title in rows)  # empty title
    assert any(artist not in (None, "ID") and title == "ID" for artist, title in rows)
    assert ("Boys Noize", "& Down") in rows and ("David Bowie", '"Heroes"') in rows
    assert len(rows) > len(catalog)  # anthems repeat across sets
