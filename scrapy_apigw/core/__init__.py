"""Pure logic with no Scrapy or Twisted imports; every clock is injected.

- :mod:`.clock`: the clock protocol and a fake clock for tests;
- :mod:`.outcome`: what an HTTP exchange meant (retry and breaker vocabulary);
- :mod:`.ratelimit`: token bucket, sliding-window quota, rate-limit header parsing;
- :mod:`.breaker`: the circuit breaker state machine;
- :mod:`.retry`: which outcomes retry, exponential backoff with jitter, Retry-After parsing;
- :mod:`.camelot`, :mod:`.lucene`, :mod:`.matching`: music-domain helpers.
"""
