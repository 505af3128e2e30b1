"""The real ``APIEnrichmentPipeline`` of a real crawler, fed items one by one, and the checks.

For ``test_pipeline_property.py`` and ``bench/bench_items.py``. :func:`open_pipeline` builds a
crawler with ``scrapy.utils.test.get_crawler`` and the add-on's settings (sandbox mode, embedded
cache; ``tests/integration/conftest.py``'s ``gateway_settings``), then the pipeline with
``from_crawler`` and opens it, as the engine does. :func:`item_problems` says what is wrong with
one item after ``process_item``: empty when nothing was lost or changed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from itemadapter import ItemAdapter

from scrapy_apigw.enrichment.fields import OUTPUT_FIELDS
from scrapy_apigw.pipelines import APIEnrichmentPipeline

__all__ = ["STATUSES", "Before", "close_pipeline", "item_problems", "open_pipeline"]

#: Every ``enrichment_status`` an item may leave the pipeline with (docs/fields.md).
STATUSES = frozenset({"completed", "partial", "failed", "skipped"})
# What write_fields treats as a gap it may fill (enrichment never overwrites anything else).
_EMPTY = (None, "", [], {})


@dataclass
class Before:
    """An item as it was before the pipeline: its fields, their values (same objects), copies."""

    item: Any
    values: dict[str, Any]
    copies: dict[str, Any]

    @classmethod
    def of(cls, item: Any) -> Before:
        values = dict(ItemAdapter(item).items())
        return cls(item, values, copy.deepcopy(values))


def item_problems(before: Before, returned: Any) -> list[str]:
    """What the pipeline lost or broke on one item (``[]``: nothing).

    - *returned* must be the very object given (``is``);
    - its ``enrichment_status`` must be one of :data:`STATUSES`;
    - ``enrichment_errors`` must not name ``pipeline`` (the pipeline's catch-all for an
      exception inside enrichment: a bug, not a provider failure);
    - every original field is still there; the ``enrichment_*`` fields are the pipeline's own,
      an empty (``None``, ``""``, ``[]``, ``{}``) output field may be filled in; every other
      value is the same object, with the same content (compared with a deep copy).
    """
    problems = []
    if returned is not before.item:
        problems.append(f"returned {type(returned).__name__} {returned!r:.200}, not the item")
    adapter = ItemAdapter(before.item)
    status = adapter.get("enrichment_status")
    if status not in STATUSES:
        problems.append(f"enrichment_status {status!r}")
    errors = adapter.get("enrichment_errors")
    if isinstance(errors, dict) and "pipeline" in errors:
        problems.append(f"the pipeline caught an exception: {errors!r}")
    for name, value in before.values.items():
        if name.startswith("enrich"):
            continue
        if name not in adapter:
            problems.append(f"field {name!r} removed")
            continue
        now = adapter[name]
        if now is value:
            if not (now is before.copies[name] or now == before.copies[name]):
                problems.append(f"field {name!r} changed in place: {now!r:.200}")
        elif not (name in OUTPUT_FIELDS and value in _EMPTY):
            problems.append(f"field {name!r} replaced: {value!r:.100} -> {now!r:.100}")
    return problems


async def open_pipeline(settings: dict[str, Any]) -> tuple[Any, APIEnrichmentPipeline]:
    """A crawler built from *settings* and its opened pipeline (``(crawler, pipeline)``)."""
    from scrapy.utils.misc import build_from_crawler
    from scrapy.utils.test import get_crawler

    crawler = get_crawler(settings_dict=settings)  # Scrapy's DefaultSpider: no crawl is run
    pipeline = build_from_crawler(APIEnrichmentPipeline, crawler)
    await pipeline.open_spider()
    return crawler, pipeline


async def close_pipeline(pipeline: APIEnrichmentPipeline) -> None:
    """Close the pipeline and its gateway (what the engine does at spider close)."""
    await pipeline.close_spider()
    await pipeline.gateway.close()
