"""DiscogsClient: release search, choice of release, release parsing, classification.

Answered from real recorded Discogs bodies (go-discogs and discogs_client test data, the
transcribed error bodies); the fake fetch decides each answer's kind with the client's own
``classify``, as the transport does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from provider_harness import FakeFetch, enrich, load

from scrapy_apigw.core.outcome import Outcome
from scrapy_apigw.exceptions import ProviderUnavailable
from scrapy_apigw.providers.base import ApiCall, ProviderResult, TrackContext
from scrapy_apigw.providers.discogs import (
    DiscogsClient,
    _lists_track,
    is_single_of,
    known_year,
    release_date,
    release_fields,
    search_fields,
)

TRASH80_SEARCH = "discogs/discogs_client_database_search_q-trash80_per_page-50_page-1.json"
HEALER_SEARCH = "discogs/go-discogs_database_search.json"
DARWINIA = "discogs/discogs_client_releases_3329867.json"


def errors() -> dict[str, Any]:
    return load("discogs/TRANSCRIBED_errors.json")  # type: ignore[no-any-return]


def routes(table: dict[str, tuple[int, Any]]) -> Callable[[ApiCall], tuple[int, Any]]:
    """Answer known paths from *table*; any other release is "Release not found." (404)."""

    def route(call: ApiCall) -> tuple[int, Any]:
        if call.path in table:
            return table[call.path]
        if call.path.startswith("/releases/"):
            return 404, errors()["404"]
        raise AssertionError(f"unexpected call {call}")

    return route


def test_release_10507194_fields_likemind_lm05_2017_uk() -> None:
    assert release_fields(load("discogs/go-discogs_releases_10507194.json")) == {
        "discogs_id": 10507194,
        "label": "Likemind",
        "catalog_number": "LM-05",
        "release_date": "2017-07",
        "release_country": "UK",
    }


def test_release_71989_label_loses_the_discogs_disambiguation_suffix() -> None:
    assert release_fields(load("discogs/go-discogs_releases_71989.json")) == {
        "discogs_id": 71989,
        "label": "Global Underground",  # recorded as "Global Underground (3)"
        "catalog_number": "GU023VIN",
        "release_date": "2002-09-30",
        "release_country": "UK",
    }


def test_release_1_the_persuader_svek_sk032_1999() -> None:
    assert release_fields(load("discogs/discogs_client_releases_1.json")) == {
        "discogs_id": 1,
        "label": "Svek",
        "catalog_number": "SK032",
        "release_date": "1999-03",
        "release_country": "Sweden",
    }


def test_not_on_label_release_has_no_label_and_catno_none_is_not_set() -> None:
    assert release_fields(load(DARWINIA)) == {
        "discogs_id": 3329867,
        "release_date": "2005",
        "release_country": "UK",
    }


@pytest.mark.parametrize(
    ("released", "year", "expected"),
    [
        ("2017-07-00", 2017, "2017-07"),
        ("1999-00-00", 1999, "1999"),
        ("2002-09-30", 2002, "2002-09-30"),
        ("2005", 2005, "2005"),
        ("0000-00-00", 0, None),
        (None, 2017, "2017"),
        ("garbage", 1999, "1999"),
        (None, 0, None),
        (None, None, None),
    ],
)
def test_released_is_normalized_to_iso_reduced_precision(
    released: str | None, year: int | None, expected: str | None
) -> None:
    assert release_date(released, year) == expected


def test_search_by_artist_and_track_then_reads_the_release_listing_the_track() -> None:
    client = DiscogsClient()
    fetch = FakeFetch(
        client,
        routes(
            {
                "/database/search": (200, load(TRASH80_SEARCH)),
                "/releases/3329867": (200, load(DARWINIA)),
            }
        ),
    )
    result = enrich(client, TrackContext(artist="Trash80 & Dma-Sc", title="Excuses"), fetch)
    assert fetch.calls == [
        ApiCall(
            "discogs",
            "search",
            "/database/search",
            (
                ("type", "release"),
                ("artist", "Trash80 & Dma-Sc"),
                ("track", "Excuses"),
                ("per_page", "5"),
            ),
        ),
        ApiCall("discogs", "release", "/releases/3329867"),
    ]
    assert result == ProviderResult(
        "ok", {"discogs_id": 3329867, "release_date": "2005", "release_country": "UK"}
    )


def test_earliest_release_of_the_artist_first_then_the_next_when_it_lacks_the_track() -> None:
    client = DiscogsClient()
    release_1 = load("discogs/discogs_client_releases_1.json")  # does not list "Excuses"
    fetch = FakeFetch(
        client,
        routes(
            {
                "/database/search": (200, load(TRASH80_SEARCH)),
                "/releases/480740": (200, release_1),
                "/releases/3329867": (200, load(DARWINIA)),
            }
        ),
    )
    result = enrich(client, TrackContext(artist="Trash80", title="Excuses"), fetch)
    # Trash80 releases: Hologram 2003 (480740), Darwinia 2005 (3329867), Icarus 2008 (x2).
    assert fetch.paths == ["/database/search", "/releases/480740", "/releases/3329867"]
    assert result.fields["discogs_id"] == 3329867


def test_at_most_three_releases_are_fetched_per_track() -> None:
    client = DiscogsClient()
    fetch = FakeFetch(client, routes({"/database/search": (200, load(TRASH80_SEARCH))}))
    result = enrich(client, TrackContext(artist="Trash80", title="Excuses"), fetch)
    assert fetch.paths == [
        "/database/search",
        "/releases/480740",
        "/releases/3329867",
        "/releases/1743771",
    ]
    assert result.status == "not_found"


def test_master_results_are_skipped_and_the_earliest_release_comes_first() -> None:
    client = DiscogsClient()
    fetch = FakeFetch(client, routes({"/database/search": (200, load(HEALER_SEARCH))}))
    result = enrich(client, TrackContext(artist="DJ Healer", title="Nothing 2 Loose"), fetch)
    # 1521183 is the master; 11849140 (2018) comes before 13416116 (2019).
    assert fetch.paths == ["/database/search", "/releases/11849140", "/releases/13416116"]
    assert result.status == "not_found"


def test_releases_by_another_artist_are_not_fetched() -> None:
    client = DiscogsClient()
    fetch = FakeFetch(client, routes({"/database/search": (200, load(TRASH80_SEARCH))}))
    result = enrich(client, TrackContext(artist="Daft Punk", title="Excuses"), fetch)
    assert fetch.paths == ["/database/search"]
    assert result == ProviderResult("not_found", reason="no release by this artist")


def test_search_values_drop_featuring_keep_punctuation_and_are_truncated() -> None:
    client = DiscogsClient(per_page=10)
    fetch = FakeFetch(
        client, routes({"/database/search": (200, {"pagination": {}, "results": []})})
    )
    enrich(
        client,
        TrackContext(artist="Röyksopp feat. Robyn", title='Eple (Live): "1/2" & [A]!'),
        fetch,
    )
    enrich(client, TrackContext(artist="A" * 5000, title="T" * 5000), fetch)
    assert fetch.calls[0].params == (
        ("type", "release"),
        ("artist", "Röyksopp"),
        ("track", 'Eple (Live): "1/2" & [A]!'),
        ("per_page", "10"),
    )
    assert fetch.calls[1].params[1:3] == (("artist", "A" * 200), ("track", "T" * 200))


def test_nothing_to_look_up_is_skipped() -> None:
    client = DiscogsClient()
    fetch = FakeFetch(client, routes({}))
    assert enrich(client, TrackContext(isrc="GBAAA9900303"), fetch).status == "skipped"
    assert fetch.calls == []


def test_missing_token_401_propagates_and_rate_limit_429_propagates() -> None:
    for status in (401, 429):
        client = DiscogsClient()
        fetch = FakeFetch(client, routes({"/database/search": (status, errors()[str(status)])}))
        with pytest.raises(ProviderUnavailable):
            enrich(client, TrackContext(artist="A", title="B"), fetch)


@pytest.mark.parametrize("per_page", [0, 101])
def test_per_page_outside_1_to_100_is_refused(per_page: int) -> None:
    with pytest.raises(ValueError, match="per_page"):
        DiscogsClient(per_page=per_page)


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, None, Outcome.SUCCESS),
        (400, None, Outcome.CLIENT_ERROR),
        (401, "401", Outcome.AUTH_FAILED),
        (403, None, Outcome.FORBIDDEN),
        (404, "404", Outcome.NOT_FOUND),
        (429, "429", Outcome.RATE_LIMITED),
        (500, "query", Outcome.SERVER_ERROR),
        (502, None, Outcome.SERVER_ERROR),
    ],
)
def test_classification_table(status: int, body: str | None, outcome: Outcome) -> None:
    if body == "query":
        data: Any = {"message": "Query time exceeded. Please try a simpler query."}
    else:
        data = errors()[body] if body else None
    assert DiscogsClient().classify(status, data) is outcome


# -- tracklists with headings, index entries, sub-tracks and per-track artists -----------------

GLOBAL_UNDERGROUND = "discogs/go-discogs_releases_71989.json"


def test_per_track_artists_of_a_recorded_release_decide_the_track() -> None:
    release = load(GLOBAL_UNDERGROUND)  # A "The Vibe" by Sotero, B by Layo & Bushwacka!...
    assert _lists_track(release, "The Vibe", ["Sotero"])
    assert not _lists_track(release, "The Vibe", ["Layo & Bushwacka!"])
    assert _lists_track(release, "Let The Good Times Roll", ["Layo & Bushwacka!"])
    # The item may credit a guest the entry leaves out, or the entry one the item leaves out.
    assert _lists_track(release, "Hold Back", ["Force Mass Motion"])
    assert _lists_track(release, "The Vibe", ["Sotero", "Some Guest"])


def test_heading_is_not_a_track_but_index_sub_tracks_are() -> None:
    release = copy.deepcopy(load("discogs/go-discogs_releases_10507194.json"))
    first, second = release["tracklist"]
    release["tracklist"] = [
        {"position": "", "type_": "heading", "title": "Bloom", "duration": ""},
        first,
        {"position": "", "type_": "index", "title": "Versions", "duration": "",
         "sub_tracks": [second]},
    ]  # fmt: skip
    assert not _lists_track(release, "Bloom", ["Likemind"])
    assert _lists_track(release, second["title"], ["Likemind"])
    release["tracklist"][2]["artists"] = [{"name": "Other Artist (2)", "anv": "", "join": ""}]
    # A sub-track without its own artists inherits its index entry's.
    assert not _lists_track(release, second["title"], ["Likemind"])
    assert _lists_track(release, second["title"], ["Other Artist"])


def test_split_release_listing_the_title_only_by_another_artist_is_not_taken() -> None:
    client = DiscogsClient()
    split = copy.deepcopy(load(DARWINIA))  # track 1 "Visitors From Dreams" is by Dma-Sc
    fetch = FakeFetch(
        client,
        routes(
            {
                "/database/search": (200, load(TRASH80_SEARCH)),
                "/releases/3329867": (200, split),
            }
        ),
    )
    result = enrich(client, TrackContext(artist="Trash80", title="Visitors From Dreams"), fetch)
    assert result == ProviderResult("not_found", reason="track not on the matching releases")
    assert "/releases/3329867" in [c.path for c in fetch.calls]


# -- the search result alone: fields, and when the release is still fetched -------------------


def search_result(name: str, release_id: int) -> dict[str, Any]:
    """The result of *release_id* in the recorded search *name*."""
    return next(r for r in load(name)["results"] if r["id"] == release_id)  # type: ignore[no-any-return]


def test_search_result_fields_of_the_recorded_go_discogs_search() -> None:
    assert search_fields(search_result(HEALER_SEARCH, 11849140)) == {
        "discogs_id": 11849140,
        "label": "All Possible Worlds",  # label[0] of a list
        "catalog_number": "APW-2",
        "release_date": "2018",  # the year only: a search result has no "released"
        "release_country": "Germany",
    }


def test_search_result_fields_of_the_older_format_label_as_a_string() -> None:
    assert search_fields(search_result(TRASH80_SEARCH, 1743771)) == {
        "discogs_id": 1743771,
        "label": "8bitpeoples",
        "catalog_number": "8BP086",
        "release_date": "2008",
        "release_country": "US",
    }
    # "Not On Label" and catno "none", as release_fields() reads them on the release.
    assert search_fields(search_result(TRASH80_SEARCH, 3329867)) == {
        "discogs_id": 3329867,
        "release_date": "2005",
        "release_country": "UK",
    }


def test_search_result_without_year_or_country_sets_neither() -> None:
    result = {"id": 5, "title": "A - B", "label": [], "catno": "", "year": "", "country": " "}
    assert search_fields(result) == {"discogs_id": 5}


def test_single_named_after_the_track_is_taken_from_the_search_in_one_call() -> None:
    client = DiscogsClient()
    fetch = FakeFetch(client, routes({"/database/search": (200, load(HEALER_SEARCH))}))
    track = TrackContext(artist="DJ Healer", title="Nothing 2 Loose", found={"release_date"})
    result = enrich(client, track, fetch)
    assert fetch.paths == ["/database/search"]
    assert result == ProviderResult(
        "ok",
        {
            "discogs_id": 11849140,  # the 2018 release, before the 2019 repress
            "label": "All Possible Worlds",
            "catalog_number": "APW-2",
            "release_date": "2018",
            "release_country": "Germany",
        },
        calls_saved={"release_from_search": 1},
    )


def test_single_is_fetched_when_no_earlier_provider_found_a_release_date() -> None:
    client = DiscogsClient()
    release = copy.deepcopy(load("discogs/go-discogs_releases_10507194.json"))
    release["id"], release["title"] = 11849140, "Nothing 2 Loose"
    release["tracklist"][0]["title"] = "Nothing 2 Loose"
    fetch = FakeFetch(
        client,
        routes(
            {"/database/search": (200, load(HEALER_SEARCH)), "/releases/11849140": (200, release)}
        ),
    )
    result = enrich(client, TrackContext(artist="DJ Healer", title="Nothing 2 Loose"), fetch)
    assert fetch.paths == ["/database/search", "/releases/11849140"]
    # The release's fields, its full date among them: "2017-07-00" -> "2017-07".
    assert result == ProviderResult("ok", release_fields(release))
    assert result.fields["release_date"] == "2017-07"


def test_remix_of_the_single_is_taken_from_the_search_but_the_original_of_a_remix_is_not() -> None:
    client = DiscogsClient()
    fetch = FakeFetch(client, routes({"/database/search": (200, load(HEALER_SEARCH))}))
    remix = TrackContext(
        artist="DJ Healer", title="Nothing 2 Loose (ARTBAT Remix)", found={"release_date"}
    )
    assert enrich(client, remix, fetch).fields["discogs_id"] == 11849140
    assert fetch.paths == ["/database/search"]
    remix_release = copy.deepcopy(load(HEALER_SEARCH))
    for result in remix_release["results"]:
        result["title"] = "DJ Healer - Nothing 2 Loose (ARTBAT Remix)"
    fetch = FakeFetch(client, routes({"/database/search": (200, remix_release)}))
    original = TrackContext(artist="DJ Healer", title="Nothing 2 Loose", found={"release_date"})
    # A release named after a remix may list only the remix: its tracklist decides (404 here).
    assert enrich(client, original, fetch).status == "not_found"
    assert fetch.paths == ["/database/search", "/releases/11849140", "/releases/13416116"]


def test_release_not_named_after_the_track_is_still_fetched_and_checked() -> None:
    client = DiscogsClient()
    fetch = FakeFetch(
        client,
        routes(
            {
                "/database/search": (200, load(TRASH80_SEARCH)),
                "/releases/3329867": (200, load(DARWINIA)),
            }
        ),
    )
    track = TrackContext(artist="Trash80", title="Visitors From Dreams", found={"release_date"})
    result = enrich(client, track, fetch)
    assert result == ProviderResult("not_found", reason="track not on the matching releases")
    assert fetch.paths == [
        "/database/search",
        "/releases/480740",
        "/releases/3329867",
        "/releases/1743771",  # MAX_RELEASE_LOOKUPS = 3
    ]


@pytest.mark.parametrize(
    ("release_title", "title", "single"),
    [
        ("Losing It", "Losing It", True),
        ("Losing It", "Losing It - Extended Mix", True),
        ("Losing It", "Losing It (ARTBAT Remix)", True),
        ("Losing It", "Losing It (feat. Someone)", True),
        ("Losing It (ARTBAT Remix)", "Losing It (ARTBAT Remix)", True),
        ("Losing It (ARTBAT Remix)", "Losing It", False),
        ("Losing It (ARTBAT Remix)", "Losing It (Tale Of Us Remix)", False),
        ("Losing It (Remixes)", "Losing It", False),
        ("Losing It EP", "Losing It", False),
        ("Greatest Hits", "Losing It", False),
        ("", "Losing It", False),
    ],
)
def test_is_single_of(release_title: str, title: str, single: bool) -> None:
    assert is_single_of(release_title, title) is single


def test_the_early_call_is_the_search_enrich_makes() -> None:
    client = DiscogsClient(per_page=10)
    fetch = FakeFetch(
        client, routes({"/database/search": (200, {"pagination": {}, "results": []})})
    )
    track = TrackContext(artist="Röyksopp feat. Robyn", title="Eple")
    early = client.early_calls(track)
    enrich(client, track, fetch)
    assert early == fetch.calls
    assert early[0].params == (
        ("type", "release"),
        ("artist", "Röyksopp"),
        ("track", "Eple"),
        ("per_page", "10"),
    )
    assert client.early_calls(TrackContext(isrc="GBAAA9900303")) == []


# -- several masters named after the track: told apart by the year -----------------------------


def hand_result(
    release_id: int, master_id: int, credit: str, year: str | None, title: str = "Strobe"
) -> dict[str, Any]:
    """A hand-built ``/database/search`` release result (the go-discogs fixture's keys)."""
    result: dict[str, Any] = {
        "id": release_id,
        "type": "release",
        "title": f"{credit} - {title}",
        "master_id": master_id,
        "format": ["File", "MP3", "Single"],
        "label": ["mau5trap"],
        "catno": f"MAU5{release_id:03d}",
        "country": "Canada",
        "genre": ["Electronic"],
        "style": ["Progressive House"],
    }
    if year is not None:
        result["year"] = year
    return result


def hand_search(*results: dict[str, Any]) -> dict[str, Any]:
    return {
        "pagination": {"page": 1, "pages": 1, "per_page": 5, "items": len(results), "urls": {}},
        "results": list(results),
    }


def hand_release(release_id: int, *titles: str) -> dict[str, Any]:
    """A minimal ``/releases/{id}`` body listing *titles*."""
    return {
        "id": release_id,
        "title": "Strobe",
        "year": 2009,
        "released": "2009-02-10",
        "country": "Canada",
        "labels": [{"name": "mau5trap", "catno": f"MAU5{release_id:03d}", "id": 2}],
        "formats": [{"name": "File", "qty": "1", "descriptions": ["Single"]}],
        "tracklist": [
            {"position": str(i + 1), "type_": "track", "title": t, "duration": ""}
            for i, t in enumerate(titles)
        ],
    }


def dated_track(**dates: str) -> TrackContext:
    """deadmau5 - Strobe, with the ``release_date`` each earlier provider found."""
    return TrackContext(
        artist="deadmau5",
        title="Strobe",
        found={"release_date"},
        found_values={"release_date": dict(dates)},
    )


#: The single (2009), a radio edit's release titled alike (2012, its own master) and a guest
#: version credited "deadmau5 & Guest" (2009, its own master): three single masters.
ORIGINAL, EDIT, GUEST = (
    hand_result(101, 1001, "deadmau5", "2009"),
    hand_result(102, 1002, "deadmau5", "2012"),
    hand_result(103, 1003, "deadmau5 & Guest", "2009"),
)


def test_known_year_is_the_earliest_year_earlier_providers_found() -> None:
    assert known_year(dated_track(spotify="2012-05-01", musicbrainz="2009")) == 2009
    assert known_year(dated_track(spotify="2013-06")) == 2013
    # Spotify's "0000" (unknown) and values that are not dates are left out.
    assert known_year(dated_track(spotify="0000", musicbrainz="2010-01-01")) == 2010
    assert known_year(dated_track(spotify="June 2009", musicbrainz="20091")) is None
    assert known_year(TrackContext(artist="a", title="t", found={"release_date"})) is None


def test_the_one_exact_single_of_the_tracks_year_is_taken_from_the_search() -> None:
    client = DiscogsClient()
    # Discogs' order puts the later radio edit first: the year decides, not the order.
    fetch = FakeFetch(client, routes({"/database/search": (200, hand_search(EDIT, ORIGINAL))}))
    result = enrich(client, dated_track(spotify="2009-02-10"), fetch)
    assert fetch.paths == ["/database/search"]
    assert result == ProviderResult(
        "ok",
        search_fields(ORIGINAL),
        calls_saved={"release_from_search": 1},
        match={"confidence": 1.0, "by": "search"},
    )
    assert result.fields["discogs_id"] == 101
    # A guest version of the same year is a doubt (0.85), not a rival of the exact credit.
    fetch = FakeFetch(
        client, routes({"/database/search": (200, hand_search(GUEST, EDIT, ORIGINAL))})
    )
    assert enrich(client, dated_track(spotify="2009"), fetch).fields["discogs_id"] == 101
    assert fetch.paths == ["/database/search"]


def test_the_earliest_year_earlier_providers_give_is_the_one_compared() -> None:
    client = DiscogsClient()
    fetch = FakeFetch(client, routes({"/database/search": (200, hand_search(EDIT, ORIGINAL))}))
    # Spotify dates a 2012 reissue album, MusicBrainz the first release: 2009 wins.
    result = enrich(client, dated_track(spotify="2012-11-01", musicbrainz="2009-02-10"), fetch)
    assert (fetch.paths, result.fields["discogs_id"]) == (["/database/search"], 101)


def test_two_exact_singles_of_the_tracks_year_are_fetched_that_years_first() -> None:
    client = DiscogsClient()
    same_year_edit = hand_result(104, 1004, "deadmau5", "2009")
    earlier = hand_result(106, 1006, "deadmau5", "2005")  # earliest, but not the track's year
    fetch = FakeFetch(
        client,
        routes(
            {
                "/database/search": (200, hand_search(EDIT, earlier, same_year_edit, ORIGINAL)),
                "/releases/104": (200, hand_release(104, "Strobe (Radio Edit)")),
                "/releases/101": (200, hand_release(101, "Strobe", "Strobe (Dub)")),
            }
        ),
    )
    result = enrich(client, dated_track(spotify="2009-02-10"), fetch)
    # Both 2009 releases before the 2005 and 2012 ones; the first lacks the track, the second
    # has it.
    assert fetch.paths == ["/database/search", "/releases/104", "/releases/101"]
    assert result == ProviderResult(
        "ok", release_fields(hand_release(101)), match={"confidence": 1.0, "by": "search"}
    )


def test_a_release_so_named_without_a_year_sends_the_candidates_to_their_tracklists() -> None:
    client = DiscogsClient()
    undated = hand_result(105, 1005, "deadmau5", None)
    fetch = FakeFetch(
        client,
        routes(
            {
                "/database/search": (200, hand_search(undated, EDIT, ORIGINAL)),
                "/releases/101": (200, hand_release(101, "Strobe")),
            }
        ),
    )
    result = enrich(client, dated_track(spotify="2009-02-10"), fetch)
    # The undated one may be of 2009 too: the 2009 one is fetched (first) and checked.
    assert fetch.paths == ["/database/search", "/releases/101"]
    assert result == ProviderResult(
        "ok", release_fields(hand_release(101)), match={"confidence": 1.0, "by": "search"}
    )


def test_no_exact_single_of_the_tracks_year_fetches_the_candidates() -> None:
    client = DiscogsClient()
    table = {
        "/database/search": (200, hand_search(EDIT, ORIGINAL)),
        "/releases/101": (200, hand_release(101, "Strobe")),
        "/releases/102": (200, hand_release(102, "Strobe (Radio Edit)")),
    }
    # The dates disagree with every candidate: the earliest first, as without a year.
    fetch = FakeFetch(client, routes(table))
    assert enrich(client, dated_track(spotify="2015"), fetch).fields["discogs_id"] == 101
    assert fetch.paths == ["/database/search", "/releases/101"]
    # The only release of that year is a guest version: its credit is a doubt, so it is read
    # (and kept at 0.85 while the next candidate is read too).
    guest_only = hand_search(hand_result(103, 1003, "deadmau5 & Guest", "2009"), EDIT)
    table = {
        "/database/search": (200, guest_only),
        "/releases/103": (200, hand_release(103, "Strobe (feat. Guest)")),
        "/releases/102": (200, hand_release(102, "Strobe (Radio Edit)")),
    }
    fetch = FakeFetch(client, routes(table))
    result = enrich(client, dated_track(spotify="2009"), fetch)
    assert fetch.paths == ["/database/search", "/releases/103", "/releases/102"]
    assert result.fields["discogs_id"] == 103 and result.match == {
        "confidence": 0.85,
        "by": "search",
    }
    # Without the values behind track.found (a date, but whose?), the year cannot decide.
    fetch = FakeFetch(
        client,
        routes(
            {
                "/database/search": (200, hand_search(EDIT, ORIGINAL)),
                "/releases/101": (200, hand_release(101, "Strobe")),
            }
        ),
    )
    track = TrackContext(artist="deadmau5", title="Strobe", found={"release_date"})
    assert enrich(client, track, fetch).fields["discogs_id"] == 101
    assert fetch.paths == ["/database/search", "/releases/101"]
