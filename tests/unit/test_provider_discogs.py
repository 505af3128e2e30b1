"""DiscogsClient: release search, choice of release, release parsing, classification.

Answered from real recorded Discogs bodies (go-discogs and discogs_client test data, the
transcribed error bodies); the fake fetch decides each answer's kind with the client's own
``classify``, as the transport does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from provider_harness import FakeFetch, enrich, load

from scrapy_apigw.core.outcome import Outcome
from scrapy_apigw.exceptions import ProviderUnavailable
from scrapy_apigw.providers.base import ApiCall, ProviderResult, TrackContext
from scrapy_apigw.providers.discogs import DiscogsClient, release_date, release_fields

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


def test_at_most_two_releases_are_fetched_per_track() -> None:
    client = DiscogsClient()
    fetch = FakeFetch(client, routes({"/database/search": (200, load(TRASH80_SEARCH))}))
    result = enrich(client, TrackContext(artist="Trash80", title="Excuses"), fetch)
    assert fetch.paths == ["/database/search", "/releases/480740", "/releases/3329867"]
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
