"""Pure logic with no Scrapy or Twisted imports; every clock is injected.

- :mod:`.clock`: the clock protocol and a fake clock for tests;
- :mod:`.outcome`: what an HTTP exchange meant (retry and breaker vocabulary);
- :mod:`.ratelimit`: token bucket, sliding-window quota, rate-limit header parsing;
- :mod:`.ratelimit_headers`: what a provider announces (IETF RateLimit fields, X-RateLimit-*,
  Discogs), epoch or delta resets told apart;
- :mod:`.adaptive`: AIMD adaptive rate and burst below the configured ceiling;
- :mod:`.fallback`: shared/fallback state machine and the local share while Redis is down;
- :mod:`.breaker`: the circuit breaker state machine;
- :mod:`.retry`: which outcomes retry, exponential backoff with jitter, Retry-After parsing;
- :mod:`.camelot`, :mod:`.lucene`, :mod:`.matching`: music-domain helpers.
"""
