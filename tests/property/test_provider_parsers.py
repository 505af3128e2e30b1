"""Property: the provider classifiers, shape checks and parsers never raise on any JSON value.

Whatever a provider (or something between us and it) sends back, a client either makes a
result of it or the transport turns it into a failure: no exception other than
``ProviderUnavailable`` may escape ``enrich``, and every field written on an item serialises as
strict JSON (no NaN) for the feed.

Bodies are drawn two ways: any JSON value at all, and the real shape of each call with any JSON
value at every level of it (so the parsers behind the first ``.get`` are reached too). The
number of examples per property is ``PROPERTY_EXAMPLES`` (default 200).

Every property loops over the providers itself: pytest-twisted's call hook rewraps a hypothesis
test once per parametrized case, so ``@pytest.mark.parametrize`` and ``@given`` do not mix here.
"""

from __future__ import annotations

import json
import math
import os
import random
from typing import Any

from coroutines import finish
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scrapy_apigw.core.outcome import Outcome
from scrapy_apigw.core.payload import read_payload
from scrapy_apigw.exceptions import ProviderUnavailable
from scrapy_apigw.gateway import ProviderState
from scrapy_apigw.providers import (
    acousticbrainz,
    beatport,
    discogs,
    lastfm,
    musicbrainz,
    spotify,
)
from scrapy_apigw.providers.base import ANSWER_KINDS, ApiAnswer, ApiCall, TrackContext, require
from scrapy_apigw.providers.clients import CLIENT_CLASSES, build_client
from scrapy_apigw.providers.registry import DEFAULT_PROVIDERS

PROPERTY = settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and infinities too: Python's json.loads accepts them
    | st.text(max_size=12)
    | st.sampled_from(["", "0", "2018", "1999-00-00", "track", "release", "Daft Punk"])
)
#: Any JSON value (``hypothesis.strategies.recursive``).
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
STATUS = st.integers(min_value=100, max_value=599)


def obj(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Objects with any of *fields* (each value the given strategy, a scalar or any JSON), or a
    scalar or any JSON instead of the object (a wrong type is drawn often, on purpose)."""
    shaped = st.fixed_dictionaries(
        {}, optional={k: st.one_of(v, SCALARS, JSON) for k, v in fields.items()}
    )
    return st.one_of(shaped, SCALARS, JSON)


def listing(item: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.lists(item, max_size=4), SCALARS, JSON)


NAMES = st.sampled_from(["One More Time", "Daft Punk", "Strobe", ""]) | st.text(max_size=8)
NAMED = obj(name=NAMES, artist=obj(name=NAMES))

# The real shapes (PROVIDERS.md and ../shared/fixtures), any JSON at every level.
SPOTIFY_TRACK = obj(
    id=st.just("4uLU6hMCjMI75M1A2tKUQC"),
    name=NAMES,
    artists=listing(NAMED),
    external_ids=obj(isrc=st.just("GBAAA9900303")),
    popularity=st.integers(0, 100),
    album=obj(release_date=st.just("2013-06-18")),
    duration_ms=st.integers(0, 10**7),
)
SPOTIFY_FEATURES = obj(
    id=st.just("4uLU6hMCjMI75M1A2tKUQC"),
    tempo=st.floats(),
    key=st.integers(-2, 12),
    mode=st.integers(-1, 2),
    time_signature=st.integers(-1, 8),
    **dict.fromkeys(["energy", "danceability", "valence", "loudness"], st.floats()),
)
MB_RECORDING = obj(
    id=st.just("bf7845cc-5bd4-4ec4-b9e7-c8e9aaf6ae60"),
    title=NAMES,
    score=st.integers(0, 100) | st.just("100"),
    **{"artist-credit": listing(NAMED), "first-release-date": st.just("1999")},
    isrcs=listing(st.just("GBAAA9900303")),
)
DISCOGS_RESULT = obj(
    id=st.integers(1, 10**8),
    type=st.just("release"),
    title=st.just("Daft Punk - One More Time") | NAMES,
    year=st.just("2000") | st.integers(),
)
DISCOGS_TRACK = obj(title=NAMES, type_=st.sampled_from(["track", "index", "heading"]))
DISCOGS_RELEASE = obj(
    id=st.integers(1, 10**8),
    labels=listing(obj(name=NAMES, catno=st.just("SK032"))),
    released=st.just("2000-11-00"),
    year=st.integers(),
    country=NAMES,
    tracklist=listing(obj(title=NAMES, type_=st.just("index"), sub_tracks=listing(DISCOGS_TRACK))),
)
LASTFM_TAG = obj(name=NAMES, count=st.integers(0, 100) | st.just("100"))
BEATPORT_TRACK = obj(
    id=st.integers(-1, 10**8),
    name=NAMES,
    mix_name=st.just("Original Mix") | NAMES,
    artists=listing(NAMED),
    bpm=st.integers(-1, 300) | st.floats(),
    key=obj(
        name=st.sampled_from(["G Minor", "Eb Major", "F♯ minor", "H"]) | NAMES,
        camelot_number=st.integers(-1, 14),
        camelot_letter=st.sampled_from(["A", "B", "C"]),
    ),
    genre=NAMED,
    sub_genre=NAMED,
    isrc=st.just("GBAAA9900303"),
    catalog_number=NAMES,
    release=obj(label=NAMED, catalog_number=NAMES),
)
AB_DOCUMENT = obj(
    rhythm=obj(bpm=st.floats() | st.integers()),
    tonal=obj(key_key=st.sampled_from(["A", "Bb", "C#", "H"]) | NAMES,
              key_scale=st.sampled_from(["major", "minor"]) | NAMES),
    highlevel=st.dictionaries(
        st.text(max_size=8), obj(value=NAMES, probability=st.floats()), max_size=3
    ),
)  # fmt: skip

BODIES: dict[tuple[str, str], st.SearchStrategy[Any]] = {
    ("spotify", "track"): SPOTIFY_TRACK,
    ("spotify", "search"): obj(tracks=obj(items=listing(SPOTIFY_TRACK))),
    ("spotify", "audio_features"): SPOTIFY_FEATURES,
    ("musicbrainz", "isrc"): obj(recordings=listing(MB_RECORDING)),
    ("musicbrainz", "search"): obj(recordings=listing(MB_RECORDING)),
    ("discogs", "search"): obj(results=listing(DISCOGS_RESULT)),
    ("discogs", "release"): DISCOGS_RELEASE,
    ("lastfm", "info"): obj(
        track=obj(playcount=st.just("1315650"), listeners=st.integers()),
        error=st.integers(0, 30),
    ),
    ("lastfm", "tags"): obj(toptags=obj(tag=listing(LASTFM_TAG) | LASTFM_TAG)),
    ("beatport", "search"): obj(tracks=listing(BEATPORT_TRACK)),
    ("beatport", "track"): BEATPORT_TRACK,
    ("acousticbrainz", "probe"): AB_DOCUMENT,
    ("acousticbrainz", "features"): AB_DOCUMENT,
}
PROVIDERS = sorted(CLIENT_CLASSES)
DATA_TYPES = {name: [t for p, t in BODIES if p == name] for name in PROVIDERS}
ANY_BODY = st.one_of(*BODIES.values())

TRACKS = st.builds(
    TrackContext,
    artist=st.sampled_from(["", "Daft Punk", "Röyksopp feat. Robyn"]) | st.text(max_size=12),
    title=st.sampled_from(["", "One More Time", "Strobe (Radio Edit)"]) | st.text(max_size=12),
    artists=st.lists(NAMES, max_size=2).map(tuple),
    spotify_id=st.none() | st.just("4uLU6hMCjMI75M1A2tKUQC") | st.text(max_size=22),
    isrc=st.none() | st.just("GBAAA9900303") | st.text(max_size=12),
    musicbrainz_id=st.none() | st.just("bf7845cc-5bd4-4ec4-b9e7-c8e9aaf6ae60"),
)


def state_of(name: str) -> ProviderState:
    """The gateway's view of provider *name*: its client's classifier and shape check."""
    client = build_client(name)
    assert client is not None
    return ProviderState(
        DEFAULT_PROVIDERS[name],
        clock=lambda: 0.0,
        rng=random.Random(0),
        classify=client.classify,
        check_shape=client.check_shape,
    )


@PROPERTY
@given(status=STATUS, data=JSON | ANY_BODY)
def test_classify_and_check_shape_never_raise(status: int, data: Any) -> None:
    for name in PROVIDERS:
        client = build_client(name)
        assert client is not None
        assert isinstance(client.classify(status, data), Outcome)
        for data_type in DATA_TYPES[name]:
            call = ApiCall(provider=name, data_type=data_type, path="/")
            problem = client.check_shape(call, data)
            assert problem is None or (isinstance(problem, str) and problem.startswith("no "))


@PROPERTY
@given(status=STATUS, body=st.binary(max_size=64) | (JSON | ANY_BODY).map(json.dumps))
def test_the_gateway_judges_any_body_with_any_status(status: int, body: bytes | str) -> None:
    raw = body.encode() if isinstance(body, str) else body
    for name in PROVIDERS:
        state = state_of(name)
        for content_type in (None, "application/json", "text/html", "application/xml"):
            for data_type in DATA_TYPES[name]:
                call = ApiCall(provider=name, data_type=data_type, path="/")
                verdict = state.judge(status, read_payload(raw, content_type, True), call)
                assert isinstance(verdict.outcome, Outcome)
                # Only a 2xx can be malformed, and a malformed verdict always says why.
                if verdict.outcome is Outcome.MALFORMED:
                    assert 200 <= status < 300 and verdict.malformed
                assert isinstance(state.retries(verdict.outcome, status), bool)


@PROPERTY
@given(name=st.sampled_from(PROVIDERS), track=TRACKS, answers=st.data())
def test_enrich_never_raises_on_any_answer(name: str, track: TrackContext, answers: Any) -> None:
    """Each call gets any status and any body, judged as the transport judges it."""
    state = state_of(name)
    client = build_client(name)
    assert client is not None

    async def fetch(call: ApiCall) -> ApiAnswer:
        status = answers.draw(st.just(200) | STATUS, label=f"status of {call.data_type}")
        body = BODIES[name, call.data_type] | JSON
        data = answers.draw(body, label=f"body of {call.data_type}")
        verdict = state.judge(status, read_payload(json.dumps(data).encode(), None, True), call)
        if verdict.outcome not in ANSWER_KINDS:  # retried, then given up by the transport
            raise ProviderUnavailable(name, verdict.outcome.value)
        return ApiAnswer(ANSWER_KINDS[verdict.outcome], status, verdict.data)

    try:
        result = finish(client.enrich(track, fetch))
    except ProviderUnavailable:
        return
    assert result.status in ("ok", "not_found", "failed", "skipped")
    json.dumps(result.fields, allow_nan=False)  # the feed gets strict JSON


@PROPERTY
@given(track=TRACKS, data=st.data())
def test_parsing_helpers_never_raise(track: TrackContext, data: Any) -> None:
    """The helpers each client parses answers with, on any value of the shape they read."""
    item = data.draw(SPOTIFY_TRACK)
    assert all(
        isinstance(n, str) for n in spotify._track_artists(item if isinstance(item, dict) else {})
    )
    number = spotify._number(data.draw(JSON))
    assert number is None or math.isfinite(number)
    features = data.draw(SPOTIFY_FEATURES)
    json.dumps(
        spotify.audio_feature_fields(features if isinstance(features, dict) else {}),
        allow_nan=False,
    )
    for recording in data.draw(st.lists(MB_RECORDING, max_size=3)):
        if isinstance(recording, dict):
            assert all(isinstance(n, str) for n in musicbrainz._credits(recording))
            assert isinstance(musicbrainz._score(recording), int)
    documents = data.draw(AB_DOCUMENT), data.draw(AB_DOCUMENT)
    json.dumps(acousticbrainz.document_fields(*documents), allow_nan=False)
    beatport_track = data.draw(BEATPORT_TRACK)
    if isinstance(beatport_track, dict) and beatport._is_id(beatport_track.get("id")):
        json.dumps(beatport.track_fields(beatport_track), allow_nan=False)
    release = data.draw(DISCOGS_RELEASE)
    if isinstance(release, dict) and require(release, "id", int) is None:
        json.dumps(discogs.release_fields(release), allow_nan=False)
        assert isinstance(discogs._lists_track(release, track.title), bool)
    date = discogs.release_date(data.draw(JSON | st.just("2017-07-00")), data.draw(JSON))
    assert date is None or isinstance(date, str)
    results = data.draw(listing(DISCOGS_RESULT))
    ranked = discogs.DiscogsClient._rank(results, track)
    # Search results themselves, each once, each with what the client reads of it.
    assert all(any(r is result for result in results) for r in ranked)
    assert len({id(r) for r in ranked}) == len(ranked)
    assert all(isinstance(r["id"], int) and isinstance(r["title"], str) for r in ranked)
    counted = lastfm.count(data.draw(JSON))
    assert counted is None or (isinstance(counted, int) and counted >= 0)
    tags = lastfm.LastFmClient().top_tags(data.draw(BODIES["lastfm", "tags"]))
    assert all(isinstance(t, str) and t for t in tags)
