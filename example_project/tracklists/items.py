"""The scraped track. Declares every enrichment field it wants to receive."""

import scrapy


class TrackItem(scrapy.Item):
    """One track of a tracklist: what the spider scrapes, plus what the pipeline adds.

    A field left out here is simply not set by the pipeline (it warns once per item class).
    """

    # Scraped from the tracklist page.
    artist = scrapy.Field()
    title = scrapy.Field()
    position = scrapy.Field()
    tracklist = scrapy.Field()
    tracklist_url = scrapy.Field()

    # Set by scrapy_apigw.pipelines.APIEnrichmentPipeline.
    spotify_id = scrapy.Field()
    isrc = scrapy.Field()
    musicbrainz_id = scrapy.Field()
    discogs_id = scrapy.Field()
    bpm = scrapy.Field()
    key = scrapy.Field()
    camelot_key = scrapy.Field()
    energy = scrapy.Field()
    danceability = scrapy.Field()
    valence = scrapy.Field()
    acousticness = scrapy.Field()
    instrumentalness = scrapy.Field()
    liveness = scrapy.Field()
    speechiness = scrapy.Field()
    loudness = scrapy.Field()
    time_signature = scrapy.Field()
    label = scrapy.Field()
    catalog_number = scrapy.Field()
    release_date = scrapy.Field()
    release_country = scrapy.Field()
    spotify_popularity = scrapy.Field()
    lastfm_playcount = scrapy.Field()
    lastfm_listeners = scrapy.Field()
    lastfm_tags = scrapy.Field()
    enrichment_sources = scrapy.Field()
    enrichment_status = scrapy.Field()
    enrichment_errors = scrapy.Field()
    enrichment_match = scrapy.Field()
    enrichment_conflicts = scrapy.Field()
    enrichment_skip_reason = scrapy.Field()
    enriched_at = scrapy.Field()
