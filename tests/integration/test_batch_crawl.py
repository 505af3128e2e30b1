"""Batching end to end against the sandbox (issue 7 section 1): the exact calls in its log.

- Spotify tracks by id and their audio features go in one ``?ids=`` call each, MusicBrainz's
  ISRC lookups in one ``isrc:(A OR B ...)`` search; an unknown id (a ``null`` entry) is not
  found for its item only; every id is cached on its own, so a later single lookup hits;
- batch endpoints that answer 403 (``--spotify-batch forbidden``) fall back to single calls and
  are not asked again in the crawl; no item is lost.

The window is long (2 s at speed 10) so that every lookup of a crawl joins one batch whatever
the machine's load: the batches are then known exactly.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from conftest import gateway_settings, provider_calls, run_crawl
from fixtures_sandbox import start_sandbox_process
from spiders import ItemsSpider

SPEED = 10.0
WINDOW = 20.0  # seconds; divided by the sandbox speed: 2 s
UNKNOWN_ID = "0000000000000000000000"  # a valid Spotify id no track has


@pytest.fixture(scope="module")
def batch_forbidden_sandbox():
    """Spotify's batch endpoints answer 403, as for development-mode apps since 2026-02."""
    sandbox = start_sandbox_process(SPEED, "--spotify-batch", "forbidden")
    yield sandbox
    sandbox.stop()


def catalog_tracks(sandbox, count: int) -> list[dict]:
    """*count* catalog tracks MusicBrainz lists under their ISRC."""
    tracks = [t for t in sandbox.catalog()["tracks"] if t["musicbrainz_isrc_listed"]]
    assert len(tracks) >= count
    return tracks[:count]


def calls_of(sandbox, provider: str) -> list[dict]:
    """The provider's API calls (not Spotify's token requests)."""
    log = provider_calls(sandbox.log())
    return [r for r in log if r["provider"] == provider and "/api/token" not in r["path"]]


def endpoint(record: dict) -> str:
    return record["path"].split("/v1/", 1)[-1].split("/ws/2/", 1)[-1]


@pytest_twisted.ensureDeferred
async def test_tracks_audio_features_and_isrcs_are_looked_up_in_one_batch_each(sandbox, tmp_path):
    tracks = catalog_tracks(sandbox, 12)
    items = [{"spotify_id": t["spotify_id"]} for t in tracks] + [{"spotify_id": UNKNOWN_ID}]
    settings = gateway_settings(
        sandbox, tmp_path, APIGW_WATERFALL=["spotify", "musicbrainz"], APIGW_BATCH_WINDOW=WINDOW
    )
    result = await run_crawl(ItemsSpider, settings, items=items)

    # Every id is asked once, in one batch per endpoint; the first item may be sent on its own
    # when it is alone in the pipeline (a loaded machine: the others not scraped yet), since a
    # batch is sent at once when every item in flight waits in one.
    spotify = calls_of(sandbox, "spotify")
    assert {r["status"] for r in spotify} == {200}
    asked = {"tracks": [], "audio-features": []}
    for record in spotify:
        kind, _, single = endpoint(record).partition("/")
        asked[kind] += [single] if single else record["query"]["ids"].split(",")
    assert sorted(asked["tracks"]) == sorted(i["spotify_id"] for i in items)
    assert sorted(asked["audio-features"]) == sorted(t["spotify_id"] for t in tracks)
    assert len(spotify) <= 4
    musicbrainz = calls_of(sandbox, "musicbrainz")
    assert {(endpoint(r), r["status"]) for r in musicbrainz} <= {("recording", 200)}
    isrcs = []
    for record in musicbrainz:
        query = record["query"]
        assert query["limit"] == "100"
        isrcs += query["query"].removeprefix("isrc:").strip("()").split(" OR ")
    assert sorted(isrcs) == sorted(t["isrc"] for t in tracks)
    assert len(musicbrainz) <= 2

    assert len(result.items) == 13  # none lost
    by_id = {i["spotify_id"]: i for i in result.items}
    for track in tracks:
        item = by_id[track["spotify_id"]]
        assert item["enrichment_status"] == "completed"
        assert item["isrc"] == track["isrc"]
        assert item["bpm"] == round(track["tempo"], 1)
        assert item["musicbrainz_id"] == track["musicbrainz_recording_id"]
    # Its null entry: not found for it alone (and MusicBrainz has nothing to look up).
    assert by_id[UNKNOWN_ID]["enrichment_sources"] == []
    stats = result.stats
    batched = {"track": 13, "audio_features": 12}
    for kind, ids in batched.items():
        sent, carried = (
            stats[f"apigw/spotify/batch/{kind}/sent"],
            stats[f"apigw/spotify/batch/{kind}/ids"],
        )
        assert sent == 1 and carried in (ids - 1, ids)  # one id sent alone at most
        assert stats[f"apigw/spotify/batch/{kind}/saved"] == carried - 1
    assert stats["apigw/musicbrainz/batch/isrc/sent"] == 1
    assert stats["apigw/musicbrainz/batch/isrc/ids"] in (11, 12)
    assert stats["apigw/spotify/results/not_found"] == 1

    # Each id was cached on its own: a single lookup (no batching) of one of them hits.
    sandbox.reset()
    single = gateway_settings(
        sandbox, tmp_path, APIGW_WATERFALL=["spotify", "musicbrainz"], APIGW_BATCH_WINDOW=0
    )
    again = await run_crawl(ItemsSpider, single, items=[{"spotify_id": tracks[5]["spotify_id"]}])
    assert provider_calls(sandbox.log()) == []
    assert again.items[0]["bpm"] == round(tracks[5]["tempo"], 1)
    assert again.items[0]["musicbrainz_id"] == tracks[5]["musicbrainz_recording_id"]
    assert again.stats["apigw/spotify/cache/hit"] == 2  # the track, its audio features
    assert again.stats["apigw/musicbrainz/cache/hit"] == 1  # its ISRC


@pytest_twisted.ensureDeferred
async def test_refused_batch_endpoints_fall_back_to_single_calls_and_are_not_asked_again(
    batch_forbidden_sandbox, tmp_path
):
    sandbox = batch_forbidden_sandbox
    sandbox.reset()
    tracks = catalog_tracks(sandbox, 60)  # more than the 50 ids of one /tracks?ids= batch
    items = [{"spotify_id": t["spotify_id"]} for t in tracks]
    settings = gateway_settings(
        sandbox, tmp_path, APIGW_WATERFALL=["spotify"], APIGW_BATCH_WINDOW=WINDOW
    )
    result = await run_crawl(ItemsSpider, settings, items=items)

    calls = [(endpoint(r), r["status"]) for r in calls_of(sandbox, "spotify")]
    assert calls.count(("tracks", 403)) == 1  # the full batch of 50; the other 10 not sent
    assert calls.count(("audio-features", 403)) == 1
    singles = [c for c in calls if c[0].startswith(("tracks/", "audio-features/"))]
    assert len(singles) == 120 and {s for _, s in singles} == {200}
    assert len(calls) == 122

    assert len(result.items) == 60
    assert {i["enrichment_status"] for i in result.items} == {"completed"}
    assert all(i["bpm"] > 0 for i in result.items)
    stats = result.stats
    assert stats["apigw/spotify/batch/track/refused"] == 1
    assert stats["apigw/spotify/batch/audio_features/refused"] == 1
    assert stats["apigw/spotify/batch/track/sent"] == 1
    assert stats["apigw/spotify/batch/audio_features/sent"] == 1

    # The next crawl with the same cache (APIGW_REFUSAL_TTL) asks no batch endpoint at all.
    sandbox.reset()
    others = catalog_tracks(sandbox, 64)[60:]  # not cached yet
    again = await run_crawl(
        ItemsSpider, settings, items=[{"spotify_id": t["spotify_id"]} for t in others]
    )
    calls = [(endpoint(r), r["status"]) for r in calls_of(sandbox, "spotify")]
    assert sorted(calls) == sorted(
        [(f"tracks/{t['spotify_id']}", 200) for t in others]
        + [(f"audio-features/{t['spotify_id']}", 200) for t in others]
    )
    assert {i["enrichment_status"] for i in again.items} == {"completed"}
    assert "apigw/spotify/batch/track/refused" not in again.stats
    assert "apigw/spotify/batch/track/sent" not in again.stats
