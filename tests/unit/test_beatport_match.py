"""Beatport's candidate choice: every version is named in ``mix_name`` (the original as
"Original Mix"), and the most confident item wins, not the first (issue 9 §1)."""

from __future__ import annotations

from typing import Any

from scrapy_apigw.providers.base import ApiAnswer, TrackContext
from scrapy_apigw.providers.beatport import BeatportClient


def _track(
    track_id: int, name: str, mix: str, artist: str = "deadmau5", **extra: Any
) -> dict[str, Any]:
    return {"id": track_id, "name": name, "mix_name": mix, "artists": [{"name": artist}], **extra}


def _search(*tracks: dict[str, Any]) -> ApiAnswer:
    return ApiAnswer("ok", 200, {"tracks": list(tracks)})


STROBE = _search(
    _track(1, "Strobe", "Club Edit", length_ms=220_000),
    _track(2, "Strobe", "Tommy Trash Remix", artist="Tommy Trash"),
    _track(3, "Strobe", "Original Mix", length_ms=637_000),
)


def test_a_title_without_version_takes_the_original_mix_ranked_last() -> None:
    found = BeatportClient.pick(STROBE, TrackContext(artist="deadmau5", title="Strobe"))
    assert found is not None and (found[0]["id"], found[1]) == (3, 1.0)


def test_a_scraped_club_edit_takes_the_club_edit() -> None:
    track = TrackContext(artist="deadmau5", title="Strobe (Club Edit)")
    found = BeatportClient.pick(STROBE, track)
    assert found is not None and found[0]["id"] == 1


def test_only_other_versions_are_not_found_rather_than_a_guess() -> None:
    answer = _search(
        _track(1, "Strobe", "Club Edit"), _track(2, "Strobe", "Tommy Trash Remix", "Tommy Trash")
    )
    assert BeatportClient.pick(answer, TrackContext(artist="deadmau5", title="Strobe")) is None


def test_the_same_title_by_another_artist_is_not_found() -> None:
    answer = _search(_track(9, "Strobe", "Original Mix", artist="Strobe Tribute Band"))
    assert BeatportClient.pick(answer, TrackContext(artist="deadmau5", title="Strobe")) is None
