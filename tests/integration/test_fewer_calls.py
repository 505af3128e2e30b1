"""Calls a track costs at Discogs and Last.fm when the first answer has what is needed (issue 7
section 1): counted exactly in the sandbox's request log on a small deterministic catalog."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest_twisted
from conftest import gateway_settings, provider_calls, run_crawl
from spiders import ItemsSpider


def catalog_tracks(sandbox: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Three catalog tracks with a Discogs release (the first two with a Last.fm MBID, the
    first without one: Last.fm does not know its MusicBrainz MBID), and the first track without
    a Discogs release: the same in every run."""
    tracks = sandbox.catalog()["tracks"]
    found = [t for t in tracks if t["discogs_release_id"] and t["lastfm_mbid"]][:2]
    found += [t for t in tracks if t["discogs_release_id"] and not t["lastfm_mbid"]][:1]
    missing = next(t for t in tracks if t["discogs_release_id"] is None)
    return found, missing


def item(track: dict[str, Any]) -> dict[str, str]:
    return {"artist": " & ".join(track["artists"]), "title": track["title"]}


def calls_by_endpoint(sandbox: Any, provider: str) -> Counter[str]:
    """*provider*'s calls in the sandbox log, by endpoint (Discogs path kind, Last.fm method)."""
    counts: Counter[str] = Counter()
    for record in provider_calls(sandbox.log()):
        if record["provider"] != provider:
            continue
        if provider == "lastfm":
            counts[str(record["query"]["method"])] += 1
        else:
            counts[record["path"].split("/")[2]] += 1  # /discogs/database/..., /discogs/releases/..
    return counts


@pytest_twisted.ensureDeferred
async def test_full_waterfall_costs_one_discogs_and_one_lastfm_call_per_track(sandbox, tmp_path):
    found, missing = catalog_tracks(sandbox)
    sandbox.reset()
    settings = gateway_settings(sandbox, tmp_path)
    result = await run_crawl(ItemsSpider, settings, items=[item(t) for t in [*found, missing]])

    assert result.statuses() == {"completed": 4}, "no item lost, every provider answered"
    # Spotify and MusicBrainz found a release date: every Discogs release is a single named after
    # its track, taken from the search result alone.
    assert calls_by_endpoint(sandbox, "discogs") == {"database": 4}
    assert result.stats["apigw/discogs/calls_saved/release_from_search"] == 3
    # getInfo by artist and title lists the top tags: no track.getTopTags; and no getInfo by
    # the MusicBrainz MBID first, which Last.fm does not know for found[2].
    assert calls_by_endpoint(sandbox, "lastfm") == {"track.getInfo": 4}
    assert result.stats["apigw/lastfm/calls_saved/toptags_from_getinfo"] == 4
    by_title = {i["title"]: i for i in result.items}
    for track in found:
        enriched = by_title[track["title"]]
        assert enriched["discogs_id"] == track["discogs_release_id"]
        assert enriched["label"] and enriched["release_country"]
        assert 1 <= len(enriched["lastfm_tags"]) <= 5  # the sandbox's getInfo lists 5 at most
    assert "discogs_id" not in by_title[missing["title"]]
    assert all(i["musicbrainz_id"] for i in result.items)


@pytest_twisted.ensureDeferred
async def test_without_an_earlier_release_date_discogs_fetches_each_release(sandbox, tmp_path):
    found, missing = catalog_tracks(sandbox)
    sandbox.reset()
    settings = gateway_settings(sandbox, tmp_path, APIGW_WATERFALL=["discogs", "lastfm"])
    result = await run_crawl(ItemsSpider, settings, items=[item(t) for t in [*found, missing]])

    assert result.statuses() == {"completed": 4}
    # Only the release has the month and day of release_date: one release per found track.
    assert calls_by_endpoint(sandbox, "discogs") == {"database": 4, "releases": 3}
    assert "apigw/discogs/calls_saved/release_from_search" not in result.stats
    # getInfo by artist and title, which lists the tags too.
    assert calls_by_endpoint(sandbox, "lastfm") == {"track.getInfo": 4}
    dates = [i.get("release_date") for i in result.items if "discogs_id" in i]
    assert len(dates) == 3 and all(dates), dates
