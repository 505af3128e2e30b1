"""scrapy-apigw: make a Scrapy crawl a good citizen of music APIs and enrich scraped tracks.

Public entry points (import paths are stable):

- :class:`scrapy_apigw.Addon` for ``ADDONS``;
- :mod:`scrapy_apigw.middlewares`: ``TokenBucketThrottleMiddleware``,
  ``CircuitBreakerMiddleware``, ``RetryAfterMiddleware``;
- :class:`scrapy_apigw.pipelines.APIEnrichmentPipeline`.

Nothing here imports ``twisted.internet.reactor``, txredisapi or ``prometheus_client.twisted``
at import time, so the package is safe to list in settings before Scrapy installs its reactor.
"""

__version__ = "0.1.0"

from scrapy_apigw.addon import Addon

__all__ = ["Addon", "__version__"]
