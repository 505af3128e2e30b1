"""Names of the fields the enrichment pipeline reads and writes on an item."""

from __future__ import annotations

#: Input fields (names configurable with ``APIGW_INPUT_FIELDS``).
INPUT_FIELDS = ("artist", "title", "spotify_id", "isrc")

#: Output fields, each set only when a source answered (docs/fields.md lists each one's sources
#: and their priority, ``APIGW_FIELD_SOURCES``). Types:
#: ids are str except discogs_id and beatport_id (int); bpm, energy... loudness are float;
#: genre, sub_genre, mix_name are str (Beatport); acousticbrainz_highlevel is
#: dict[str, {"value": str, "probability": float}];
#: time_signature, spotify_popularity, lastfm_playcount, lastfm_listeners are int;
#: lastfm_tags is list[str];
#: enrichment_sources is list[str] (providers that answered, in waterfall order);
#: enrichment_errors is dict[str, str] (provider -> log-safe reason) when any provider failed;
#: enrichment_stale is list[str] (providers whose answer came from an expired cache entry because
#: the provider failed: stale-if-error, APIGW_STALE_TTL), set only when there is one;
#: enrichment_match is dict[str, dict] (provider -> {"confidence": float 0..1, "by": "id" |
#: "isrc" | "search"}, plus "via" and "withheld" when they apply) for providers that matched;
#: enrichment_conflicts is list[dict] ({"field", "providers", "values"}) when providers
#: disagree; enrichment_skip_reason is str, why a skipped item was not looked up
#: ("unidentified track (ID - ID)").
OUTPUT_FIELDS = (
    "spotify_id",
    "isrc",
    "musicbrainz_id",
    "discogs_id",
    "beatport_id",
    "bpm",
    "key",
    "camelot_key",
    "energy",
    "danceability",
    "valence",
    "acousticness",
    "instrumentalness",
    "liveness",
    "speechiness",
    "loudness",
    "time_signature",
    "acousticbrainz_highlevel",
    "genre",
    "sub_genre",
    "mix_name",
    "label",
    "catalog_number",
    "release_date",
    "release_country",
    "spotify_popularity",
    "lastfm_playcount",
    "lastfm_listeners",
    "lastfm_tags",
    "enrichment_sources",
    "enrichment_status",
    "enrichment_errors",
    "enrichment_stale",
    "enrichment_match",
    "enrichment_conflicts",
    "enrichment_skip_reason",
    "enriched_at",
)

#: Values of ``enrichment_status``.
STATUS_COMPLETED = "completed"  # every enabled provider answered or said "not found"
STATUS_PARTIAL = "partial"  # some enabled providers failed
STATUS_FAILED = "failed"  # every enabled provider failed
STATUS_SKIPPED = "skipped"  # nothing to look up (no artist/title and no identifier)
