"""Match quality on real recorded search answers (``../shared/fixtures``, issue 9 section 1).

The recorded answers are real decoy catalogs. Spotify's search for ``gatan``
(``spotify/spotify-web-api-js_search_track.json``) holds "Lyckliga gatan" by Timo Räisänen
*and* its "- Radio Edit", ranked above it, the same title by Nisse Hellberg and Anna-Lena
Löfgren, a "(med Loreen)" version by Governor Andy, and a three-artist credit. Discogs'
searches hold a master next to two pressings of one release. Each :class:`RecordedCase` asks
"which candidate of this answer is track (artist, title)?"; its true ids are read off the
answer itself (the names, credits and ISRCs the recorded items carry), empty when the answer
holds no right candidate (the case must then be "not found").

A *chooser* is the matcher under test: ``choose(provider, answer, artist, title)`` returns the
chosen candidate id or ``None``. :func:`first_candidate` is the naive baseline (the top-ranked
candidate). The client's own matcher (``scrapy_apigw.core.matching``, being reworked on branch
i9-match) plugs in the same way: wrap it as a chooser and pass it to :func:`score_recorded`.

Fixtures are read through a *load* callable (path relative to the fixtures folder -> decoded
JSON), so tests skip when ``../shared`` is absent and nothing here reads files by itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from scrapy_apigw.sandbox.scoring import ProviderScore

__all__ = [
    "RECORDED_CASES",
    "Chooser",
    "RecordedCase",
    "candidate_ids",
    "first_candidate",
    "score_recorded",
]

Chooser = Callable[[str, Any, str, str], "str | None"]

SPOTIFY_GATAN = "spotify/spotify-web-api-js_search_track.json"
SPOTIFY_HAPPY = "spotify/beets_track_request.json"
MB_ISRC = "musicbrainz/TRANSCRIBED_mbserver_isrc_GBAAA9900303.json"
DISCOGS_HEALER = "discogs/go-discogs_database_search.json"
DISCOGS_TRASH80 = "discogs/discogs_client_database_search_q-trash80_per_page-50_page-1.json"


@dataclass(frozen=True)
class RecordedCase:
    """One question asked of a recorded answer.

    Attributes:
        name: short label (which decoy family it exercises).
        provider: ``spotify``, ``musicbrainz`` or ``discogs``.
        fixture: path of the answer under the fixtures folder.
        artist, title: the scraped track, as a tracklist would write it.
        true_ids: every acceptable candidate id (two pressings of one release are both
            right); empty when no candidate is right.
    """

    name: str
    provider: str
    fixture: str
    artist: str
    title: str
    true_ids: frozenset[str]


def _case(
    name: str, provider: str, fixture: str, artist: str, title: str, *ids: str
) -> RecordedCase:
    return RecordedCase(name, provider, fixture, artist, title, frozenset(ids))


RECORDED_CASES: tuple[RecordedCase, ...] = (
    # The original, with its radio edit (SEWBD1300602) ranked above it (SEWBD1300601).
    _case("version: original below its radio edit", "spotify", SPOTIFY_GATAN,
          "Timo Räisänen", "Lyckliga gatan", "3od3TT0urEB8HMaFZhaEYW"),
    _case("version: the radio edit asked", "spotify", SPOTIFY_GATAN,
          "Timo Räisänen", "Lyckliga gatan (Radio Edit)", "4fWtlkaM9bnRzbJkpBQ4fg"),
    _case("same title: the fourth artist", "spotify", SPOTIFY_GATAN,
          "Anna-Lena Löfgren", "Lyckliga gatan", "6VKhjanHmI88gbeAJfGBns"),
    _case("diacritics: ASCII spelling", "spotify", SPOTIFY_GATAN,
          "Anna-Lena Lofgren", "Lyckliga gatan", "6VKhjanHmI88gbeAJfGBns"),
    _case("same title: another artist", "spotify", SPOTIFY_GATAN,
          "Nisse Hellberg", "Lyckliga gatan", "3pEr1rOrfLha8gkEwpBbTS"),
    _case("featuring: 'med Loreen' in the title", "spotify", SPOTIFY_GATAN,
          "Governor Andy feat. Loreen", "Lyckliga Gatan", "3qOCMkCrsQBczAvvuYoJG3"),
    _case("featuring: credit reordered", "spotify", SPOTIFY_GATAN,
          "Abidaz, Stress & Hooks", "Gatan", "5GqZe05VEXpzmDrNTc8DDj"),
    _case("title track: album of the same name", "spotify", SPOTIFY_GATAN,
          "Veronica Maggio", "Satan i gatan", "3q8WojYJVZsGClFGFBYdTc"),
    _case("not findable: title by another artist only", "spotify", SPOTIFY_GATAN,
          "Veronica Maggio", "Lyckliga gatan"),
    _case("compilation: soundtrack appearance", "spotify", SPOTIFY_HAPPY,
          "Pharrell Williams", "Happy", "6NPVjNh8Jhru9xOmyQigds"),
    _case("isrc: one recording", "musicbrainz", MB_ISRC,
          "The Chemical Brothers", "Hey Boy Hey Girl", "bf7845cc-eac3-48a3-8b06-543b4b7ba117"),
    _case("pressings: either release of the master", "discogs", DISCOGS_HEALER,
          "DJ Healer", "Nothing 2 Loose", "11849140", "13416116"),
    _case("pressings: two releases of one title", "discogs", DISCOGS_TRASH80,
          "Trash80", "Icarus", "1743771", "1346442"),
    _case("featuring: credit reordered (Discogs)", "discogs", DISCOGS_TRASH80,
          "Dma-Sc & Trash80", "Darwinia Soundtrack", "3329867"),
    _case("not findable: artist with other releases", "discogs", DISCOGS_TRASH80,
          "Trash80", "Nothing 2 Loose"),
)  # fmt: skip


def candidate_ids(provider: str, answer: Any) -> list[str]:
    """The candidate ids of a recorded *answer*, in the provider's rank order: Spotify
    ``tracks.items[].id``, MusicBrainz ``recordings[].id`` (search or ISRC lookup), Discogs
    ``results[].id`` of type ``release``."""
    if not isinstance(answer, Mapping):
        return []
    if provider == "spotify":
        tracks = answer.get("tracks")
        items = tracks.get("items") if isinstance(tracks, Mapping) else None
        return [str(i["id"]) for i in items or [] if isinstance(i, Mapping) and i.get("id")]
    if provider == "musicbrainz":
        recs = answer.get("recordings")
        return [str(r["id"]) for r in recs or [] if isinstance(r, Mapping) and r.get("id")]
    if provider == "discogs":
        results = answer.get("results")
        return [
            str(r["id"])
            for r in results or []
            if isinstance(r, Mapping) and r.get("type") == "release" and r.get("id")
        ]
    raise ValueError(f"no recorded answers for provider {provider!r}")


def first_candidate(provider: str, answer: Any, artist: str, title: str) -> str | None:
    """The naive chooser: the top-ranked candidate, whatever it is."""
    ids = candidate_ids(provider, answer)
    return ids[0] if ids else None


def score_recorded(
    choose: Chooser,
    load: Callable[[str], Any],
    cases: Iterable[RecordedCase] = RECORDED_CASES,
) -> tuple[dict[str, ProviderScore], list[tuple[RecordedCase, str | None, str]]]:
    """Run *choose* on every case and score it like :func:`~scrapy_apigw.sandbox.scoring.
    score_items` (filled, correct, wrong, missed, findable per provider).

    Args:
        choose: the matcher under test (see the module docstring).
        load: fixture path -> decoded JSON (raise to skip, e.g. when ``../shared`` is absent).
        cases: the questions (default :data:`RECORDED_CASES`).

    Returns:
        ``(scores, outcomes)``: per provider a :class:`ProviderScore` (field ``"id"``), and per
        case ``(case, chosen id or None, "correct" | "wrong" | "missed" | "rejected")``
        ("rejected": nothing chosen where nothing was right).
    """
    scores: dict[str, ProviderScore] = {}
    outcomes: list[tuple[RecordedCase, str | None, str]] = []
    for case in cases:
        score = scores.setdefault(case.provider, ProviderScore(case.provider, "id"))
        chosen = choose(case.provider, load(case.fixture), case.artist, case.title)
        findable = bool(case.true_ids)
        score.findable += findable
        if chosen:
            score.filled += 1
            ok = str(chosen) in case.true_ids
            score.correct += ok
            score.wrong += not ok
            outcome = "correct" if ok else "wrong"
        else:
            score.missed += findable
            outcome = "missed" if findable else "rejected"
        outcomes.append((case, chosen, outcome))
    return scores, outcomes
