"""The one HTTP surface of the operations layer: ``/metrics`` plus the children given
(``/health``, ``/admin``, ``/stats``...), as a ``twisted.web`` resource tree.

Served by a crawl (:class:`~scrapy_apigw.ops.extension.OpsExtension`, ``APIGW_METRICS_PORT``)
and by ``apigw serve`` (:mod:`scrapy_apigw.ops.serve`). Nothing here imports the reactor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

from twisted.web.resource import IResource, Resource

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from twisted.web.server import Request

__all__ = ["MetricsResource", "build_root"]


class MetricsResource(Resource):
    """``GET /metrics``: *registry* in the Prometheus text format (version 0.0.4).

    Rendered in the reactor's thread: the gateway's registry is small and collecting it takes
    well under a millisecond, and no lock of the crawl is ever taken from another thread.
    ``prometheus_client.twisted.MetricsResource`` is not used: it imports the reactor at import
    time and renders in the thread pool.

    Args:
        registry: what is exposed (a crawl's registry, or one holding a
            ``MultiProcessCollector`` for ``apigw serve``).
    """

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self.registry = registry

    def render_GET(self, request: Request) -> bytes:
        """The exposition; ``Content-Type: text/plain; version=0.0.4``."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))
        request.setHeader(b"Cache-Control", b"no-store")
        return generate_latest(self.registry)


class _Root(Resource):
    """``GET /``: the list of the paths served, one a line."""

    def getChild(self, path: bytes, request: Request) -> Resource:
        """``/`` is this index; any other unknown path is a plain 404."""
        if path == b"":
            return self
        from twisted.web.pages import notFound

        return cast(Resource, notFound())

    def render_GET(self, request: Request) -> bytes:
        """The index."""
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        paths = sorted(b"/" + name for name in self.children)
        return b"scrapy-apigw\n" + b"".join(path + b"\n" for path in paths)


def build_root(children: Mapping[bytes, Resource], *, registry: CollectorRegistry) -> Resource:
    """The root resource: ``/metrics`` (from *registry*) and every child of *children*.

    Args:
        children: path segment (e.g. ``b"health"``, ``b"admin"``, ``b"stats"``) -> resource.
        registry: the Prometheus registry ``/metrics`` exposes.

    Raises:
        ValueError: *children* names ``b"metrics"`` (mounted here) or an empty segment.
    """
    root = _Root()
    root.putChild(b"metrics", cast(IResource, MetricsResource(registry)))
    for name, child in children.items():
        if name in (b"", b"metrics") or b"/" in name:
            raise ValueError(f"cannot mount a child at /{name.decode('ascii', 'replace')}")
        root.putChild(name, cast(IResource, child))
    return root
