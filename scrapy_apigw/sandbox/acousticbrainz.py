"""AcousticBrainz (PROVIDERS.md section 5b), mounted at ``/acousticbrainz``: shut down.

MetaBrainz ended the project in 2022 and took the site offline in early 2023. Every request,
e.g. ``GET {url}/acousticbrainz/api/v1/{mbid}/low-level``, gets ``410 Gone`` with a short JSON
explanation, so clients learn to treat the provider as unavailable for good (not as a
transient error to retry). Faults still apply; there is no rate limit.
"""

from __future__ import annotations

from scrapy_apigw.sandbox.http import Reply, SandboxRequest, json_reply
from scrapy_apigw.sandbox.provider import Provider

__all__ = ["AcousticBrainz"]

GONE_MESSAGE = (
    "AcousticBrainz has been shut down: submissions stopped in June 2022 and the API went "
    "offline in 2023. Final data dumps remain available from MetaBrainz."
)


class AcousticBrainz(Provider):
    """A provider that is gone."""

    name = "acousticbrainz"

    def serve(self, req: SandboxRequest) -> Reply:
        """410 Gone for every path."""
        return json_reply(410, {"message": GONE_MESSAGE})
