"""Fuzzy matching of tracks across providers (scrapy_apigw.core.matching, rapidfuzz)."""

from __future__ import annotations

import pytest

from scrapy_apigw.core.matching import (
    DEFAULT_THRESHOLD,
    artist_score,
    best_match,
    match_score,
    normalize,
    normalize_isrc,
    primary_artist,
    strip_featuring,
    title_score,
)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("We Are The People (ARTBAT Remix)", "We Are The People - ARTBAT Remix"),
        ("We Are The People [ARTBAT Remix]", "we are the people – artbat remix"),
        ("Titanium (feat. Sia)", "Titanium"),
        ("Titanium ft. Sia", "Titanium"),
        ("Röyksopp", "Royksopp"),
        ("Røyksopp", "Royksopp"),
        ("Strobe (Original Mix)", "Strobe - Radio Edit"),
        ("Mr. Brightside", "Mr Brightside"),
        ("Don't Stop", "Dont Stop"),
        ("Love & Hate", "Love and Hate"),
        ("ＦＵＬＬＷＩＤＴＨ", "fullwidth"),
    ],
)
def test_spellings_of_the_same_title_normalize_equal_and_score_100(a: str, b: str) -> None:
    assert normalize(a) == normalize(b)
    assert title_score(a, b) == 100.0


def test_normalize_keeps_remix_words_and_non_latin_scripts() -> None:
    assert normalize("We Are The People (ARTBAT Remix)") == "we are the people artbat remix"
    assert normalize("坂本龍一 - Merry Christmas") == "坂本龍一 merry christmas"


def test_normalize_does_not_treat_non_version_brackets_as_versions() -> None:
    assert normalize("(I Just) Died In Your Arms") == "i just died in your arms"
    assert normalize("Hold On - Live at Wembley") == "hold on live at wembley"


def test_different_remix_of_the_same_song_scores_lower_than_the_exact_one() -> None:
    query = "We Are The People (ARTBAT Remix)"
    exact = title_score(query, "We Are The People - ARTBAT Remix")
    other = title_score(query, "We Are The People (Tale Of Us Remix)")
    original = title_score(query, "We Are The People")
    assert exact == 100.0
    assert other < exact and original < exact
    artists = ["Empire Of The Sun"]
    assert match_score(query, artists, "We Are The People (Tale Of Us Remix)", artists) < 80
    assert match_score(query, artists, "We Are The People", artists) < 80


def test_remixer_credited_with_extra_words_is_still_the_same_version() -> None:
    assert title_score("Song (ARTBAT Remix)", "Song (ARTBAT Extended Remix)") == 100.0


def test_wrong_artist_with_the_same_title_does_not_match() -> None:
    score = match_score("Satan i gatan", ["Veronica Maggio"], "Satan i gatan", ["Timo Räisänen"])
    assert score < DEFAULT_THRESHOLD
    assert (
        best_match(
            [("Satan i gatan", ["Timo Räisänen"])],
            "Satan i gatan",
            ["Veronica Maggio"],
            lambda c: c,
        )
        is None
    )


def test_right_artist_with_another_song_does_not_match() -> None:
    assert match_score("Satan i gatan", ["Veronica Maggio"], "Sju sorger", ["Veronica Maggio"]) < 80


def test_artist_score_handles_guests_lists_and_accents() -> None:
    assert artist_score(["David Guetta feat. Sia"], ["David Guetta", "Sia"]) == 100.0
    assert artist_score(["David Guetta"], ["David Guetta", "Sia"]) == 100.0
    assert artist_score(["Röyksopp"], ["Royksopp"]) == 100.0
    assert artist_score(["The Killers"], ["Killers"]) == 100.0
    assert artist_score(["Above & Beyond"], ["Above & Beyond"]) == 100.0
    assert artist_score(["Axwell Λ Ingrosso"], ["Axwell /\\ Ingrosso"]) > 90


def test_featured_guest_in_the_query_is_optional_but_a_co_artist_is_not() -> None:
    assert artist_score(["Röyksopp feat. Robyn"], ["Röyksopp"]) == 100.0
    assert artist_score(["Röyksopp & Robyn"], ["Röyksopp"]) < 80
    assert artist_score(["Robyn feat. Röyksopp"], ["Röyksopp"]) < 80


def test_artist_score_does_not_accept_a_name_contained_in_another() -> None:
    assert artist_score(["Daft Punk"], ["Punk"]) < 70
    assert artist_score(["Veronica Maggio"], ["Timo Räisänen"]) < 50


def test_empty_inputs_score_zero() -> None:
    assert title_score("", "Titanium") == 0.0
    assert title_score("", "") == 0.0
    assert artist_score([], ["Sia"]) == 0.0
    assert artist_score([""], ["Sia"]) == 0.0


def test_match_score_is_the_weighted_mean_when_both_parts_pass_the_floor() -> None:
    # title 100, artist ~93.75: 0.6 * 100 + 0.4 * artist
    artist = artist_score(["Axwell Λ Ingrosso"], ["Axwell /\\ Ingrosso"])
    score = match_score(
        "Sun Is Shining", ["Axwell Λ Ingrosso"], "Sun Is Shining", ["Axwell /\\ Ingrosso"]
    )
    assert score == pytest.approx(0.6 * 100 + 0.4 * artist)


def test_best_match_picks_the_right_artist_among_same_titles() -> None:
    candidates = [
        ("Lyckliga gatan - Radio Edit", ["Timo Räisänen"]),
        ("Lyckliga gatan", ["Timo Räisänen"]),
        ("Lyckliga gatan", ["Nisse Hellberg"]),
        ("Lyckliga gatan", ["Anna-Lena Löfgren"]),
    ]
    found = best_match(candidates, "Lyckliga gatan", ["Anna-Lena Lofgren"], lambda c: c)
    assert found is not None
    assert found[0] == candidates[3]
    assert found[1] == 100.0


def test_best_match_breaks_ties_by_literal_title_then_order() -> None:
    candidates = [
        ("Lyckliga gatan - Radio Edit", ["Timo Räisänen"]),
        ("Lyckliga gatan", ["Timo Räisänen"]),
        ("Lyckliga gatan", ["Timo Räisänen"]),
    ]
    found = best_match(candidates, "Lyckliga gatan", ["Timo Räisänen"], lambda c: c)
    assert found is not None
    assert found[0] is candidates[1]


def test_best_match_respects_the_threshold_and_empty_candidates() -> None:
    candidates = [("Titanium", ["David Guetta"])]
    assert best_match([], "Titanium", ["David Guetta"], lambda c: c) is None
    assert best_match(candidates, "Titanium (feat. Sia)", ["David Guetta"], lambda c: c) == (
        candidates[0],
        100.0,
    )
    assert best_match(candidates, "Titanic", ["David Guetta"], lambda c: c, threshold=95) is None


def test_strip_featuring_and_primary_artist_build_search_values() -> None:
    assert strip_featuring("Titanium (feat. Sia)") == "Titanium"
    assert strip_featuring("Titanium [ft. Sia] - Radio Edit") == "Titanium - Radio Edit"
    assert strip_featuring("Stay (with Justin Bieber)") == "Stay"
    assert primary_artist("David Guetta Featuring Sia") == "David Guetta"
    assert primary_artist("", ("Foo", "Bar")) == "Foo"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("GBAAA9900303", "GBAAA9900303"),
        ("gbaaa9900303", "GBAAA9900303"),
        ("GB-SMU-45-66095", "GBSMU4566095"),
        (" US UM7 24 09273 ", "USUM72409273"),
        ("GBAAA990030", None),
        ("1BAAA9900303", None),
        ("GBAAA99003AB", None),
        ("", None),
        (None, None),
        (12345, None),
    ],
)
def test_isrc_is_normalized_or_rejected(raw: object, expected: str | None) -> None:
    assert normalize_isrc(raw) == expected
