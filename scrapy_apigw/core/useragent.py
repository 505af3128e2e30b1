"""Is a User-Agent meaningful to MusicBrainz? (PROVIDERS.md section 2, MusicBrainz rate limiting)

MusicBrainz asks every client for a meaningful User-Agent, ``Application/version ( contact )``
such as ``MyApp/1.2.0 ( contact@example.com )``; the contact is an e-mail address or a URL.
"Anonymous" User-Agents (a library's default, or one that names no one to contact) share one
small pool and are throttled or blocked. The sandbox refuses what :func:`user_agent_problem`
flags, and the gateway does not send such a User-Agent to MusicBrainz at all.
"""

from __future__ import annotations

import re

__all__ = ["GENERIC_PRODUCTS", "user_agent_problem"]

#: Product names of HTTP libraries and tools whose default User-Agent identifies no application
#: (compared case-insensitively with the first product token's name).
GENERIC_PRODUCTS = frozenset(
    {
        "python-requests", "python-urllib", "python-httpx", "python", "aiohttp", "httpx",
        "urllib3", "scrapy", "twisted", "twisted pagegetter", "treq", "curl", "wget",
        "go-http-client", "okhttp", "java", "apache-httpclient", "libwww-perl", "axios",
        "node-fetch", "undici", "mozilla", "httpie", "ruby", "php", "guzzlehttp",
    }
)  # fmt: skip

_PRODUCT = re.compile(r"^\s*([^/\s(]+(?:\s[^/\s(]+)?)\s*(?:/\s*(\S+))?")
_EMAIL = re.compile(r"[^\s()<>@]+@[^\s()<>@]+\.[^\s()<>@]+")
_URL = re.compile(r"(?i)\bhttps?://[^\s()]+")


def user_agent_problem(user_agent: str | None) -> str | None:
    """Why MusicBrainz would treat *user_agent* as anonymous, or None when it is meaningful.

    Returns one of ``"missing"`` (absent or blank), ``"generic"`` (the first product is an HTTP
    library or tool: ``python-requests/2.32.3``, ``Scrapy/2.19 (+https://scrapy.org)``) or
    ``"no contact"`` (no e-mail address or URL anywhere, e.g. ``scrapy-apigw/0.2.0``).

    >>> user_agent_problem("MyApp/1.2.0 ( contact@example.com )") is None
    True
    >>> user_agent_problem("scrapy-apigw/0.2.0")
    'no contact'
    """
    if user_agent is None or not user_agent.strip():
        return "missing"
    match = _PRODUCT.match(user_agent)
    product = match.group(1).casefold() if match else ""
    if product in GENERIC_PRODUCTS:
        return "generic"
    if not (_EMAIL.search(user_agent) or _URL.search(user_agent)):
        return "no contact"
    return None
