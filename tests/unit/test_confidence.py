"""Match confidence (scrapy_apigw.core.confidence) on known values, and the scraped-side tidying
(scrapy_apigw.core.scraped)."""

from __future__ import annotations

import pytest

from scrapy_apigw.core.confidence import (
    Candidate,
    Wanted,
    best_candidate,
    confidence,
    duration_factor,
    note_tags,
    parse_title,
    translit,
    version_factor,
)
from scrapy_apigw.core.scraped import (
    search_title,
    split_artists,
    split_line,
    strip_label,
    unidentified,
)


@pytest.mark.parametrize(
    ("title", "base", "tags"),
    [
        ("Strobe", "strobe", set()),
        ("Strobe (Original Mix)", "strobe", set()),
        ("Strobe - Original Mix", "strobe", set()),
        ("Strobe (Club Edit)", "strobe", {"club"}),
        ("Strobe - Radio Edit", "strobe", {"radio"}),
        ("Strobe (Edit)", "strobe", {"radio"}),
        ("Strobe [Extended Mix]", "strobe", {"extended"}),
        ("Strobe (Michael Woods Remix)", "strobe", {"remix:michael woods"}),
        ("Strobe - Michael Woods Remix", "strobe", {"remix:michael woods"}),
        ("Strobe (ARTBAT Extended Remix)", "strobe", {"extended", "remix:artbat"}),
        ("Hold On - Live at Wembley", "hold on", {"live"}),
        ("Wonderwall (Acoustic Version)", "wonderwall", {"acoustic"}),
        ("Afraid To Sleep - VIP Mix", "afraid to sleep", {"vip"}),
        ("Midnight City (Instrumental)", "midnight city", {"instrumental"}),
        ("Cupid - Sped Up Version", "cupid", {"sped up"}),
        ("Cupid (Slowed + Reverb)", "cupid", {"slowed"}),
        ("Titanium (Karaoke Version)", "titanium", {"cover"}),
        ("Titanium (In the Style of David Guetta)", "titanium", {"cover"}),
        ("Bohemian Rhapsody - Remastered 2011", "bohemian rhapsody", {"remaster"}),
        ("Bohemian Rhapsody - 2011 Remaster", "bohemian rhapsody", {"remaster"}),
        ("Song - Single Version", "song", set()),
        ("Gecko (Overdrive) [Radio Edit]", "gecko overdrive", {"radio"}),
        ("(I Just) Died In Your Arms", "i just died in your arms", set()),
        ("Song (Get Up)", "song get up", set()),
        ("Live Forever", "live forever", set()),
    ],
)
def test_titles_split_into_base_and_version_tags(title: str, base: str, tags: set[str]) -> None:
    assert parse_title(title)[:2] == (base, frozenset(tags))


def test_featured_guests_are_read_from_the_title() -> None:
    assert parse_title("Titanium (feat. Sia) - Radio Edit") == (
        "titanium",
        frozenset({"radio"}),
        ("sia",),
    )
    assert parse_title("Titanium ft. Sia & Someone")[2] == ("sia", "someone")


@pytest.mark.parametrize(
    ("note", "tags"),
    [
        ("", set()),
        ("single version", set()),
        ("original mix", set()),
        ("explicit", set()),
        ("live, 2003-07-12: Budokan", {"live"}),
        ("radio edit", {"radio"}),
        ("Dolby Atmos", {"atmos"}),
        ("dj mix", {"remix:dj"}),
        ("take 2", {"other"}),
    ],
)
def test_musicbrainz_disambiguation_notes(note: str, tags: set[str]) -> None:
    assert note_tags(note) == frozenset(tags)


def test_transliteration_folds_accents_and_other_scripts() -> None:
    assert translit("Beyoncé") == "beyonce"
    assert translit("Sigur Rós") == "sigur ros"
    assert translit("Røyksopp") == "royksopp"
    assert translit("Утекай") == "utekai"
    assert translit("Мумий Тролль") == "mumii troll'"


def test_version_factor_known_values() -> None:
    none: frozenset[str] = frozenset()
    assert version_factor(none, none) == 1.0
    assert version_factor(none, frozenset({"remaster"})) == 0.97
    assert version_factor(frozenset({"remaster"}), none) == 0.97
    assert version_factor(none, frozenset({"other"})) == 0.9
    assert version_factor(frozenset({"remix:"}), frozenset({"remix:artbat"})) == 0.9
    assert version_factor(frozenset({"remix:art bat"}), frozenset({"remix:artbat"})) == 1.0
    assert version_factor(frozenset({"remix:artbat"}), frozenset({"remix:tale of us"})) == 0.0
    assert version_factor(none, frozenset({"club"})) == 0.0
    assert version_factor(frozenset({"club"}), frozenset({"radio"})) == 0.0
    assert version_factor(frozenset({"live"}), frozenset({"live", "remaster"})) == 0.97


def test_duration_factor_known_values() -> None:
    assert duration_factor(None, 200000) == 1.0
    assert duration_factor(200000, 0) == 1.0
    assert duration_factor(200000, 203000) == 1.0
    assert duration_factor(200000, 205000) == pytest.approx(0.96)
    assert duration_factor(200000, 210000) == pytest.approx(0.86)
    assert duration_factor(200000, 220000) == pytest.approx(0.66)
    assert duration_factor(637000, 215000) == 0.3


def test_confidence_known_values() -> None:
    timo = Wanted("Lyckliga gatan", ["Timo Räisänen"])
    assert confidence(timo, Candidate("Lyckliga gatan", ["Timo Raisanen"])) == 1.0
    assert confidence(timo, Candidate("Lyckliga gatan - Radio Edit", ["Timo Räisänen"])) == 0.4
    assert confidence(timo, Candidate("Lyckliga gatan - Remastered", ["Timo Räisänen"])) == 0.97
    assert (
        confidence(timo, Candidate("Lyckliga gatan", ["Timo Räisänen"], compilation=True)) == 0.98
    )
    # another artist: the artist part alone, under 0.7
    assert confidence(timo, Candidate("Lyckliga gatan", ["Nisse Hellberg"])) < 0.7
    # duration: 10 s off costs 0.14
    strobe = Wanted("Strobe", ["deadmau5"], duration_ms=637000)
    assert confidence(strobe, Candidate("Strobe", ["deadmau5"], 647000)) == 0.86
    # ISRC agreement keeps a quarter of the doubt; disagreement costs 10 %
    isrc = Wanted("Strobe", ["deadmau5"], duration_ms=637000, isrc="CA5KR0900037")
    assert confidence(isrc, Candidate("Strobe", ["deadmau5"], 647000, ["CA5KR0900037"])) == 0.965
    assert confidence(isrc, Candidate("Strobe", ["deadmau5"], None, ["GBXXX0900001"])) == 0.9
    # a second scraped artist the provider does not credit: artist part 0.9 (first artist
    # only), then the credit-difference factor 0.95: (0.6 + 0.4 * 0.9) * 0.95
    assert (
        confidence(Wanted("Strobe", ["deadmau5 vs Kaskade"]), Candidate("Strobe", ["deadmau5"]))
        == 0.912
    )
    # a guest the scraped side does not name: 0.85
    assert (
        confidence(Wanted("Strobe", ["deadmau5"]), Candidate("Strobe", ["deadmau5", "G"])) == 0.85
    )
    # empty sides
    assert confidence(Wanted("", ["x"]), Candidate("Strobe", ["x"])) == 0.0


def test_featuring_orderings_score_the_same() -> None:
    right = Candidate("Titanium", ["Sia", "David Guetta"])
    for artists in (["David Guetta feat. Sia"], ["David Guetta & Sia"], ["Sia, David Guetta"]):
        assert confidence(Wanted("Titanium", artists), right) == 1.0
    guest = Candidate("Titanium (feat. Sia)", ["David Guetta"])
    assert confidence(Wanted("Titanium", ["David Guetta & Sia"]), guest) == 1.0


def test_best_candidate_prefers_the_earlier_release_between_equal_candidates() -> None:
    wanted = Wanted("Strobe", ["deadmau5"])
    items = [("compilation", "2012-05-01"), ("album", "2009-09-22"), ("undated", None)]
    found = best_candidate(
        items, wanted, lambda t: Candidate("Strobe", ["deadmau5"], compilation=False, released=t[1])
    )
    assert found == (("album", "2009-09-22"), 1.0)


def test_best_candidate_breaks_ties_by_literal_title_then_order() -> None:
    wanted = Wanted("Lyckliga gatan", ["Timo Räisänen"])
    items = [("Lyckliga gatan - Original Mix", 1), ("Lyckliga Gatan", 2), ("Lyckliga gatan", 3)]
    found = best_candidate(items, wanted, lambda t: Candidate(t[0], ["Timo Räisänen"]))
    assert found == (("Lyckliga Gatan", 2), 1.0)  # same literal title as 3 once folded: order
    assert best_candidate([], wanted, lambda t: Candidate(t, [])) is None


# -- scraped side ------------------------------------------------------------------------------


def test_label_brackets_are_stripped_but_versions_and_guests_kept() -> None:
    assert strip_label("Strobe [mau5trap]") == "Strobe"
    assert strip_label("Strobe [Radio Edit]") == "Strobe [Radio Edit]"
    assert strip_label("Titanium [feat. Sia]") == "Titanium [feat. Sia]"
    assert strip_label("[Untitled]") == "[Untitled]"


def test_search_title_drops_original_mix_label_and_guests() -> None:
    assert search_title("Strobe (Original Mix)") == "Strobe"
    assert search_title("Strobe - Original Mix [mau5trap]") == "Strobe"
    assert search_title("Titanium (feat. Sia)") == "Titanium"
    assert search_title("Strobe (Club Edit)") == "Strobe (Club Edit)"


def test_vs_credits_both_artists_and_lines_are_split() -> None:
    assert split_artists("deadmau5 vs Kaskade") == ("deadmau5", "Kaskade")
    assert split_artists("deadmau5 Vs. Kaskade") == ("deadmau5", "Kaskade")
    assert split_artists("Above & Beyond") == ("Above & Beyond",)
    assert split_line("", "deadmau5 - Strobe (Original Mix)") == (
        "deadmau5",
        "Strobe (Original Mix)",
    )
    assert split_line("deadmau5", "Strobe - Radio Edit") == ("deadmau5", "Strobe - Radio Edit")


def test_unidentified_tracks_say_why() -> None:
    assert unidentified("ID", "ID") == "unidentified track (ID - ID)"
    assert unidentified("deadmau5", "ID") == "unidentified title (ID)"
    assert unidentified("deadmau5", "id (Remix)") == "unidentified title (ID)"
    assert unidentified("ID", "Strobe") == "unidentified artist (ID)"
    assert unidentified("deadmau5", "Idiot") is None
    assert unidentified("", "") is None
