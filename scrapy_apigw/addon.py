"""The Scrapy add-on: ``ADDONS = {"scrapy_apigw.Addon": 500}`` turns everything on.

This module imports no middleware or pipeline code at import time (settings modules import it
before Scrapy installs its reactor); components are imported inside :meth:`update_settings`.
"""

from __future__ import annotations

from scrapy.settings import BaseSettings

#: Downloader middleware priorities. Throttle then breaker on the way out (a request that waited
#: is checked against the breaker right before it is sent); breaker, throttle, then retry on
#: the way back (the retry decision sees the pause and breaker already updated).
RETRY_PRIORITY = 550
THROTTLE_PRIORITY = 560
BREAKER_PRIORITY = 570
PIPELINE_PRIORITY = 500
#: ``EXTENSIONS`` order of the operations extension (``/metrics``...), the progress line and
#: the coverage report (no dependency between them).
OPS_PRIORITY = 500
PROGRESS_PRIORITY = 500
COVERAGE_PRIORITY = 500
#: The package of the spiders the add-on adds to every project (``apigw_enrich``).
SPIDER_MODULE = "scrapy_apigw.spiders"


class Addon:
    """Enables the gateway middlewares (replacing Scrapy's ``RetryMiddleware``) and the
    enrichment pipeline. With ``APIGW_ENABLED = False`` it changes nothing.

    Settings it writes (entries already present, e.g. set by the project, are kept):
    ``DOWNLOADER_MIDDLEWARES`` (ours at 550/560/570), ``DOWNLOADER_MIDDLEWARES_BASE`` (Scrapy's
    ``RetryMiddleware`` set to None, as a replacement at the same order requires) and
    ``ITEM_PIPELINES`` (the pipeline at 500, unless ``APIGW_PIPELINE_ENABLED = False``) and
    ``EXTENSIONS`` (:class:`~scrapy_apigw.ops.extension.OpsExtension`: ``/metrics`` with
    ``APIGW_METRICS_PORT``; the progress line and the coverage report; all at 500, each off by
    its own settings).

    Before any crawler exists it also appends :data:`SPIDER_MODULE` to ``SPIDER_MODULES``
    (:meth:`update_pre_crawler_settings`), so ``scrapy crawl apigw_enrich`` finds the built-in
    spider in every project, Scrapyd's jobs included. ``scrapy list`` builds its spider list
    without add-ons (Scrapy 2.18, 2.19), and Scrapyd's ``schedule.json`` checks that list: a
    project scheduling it there names the module in its own ``SPIDER_MODULES``
    (``docs/operations.md``, "Dead letters and replay").
    """

    @classmethod
    def update_pre_crawler_settings(cls, settings: BaseSettings) -> None:
        """Append :data:`SPIDER_MODULE` to ``SPIDER_MODULES`` (Scrapy calls it for every
        add-on in ``ADDONS`` before it builds the spider loader; an add-on's
        ``update_settings`` runs too late for that). Kept at the setting's own priority, so a
        project's value is extended, not replaced. Nothing with ``APIGW_ENABLED = False``; a
        value that is no boolean is left to :meth:`update_settings`, which stops the crawl with
        one line naming it (raising here would be a traceback)."""
        try:
            if not settings.getbool("APIGW_ENABLED", True):
                return
        except ValueError:
            pass
        modules = settings.getlist("SPIDER_MODULES")
        if SPIDER_MODULE in modules:
            return
        priority = settings.getpriority("SPIDER_MODULES") or 0
        settings.set("SPIDER_MODULES", [*modules, SPIDER_MODULE], priority=priority)

    def update_settings(self, settings: BaseSettings) -> None:
        """Apply the add-on to *settings* (called by Scrapy before the crawler starts).

        Every ``APIGW_*`` setting is checked first, so a bad value stops the crawl here.

        Raises:
            ConfigError: an invalid ``APIGW_*`` value, already logged as one ERROR line naming
                the setting, the field and the value.
        """
        from scrapy_apigw.settings import settings_at_start

        config = settings_at_start(settings)
        if config is None:  # APIGW_ENABLED = False
            return
        from scrapy.downloadermiddlewares.retry import RetryMiddleware

        from scrapy_apigw.middlewares import (
            CircuitBreakerMiddleware,
            RetryAfterMiddleware,
            TokenBucketThrottleMiddleware,
        )
        from scrapy_apigw.ops.coverage import CoverageExtension
        from scrapy_apigw.ops.extension import OpsExtension
        from scrapy_apigw.ops.progress import ProgressExtension
        from scrapy_apigw.pipelines import APIEnrichmentPipeline

        settings.set_in_component_priority_dict(
            "DOWNLOADER_MIDDLEWARES_BASE", RetryMiddleware, None
        )
        for cls, priority in (
            (RetryAfterMiddleware, RETRY_PRIORITY),
            (TokenBucketThrottleMiddleware, THROTTLE_PRIORITY),
            (CircuitBreakerMiddleware, BREAKER_PRIORITY),
        ):
            settings.setdefault_in_component_priority_dict("DOWNLOADER_MIDDLEWARES", cls, priority)
        for ext, priority in (
            (OpsExtension, OPS_PRIORITY),
            (ProgressExtension, PROGRESS_PRIORITY),
            (CoverageExtension, COVERAGE_PRIORITY),
        ):
            settings.setdefault_in_component_priority_dict("EXTENSIONS", ext, priority)
        if config.pipeline_enabled:
            settings.setdefault_in_component_priority_dict(
                "ITEM_PIPELINES", APIEnrichmentPipeline, PIPELINE_PRIORITY
            )
