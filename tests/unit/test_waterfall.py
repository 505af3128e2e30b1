"""Waterfall status rules and merging, with in-test provider clients (pure logic)."""

import pytest
import pytest_twisted
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet.defer import Deferred

from scrapy_apigw.enrichment.run import ItemRun
from scrapy_apigw.enrichment.waterfall import EarlyCalls, Waterfall, status_of
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


class ValueRecorder(Recorder):
    """Records the values behind the fields earlier providers found (``track.found_values``)."""

    async def enrich(self, track, fetch):
        self.found.append({name: dict(by) for name, by in track.found_values.items()})
        return self.result


@pytest_twisted.ensureDeferred
async def test_later_providers_see_each_earlier_providers_values_in_waterfall_order():
    spotify = ValueRecorder("spotify", ProviderResult("ok", {"release_date": "2012-05-01"}))
    musicbrainz = ValueRecorder(
        "musicbrainz", ProviderResult("ok", {"release_date": "2009", "bpm": None})
    )
    discogs = ValueRecorder("discogs", ProviderResult("ok", {"label": "L"}))
    await Waterfall([spotify, musicbrainz, discogs], fetch=None).enrich(
        TrackContext(artist="a", title="t")
    )
    # Every provider's value is kept (not only the first source's); None is not a value.
    assert [spotify.found, musicbrainz.found, discogs.found] == [
        [{}],
        [{"release_date": {"spotify": "2012-05-01"}}],
        [{"release_date": {"spotify": "2012-05-01", "musicbrainz": "2009"}}],
    ]


async def turns(n=5):
    """Let the event loop run *n* turns (the started calls reach the fetch)."""
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    for _ in range(n):
        await deferLater(reactor, 0, lambda: None)


class Gated:
    """A fetch whose answers the test releases one by one; records the order of the asks."""

    def __init__(self):
        self.asked = []
        self.pending = {}

    async def __call__(self, call, run=None):
        self.asked.append(call.provider)
        self.pending[call.provider] = deferred = Deferred()
        return await maybe_deferred_to_future(deferred)

    def answer(self, provider, data):
        self.pending.pop(provider).callback(ApiAnswer("ok", 200, data))

    def fail(self, provider, exc):
        self.pending.pop(provider).errback(exc)


class Early(Asking):
    """Asks one search, built from the input alone (its early call), and reports what the
    earlier providers had found when it read the answer."""

    def __init__(self, name):
        super().__init__(name)
        self.found = []

    def early_calls(self, track):
        return [ApiCall(self.name, "search", "/search", (("q", track.title),))]

    async def enrich(self, track, fetch):
        answer = await fetch(self.early_calls(track)[0])
        self.found.append(set(track.found))
        return ProviderResult("ok", {f"{self.name}_id": answer.data})


@pytest_twisted.ensureDeferred
async def test_an_early_call_is_sent_with_the_first_provider_and_answered_in_its_turn():
    fetch = Gated()
    late = Early("discogs")
    done = deferred_from_coro(
        Waterfall([Asking("spotify"), Asking("musicbrainz"), late], fetch).enrich(
            TrackContext(artist="a", title="t")
        )
    )
    await turns()
    assert sorted(fetch.asked) == ["discogs", "spotify"]  # before Spotify answered
    fetch.answer("discogs", "d-1")
    fetch.answer("spotify", "s-1")
    await turns()
    assert sorted(fetch.asked[:2]) == ["discogs", "spotify"]
    assert fetch.asked[2:] == ["musicbrainz"]
    assert late.found == []  # its answer waits for the providers before it
    fetch.answer("musicbrainz", "m-1")
    result = await done
    assert late.found == [{"spotify_id", "musicbrainz_id"}]
    assert len(fetch.asked) == 3  # no second search
    assert result.fields == {"spotify_id": "s-1", "musicbrainz_id": "m-1", "discogs_id": "d-1"}


@pytest_twisted.ensureDeferred
async def test_an_early_call_that_failed_fails_its_provider_in_its_turn():
    fetch = Gated()
    done = deferred_from_coro(
        Waterfall([Asking("spotify"), Early("discogs")], fetch).enrich(
            TrackContext(artist="a", title="t")
        )
    )
    await turns()
    fetch.fail("discogs", CircuitOpenError("discogs", 12.0))
    fetch.answer("spotify", "s-1")
    result = await done
    assert result.status == "partial"
    assert result.fields == {"spotify_id": "s-1"}
    assert result.item_fields()["enrichment_errors"]["discogs"].startswith("circuit open")


@pytest_twisted.ensureDeferred
async def test_an_early_call_not_taken_is_cancelled_when_the_item_ends():
    fetch = Gated()
    run = ItemRun()
    waterfall = Waterfall([Asking("spotify"), Early("discogs")], fetch)
    done = deferred_from_coro(run.run(waterfall.enrich(TrackContext(artist="a", title="t"), run)))
    await turns()
    discogs = fetch.pending["discogs"]
    run.end("item timeout (1 s)")
    results = await done
    assert discogs.called  # cancelled, and its CancelledError consumed
    assert sorted(fetch.asked) == ["discogs", "spotify"]
    assert waterfall.verdict(results, run.reason).item_fields()["enrichment_errors"] == {
        "spotify": "item timeout (1 s)",
        "discogs": "item timeout (1 s)",
    }


def test_early_calls_of_a_client_without_them_start_nothing():
    early = EarlyCalls(fetch=None)
    early.start(Asking("spotify"), TrackContext(artist="a", title="t"))
    assert len(early) == 0
