"""The operations layer: Prometheus metrics, the HTTP surface (``/metrics``, ``/health``,
``/admin``, ``/stats``), progress and coverage, and the ``apigw`` command.

Nothing here imports ``prometheus_client`` or ``twisted.internet.reactor`` at import time
(``PROMETHEUS_MULTIPROC_DIR`` must be set before ``prometheus_client`` is imported, and the
reactor is Scrapy's to install).
"""
