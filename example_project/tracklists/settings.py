"""Settings of the example project: scrape DJ tracklists, enrich every track.

No API keys are configured here, so the crawl runs against scrapy-apigw's provider sandbox,
started in-process: a local server that imitates Spotify, MusicBrainz, Discogs and Last.fm
(their URLs, auth, shapes, errors and rate limits) and serves the tracklist website.
"""

import os

BOT_NAME = "tracklists"
# The add-on adds its own spider (apigw_enrich: enrich a catalog, replay dead letters) for
# `scrapy crawl` by itself; `scrapy list`, and so Scrapyd's listspiders.json and schedule.json,
# build their spider list without add-ons (Scrapy 2.18/2.19), hence the second module here.
SPIDER_MODULES = ["tracklists.spiders", "scrapy_apigw.spiders"]
NEWSPIDER_MODULE = "tracklists.spiders"

ADDONS = {"scrapy_apigw.Addon": 500}

# Offline demo: every provider call goes to the in-process sandbox; nothing real is called.
# Its limits (and the gateway's) run 10x faster than the real APIs' so the demo takes a minute.
# To use the real APIs: set APIGW_SANDBOX = False and SPOTIFY_CLIENT_ID, SPOTIFY_CLIENT_SECRET,
# DISCOGS_TOKEN, LASTFM_API_KEY, MUSICBRAINZ_USER_AGENT in the environment (or APIGW_* settings).
APIGW_SANDBOX = True
APIGW_SANDBOX_SPEED = 10

# Cache answers in Redis when a URL is given, e.g. APIGW_REDIS_URL=redis://127.0.0.1:6379/0 in
# the environment (Scrapyd's, for its jobs: a URL with a password is a credential); otherwise
# an embedded cache under .scrapy/apigw/ survives between runs (a second crawl calls nobody).
# With Redis, every crawl and Scrapyd job of the project also shares each provider's quota
# (APIGW_FLEET, default: the cache namespace).
APIGW_REDIS_URL = os.environ.get("APIGW_REDIS_URL")

ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 16
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"
