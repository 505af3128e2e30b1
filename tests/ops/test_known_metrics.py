"""The metric names the monitoring files are checked against (known_metrics.py) are the ones
the package registers, with the same types and labels."""

from __future__ import annotations

from known_metrics import KNOWN_METRICS


def test_every_known_metric_is_registered_with_its_type_and_labels():
    from prometheus_client.metrics import MetricWrapperBase

    from scrapy_apigw.ops.metrics import GatewayMetrics

    registered = {}
    for metric in vars(GatewayMetrics()).values():
        if isinstance(metric, MetricWrapperBase):
            name = metric._name + ("_total" if metric._type == "counter" else "")
            registered[name] = (metric._type, frozenset(metric._labelnames))
    missing = {name: spec for name, spec in KNOWN_METRICS.items() if registered.get(name) != spec}
    assert not missing, {name: registered.get(name) for name in missing}
