"""Know the moment the engine starts closing the spider: Scrapy sends no signal for it.

Every graceful stop goes through ``ExecutionEngine.close_spider_async(reason=...)`` (public since
Scrapy 2.14): one SIGINT and Scrapyd's ``cancel.json`` (``Crawler.stop_async`` →
``engine.stop_async`` → ``self.close_spider_async(reason="shutdown")``), the ``CLOSESPIDER_*``
extension and ``CloseSpider`` raised in a callback (``closespider_*`` reasons), and the normal
end of the crawl (``"finished"``, when nothing is pending). The engine then waits, with no upper
bound, for every request in progress and every item in the pipeline; ``spider_closed`` comes only
after that, too late to cut anything short. So :func:`watch_engine_close` wraps the engine
instance's method (the instance attribute shadows the class method, and ``stop_async`` calls it
through ``self``): the callback runs first, then the engine closes as it always does. See
``docs/design.md``, "Graceful stop", for the alternatives and why this one.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

__all__ = ["watch_engine_close"]

#: Engine methods that start closing the spider, newest Scrapy first (``close_spider`` before
#: 2.14, and a deprecated wrapper of ``close_spider_async`` since).
_CLOSE_METHODS = ("close_spider_async", "close_spider")


def watch_engine_close(crawler: Crawler, on_close: Callable[[str], None]) -> bool:
    """Call ``on_close(reason)`` when *crawler*'s engine starts closing the spider.

    Call it once the engine exists (from ``spider_opened`` on). Idempotent per engine.

    Returns:
        True if the hook is in place; False (with one warning) when the engine has none of the
        known close methods, e.g. a future Scrapy renamed them: a graceful stop then waits for
        pending enrichment as Scrapy does, bounded by ``APIGW_ITEM_TIMEOUT`` only.
    """
    try:
        engine = getattr(crawler, "engine", None)
    except RuntimeError:  # Scrapy >= 2.14 raises until the crawl has started (no engine yet)
        engine = None
    name = next((n for n in _CLOSE_METHODS if callable(getattr(engine, n, None))), None)
    if engine is None or name is None:
        logger.warning(
            "apigw: cannot see when the engine starts closing (no %s on %r): a graceful stop "
            "will wait for pending enrichment, bounded only by APIGW_ITEM_TIMEOUT",
            " or ".join(_CLOSE_METHODS),
            engine,
        )
        return False
    original = getattr(engine, name)
    if getattr(original, "_apigw_watched", False):
        return True

    @functools.wraps(original)
    def close_spider(*args: Any, **kwargs: Any) -> Any:
        reason = kwargs.get("reason", args[-1] if args and isinstance(args[-1], str) else "")
        try:
            on_close(str(reason or "cancelled"))
        except Exception:
            # Never let our bookkeeping prevent the engine from closing.
            logger.exception("apigw: error while starting the graceful stop")
        return original(*args, **kwargs)

    close_spider._apigw_watched = True  # type: ignore[attr-defined]
    setattr(engine, name, close_spider)
    return True
