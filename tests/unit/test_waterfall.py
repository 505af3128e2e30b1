"""Waterfall status rules and merging, with in-test provider clients (pure logic)."""

import pytest
import pytest_twisted

from scrapy_apigw.enrichment.waterfall import Waterfall, status_of
from scrapy_apigw.exceptions import CircuitOpenError
from scrapy_apigw.providers.base import ApiAnswer, ApiCall, ProviderResult, TrackContext


@pytest.mark.parametrize(
    "statuses, expected",
    [
        (["ok", "ok", "not_found"], "completed"),
        (["ok", "failed"], "partial"),
        (["failed", "failed"], "failed"),
        (["skipped", "ok"], "completed"),
        (["skipped"], "skipped"),
        ([], "skipped"),
    ],
)
def test_status_of_counts_only_providers_that_were_asked(statuses, expected):
    assert status_of([ProviderResult(s) for s in statuses]) == expected


class Client:
    def __init__(self, name, result=None, exc=None):
        self.name, self.result, self.exc = name, result, exc
        self.seen = []

    async def enrich(self, track, fetch):
        self.seen.append((track.isrc, track.musicbrainz_id))
        if self.exc:
            raise self.exc
        if self.name == "first":
            track.isrc = "GBAAA9900303"
        return self.result

    def classify(self, status, data):
        raise AssertionError


@pytest_twisted.ensureDeferred
async def test_first_source_wins_and_later_providers_see_earlier_ids():
    first = Client("first", ProviderResult("ok", {"isrc": "GBAAA9900303", "label": "A"}))
    second = Client("second", ProviderResult("ok", {"label": "B", "bpm": 128.0}))
    result = await Waterfall([first, second], fetch=None).enrich(
        TrackContext(artist="a", title="t")
    )
    assert result.fields == {"isrc": "GBAAA9900303", "label": "A", "bpm": 128.0}
    assert second.seen == [("GBAAA9900303", None)]
    assert result.status == "completed"
    assert result.item_fields()["enrichment_sources"] == ["first", "second"]


@pytest_twisted.ensureDeferred
async def test_a_failing_provider_makes_the_item_partial_with_its_reason():
    ok = Client("spotify", ProviderResult("ok", {"bpm": 120.0}))
    down = Client("musicbrainz", exc=CircuitOpenError("musicbrainz", 12.0))
    broken = Client("discogs", exc=KeyError("results"))
    result = await Waterfall([ok, down, broken], fetch=None).enrich(
        TrackContext(artist="a", title="t")
    )
    fields = result.item_fields()
    assert fields["enrichment_status"] == "partial"
    assert fields["enrichment_errors"]["musicbrainz"].startswith("circuit open")
    assert fields["enrichment_errors"]["discogs"] == "internal error: KeyError"
    assert fields["bpm"] == 120.0


@pytest_twisted.ensureDeferred
async def test_nothing_to_look_up_is_skipped_without_calling_anyone():
    client = Client("spotify", ProviderResult("ok"))
    result = await Waterfall([client], fetch=None).enrich(TrackContext(artist="", title="Song"))
    assert result.status == "skipped" and client.seen == []


class Asking:
    """A client that makes one call and reports what the answer holds."""

    def __init__(self, name):
        self.name = name

    async def enrich(self, track, fetch):
        answer = await fetch(ApiCall(self.name, "search", "/search"))
        return ProviderResult("ok", {f"{self.name}_id": answer.data})

    def classify(self, status, data):
        raise AssertionError


@pytest_twisted.ensureDeferred
async def test_a_provider_answered_from_a_stale_entry_is_listed_in_enrichment_stale():
    async def fetch(call):
        stale = call.provider == "musicbrainz"
        return ApiAnswer("ok", 200, f"{call.provider}-1", from_cache=stale, stale=stale)

    clients = [Asking("spotify"), Asking("musicbrainz")]
    result = await Waterfall(clients, fetch=fetch).enrich(TrackContext(artist="a", title="t"))
    fields = result.item_fields()
    assert fields["enrichment_status"] == "completed"
    assert fields["enrichment_stale"] == ["musicbrainz"]
    assert fields["enrichment_sources"] == ["spotify", "musicbrainz"]
    assert fields["musicbrainz_id"] == "musicbrainz-1"


@pytest_twisted.ensureDeferred
async def test_no_stale_answer_no_enrichment_stale_field():
    async def fetch(call):
        return ApiAnswer("ok", 200, "x")

    result = await Waterfall([Asking("spotify")], fetch=fetch).enrich(
        TrackContext(artist="a", title="t")
    )
    assert "enrichment_stale" not in result.item_fields()


class Recorder:
    """Returns *result* and records the fields earlier providers had found (``track.found``)."""

    def __init__(self, name, result):
        self.name, self.result, self.found = name, result, []

    async def enrich(self, track, fetch):
        self.found.append(set(track.found))
        return self.result


@pytest_twisted.ensureDeferred
async def test_later_providers_see_the_fields_earlier_ones_found():
    first = Recorder("first", ProviderResult("ok", {"release_date": "2001", "bpm": None}))
    failed = Recorder("second", ProviderResult("failed", reason="down"))
    third = Recorder("third", ProviderResult("ok", {"label": "L"}))
    last = Recorder("last", ProviderResult("not_found"))
    await Waterfall([first, failed, third, last], fetch=None).enrich(
        TrackContext(artist="a", title="t")
    )
    # A None value is not a found field.
    assert [first.found, failed.found, third.found, last.found] == [
        [set()],
        [{"release_date"}],
        [{"release_date"}],
        [{"release_date", "label"}],
    ]
