"""The metric names and labels scrapy-apigw exports (issue 8, and the extras agreed with the
metrics module), as the dashboards and alert rules may name them.

test_known_metrics.py checks that the package's registry (``scrapy_apigw.ops.metrics``) has each
of them with these types and labels; the monitoring files are checked against this list. (The
registry has a few more, e.g. ``api_gateway_responses_total``, that no dashboard uses yet.)
"""

from __future__ import annotations

#: name -> (type, labels). Counters are named with their ``_total`` as exposed.
KNOWN_METRICS: dict[str, tuple[str, frozenset[str]]] = {
    "api_gateway_rate_limit_requests_total": ("counter", frozenset({"provider", "status"})),
    "api_gateway_rate_limit_tokens": ("gauge", frozenset({"provider"})),
    "api_gateway_rate_limit_wait_seconds": ("histogram", frozenset({"provider"})),
    "api_gateway_cache_hits_total": ("counter", frozenset({"provider", "data_type"})),
    "api_gateway_cache_misses_total": ("counter", frozenset({"provider", "data_type"})),
    "api_gateway_cache_errors_total": ("counter", frozenset({"provider", "operation"})),
    "api_gateway_circuit_breaker_state": ("gauge", frozenset({"provider"})),
    "api_gateway_circuit_breaker_failures_total": ("counter", frozenset({"provider"})),
    "api_gateway_circuit_breaker_opens_total": ("counter", frozenset({"provider"})),
    "api_gateway_circuit_breaker_recoveries_total": ("counter", frozenset({"provider"})),
    "api_gateway_retry_attempts_total": ("counter", frozenset({"provider", "error_type"})),
    "api_gateway_retry_success_total": ("counter", frozenset({"provider"})),
    "api_gateway_retry_failures_total": ("counter", frozenset({"provider"})),
    "api_response_time_seconds": ("histogram", frozenset({"provider"})),
    "tracks_enriched_total": ("counter", frozenset({"status"})),
    "enrichment_duration_seconds": ("histogram", frozenset()),
    "enrichment_tasks_total": ("counter", frozenset({"source", "status"})),
    # The extras (issue 8: "what an operator also needs").
    "api_gateway_rate_limit_effective_rate": ("gauge", frozenset({"provider"})),
    "api_gateway_cache_stale_served_total": ("counter", frozenset({"provider"})),
    "api_gateway_calls_saved_total": ("counter", frozenset({"provider", "reason"})),
}

#: Labels any series gets from the scrape (and Prometheus' own ``le`` of histogram buckets).
TARGET_LABELS = frozenset({"job", "instance", "le"})


def series_names() -> dict[str, str]:
    """Every series name a scrape can show -> the metric it belongs to (a histogram ``h``
    shows ``h_bucket``, ``h_sum``, ``h_count``; a counter ``c_total`` also ``c_created``)."""
    names: dict[str, str] = {}
    for name, (kind, _labels) in KNOWN_METRICS.items():
        if kind == "histogram":
            for suffix in ("_bucket", "_sum", "_count", "_created"):
                names[name + suffix] = name
        else:
            names[name] = name
            if kind == "counter":
                names[name.removesuffix("_total") + "_created"] = name
    return names
