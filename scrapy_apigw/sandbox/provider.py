"""The interface every simulated provider implements, and the shared JSON error helpers."""

from __future__ import annotations

from typing import ClassVar

from scrapy_apigw.sandbox.http import Reply, SandboxRequest, json_reply

__all__ = ["Provider"]


class Provider:
    """One simulated service mounted at ``/{name}/`` on the sandbox.

    The dispatcher applies faults first, then calls :meth:`serve`, which owns the provider's
    own order of checks (auth, rate limit, routing), so each quirk lives in one module.
    """

    name: ClassVar[str] = ""
    #: Status of ``outage`` and ``error_rate`` faults when the fault names none.
    default_error_status: ClassVar[int] = 503

    def serve(self, req: SandboxRequest) -> Reply:
        """Answer *req* as the real service would (auth, rate limit, routing, shapes)."""
        raise NotImplementedError

    def fault_exempt(self, req: SandboxRequest) -> bool:
        """True when *req* is only subject to outages (e.g. a separate auth service)."""
        return False

    def rate_limit_reply(self, req: SandboxRequest, retry_after: str | None) -> Reply:
        """The provider's "too fast" answer forced by a ``rate_limit_next`` fault.

        Args:
            retry_after: the ``Retry-After`` value to send verbatim, or ``None`` for none.
        """
        headers = (("Retry-After", retry_after),) if retry_after is not None else ()
        return json_reply(429, {"message": "Too Many Requests"}, headers)

    def error_reply(self, req: SandboxRequest, status: int, fault: str) -> Reply:
        """The provider's server-error answer for an ``outage`` or ``error`` fault."""
        return json_reply(status, {"message": "Service Unavailable"})

    def reset(self) -> None:
        """Forget rate-limit state."""
