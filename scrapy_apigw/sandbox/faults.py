"""Fault injection per provider: outages, errors, latency, forced 429s, a quota, broken
connections and malformed bodies.

Faults are set at run time (``POST /_sandbox/faults`` or ``Sandbox.set_faults``) and merged
into the provider's current settings; ``clear`` resets them. Random draws come from one
``random.Random`` per provider seeded with ``"{seed}:{provider}"``, so a run is repeatable.

Precedence for one request: outage, then a forced rate limit (``rate_limit_next``), then a
quota (``quota_limit`` requests per moving ``quota_window`` seconds, on top of the provider's
own limit: its rate-limit answer with a ``Retry-After``), then a random error
(``error_rate``), then a connection fault that needs no answer (``reset``, ``hang``);
otherwise the provider answers, and its answer may be delivered broken (``reset_mid_body``,
``trickle``) or, if 2xx, replaced by a malformed one (``malformed_rate``
with ``malformed_kind``). ``latency`` delays every answer, without blocking the reactor.
``connection: "refused"`` acts below HTTP: the server stops listening on the provider's own
port (see :mod:`scrapy_apigw.sandbox.server`), so no request arrives to be planned.

``expire_after: N`` makes a fault a burst: once faults have been applied to N requests of the
provider, its faults clear themselves (then the provider recovers).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from scrapy_apigw.sandbox.http import Reply
from scrapy_apigw.sandbox.limits import SlidingWindow, retry_after_header

__all__ = [
    "CONNECTION_FAULTS",
    "MALFORMED_KINDS",
    "FaultError",
    "FaultInjector",
    "FaultPlan",
    "FaultSettings",
    "malform",
]

#: Values of ``connection``: what happens to the TCP connection instead of a normal answer.
#:
#: - ``refused``: the provider's own port stops listening (clients get ECONNREFUSED).
#: - ``reset``: the request is read, then the connection is reset (RST) before any answer.
#: - ``reset_mid_body``: the status line, the headers (with the full ``Content-Length``) and
#:   half the body are sent, then the connection is reset.
#: - ``hang``: the request is read and never answered (held until the client gives up, the
#:   provider's faults are cleared or reset, or the sandbox stops).
#: - ``trickle``: the answer is sent a few bytes at a time, the whole body taking
#:   ``trickle_seconds``.
CONNECTION_FAULTS = ("refused", "reset", "reset_mid_body", "hang", "trickle")

#: Values of ``malformed_kind``: how a 2xx answer is broken when ``malformed_rate`` hits.
#:
#: - ``truncated``: the first half of the body (a cut JSON document is never valid).
#: - ``not_json``: a plain-text sentence under the provider's JSON content type.
#: - ``html``: an HTML page (a CDN challenge or captive portal) with ``text/html``.
#: - ``wrong_content_type``: the provider's valid body, labelled ``text/plain``.
#: - ``empty``: an empty body.
#: - ``missing_keys``: valid JSON without any of the keys a client needs (``{}``).
MALFORMED_KINDS = ("truncated", "not_json", "html", "wrong_content_type", "empty", "missing_keys")

NOT_JSON_TEXT = "This is not JSON: the sandbox replaced the provider's answer."
HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Just a moment...</title></head>\n"
    "<body><h1>Checking your browser before accessing the API</h1></body></html>\n"
)


class FaultError(ValueError):
    """An invalid fault request (unknown provider or key, value out of range)."""


@dataclass(frozen=True)
class FaultSettings:
    """The faults of one provider.

    Attributes:
        outage: every request gets ``error_status``.
        error_rate: probability (0..1) that a request gets ``error_status``.
        error_status: status of outages and random errors; ``None`` = provider default
            (503, or 502 for MusicBrainz whose 503 means "rate limited").
        latency: seconds added before every answer.
        rate_limit_next: the next N requests get the provider's rate-limit answer.
        retry_after: ``Retry-After`` value sent verbatim with those (delta-seconds or an
            HTTP-date); ``None`` sends none (Spotify then sends ``1``).
        malformed_rate: probability (0..1) that a 2xx answer is replaced by a malformed one.
        malformed_kind: how it is malformed, one of :data:`MALFORMED_KINDS`.
        connection: a connection-level fault, one of :data:`CONNECTION_FAULTS`, or ``None``.
        trickle_seconds: how long a ``trickle`` takes to send the whole body, seconds (> 0).
        expire_after: after faults were applied to this many requests, the provider's faults
            clear themselves; 0 keeps them until cleared.
        quota_limit: admit at most this many requests in any ``quota_window`` seconds (a
            sliding window, like Spotify's); over it the provider's rate-limit answer, with
            ``Retry-After`` = seconds until the window frees a slot (rounded up, at least 1),
            logged ``rate_limited: true``; 0: off. Refused requests are not counted.
        quota_window: the quota's window, real seconds (not scaled by the speed), > 0.
    """

    outage: bool = False
    error_rate: float = 0.0
    error_status: int | None = None
    latency: float = 0.0
    rate_limit_next: int = 0
    retry_after: str | None = None
    malformed_rate: float = 0.0
    malformed_kind: str = "truncated"
    connection: str | None = None
    trickle_seconds: float = 1.0
    expire_after: int = 0
    quota_limit: int = 0
    quota_window: float = 1.0


@dataclass(frozen=True)
class FaultPlan:
    """What the faults decided for one request.

    Attributes:
        kind: ``"outage"``, ``"forced_429"``, ``"quota"`` (over the quota fault), ``"error"``
            or ``None`` (the provider answers).
        status: the status of an outage or error.
        retry_after: header value for a forced rate limit.
        malformed: the malformed kind to apply if the provider answers 2xx, or ``None``.
        latency: seconds to wait before answering.
        connection: the connection fault of this request (``reset``, ``reset_mid_body``,
            ``hang``, ``trickle``) or ``None``.
        trickle_seconds: duration of a ``trickle``, seconds.
    """

    kind: str | None = None
    status: int | None = None
    retry_after: str | None = None
    malformed: str | None = None
    latency: float = 0.0
    connection: str | None = None
    trickle_seconds: float = 0.0

    @property
    def faulty(self) -> bool:
        """True when any fault applies to the request (it counts towards ``expire_after``)."""
        return bool(self.kind or self.malformed or self.connection or self.latency > 0)


def _rate(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise FaultError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def _validate(update: Mapping[str, Any]) -> dict[str, Any]:
    known = {f for f in FaultSettings.__dataclass_fields__}
    unknown = set(update) - known
    if unknown:
        raise FaultError(f"unknown fault key(s) {sorted(unknown)}; known: {sorted(known)}")
    clean: dict[str, Any] = {}
    for key, value in update.items():
        if key == "outage":
            if not isinstance(value, bool):
                raise FaultError(f"outage must be true or false, got {value!r}")
            clean[key] = value
        elif key in ("error_rate", "malformed_rate"):
            clean[key] = _rate(key, value)
        elif key == "error_status":
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not 400 <= value <= 599
            ):
                raise FaultError(f"error_status must be an int in 400..599, got {value!r}")
            clean[key] = value
        elif key == "latency":
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise FaultError(f"latency must be seconds >= 0, got {value!r}")
            clean[key] = float(value)
        elif key in ("rate_limit_next", "expire_after", "quota_limit"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise FaultError(f"{key} must be an int >= 0, got {value!r}")
            clean[key] = value
        elif key == "malformed_kind":
            if value not in MALFORMED_KINDS:
                raise FaultError(f"malformed_kind must be one of {MALFORMED_KINDS}, got {value!r}")
            clean[key] = value
        elif key == "connection":
            if value is not None and value not in CONNECTION_FAULTS:
                raise FaultError(
                    f"connection must be null or one of {CONNECTION_FAULTS}, got {value!r}"
                )
            clean[key] = value
        elif key in ("trickle_seconds", "quota_window"):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise FaultError(f"{key} must be seconds > 0, got {value!r}")
            clean[key] = float(value)
        elif key == "retry_after":
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, str | int | float)
            ):
                raise FaultError(f"retry_after must be a string or a number, got {value!r}")
            clean[key] = None if value is None else str(value)
    return clean


class FaultInjector:
    """Holds the fault settings of every provider and decides each request's fate.

    Args:
        default_status: per provider, the status of outages and errors when none is given.
        seed: seed of the per-provider random generators.
    """

    def __init__(self, default_status: Mapping[str, int], seed: int = 0) -> None:
        self._defaults = dict(default_status)
        self._seed = seed
        self._settings: dict[str, FaultSettings] = {}
        self._rngs: dict[str, random.Random] = {}
        self._applied: dict[str, int] = {}  # requests faulted since the last set/clear
        self._quotas: dict[str, SlidingWindow] = {}  # the quota fault's windows
        self.reset()

    @property
    def providers(self) -> Iterable[str]:
        """Names of the providers faults can be set on."""
        return self._defaults.keys()

    def _check(self, provider: str) -> None:
        if provider not in self._defaults:
            raise FaultError(f"unknown provider {provider!r}; known: {sorted(self._defaults)}")

    def set(self, provider: str, **update: Any) -> FaultSettings:
        """Merge *update* into *provider*'s faults and return the result.

        Raises:
            FaultError: unknown provider or key, or an invalid value.
        """
        self._check(provider)
        merged = replace(self._settings[provider], **_validate(update))
        self._settings[provider] = merged
        self._applied[provider] = 0
        return merged

    def clear(self, provider: str) -> None:
        """Remove every fault of *provider* and re-seed its random generator."""
        self._check(provider)
        self._settings[provider] = FaultSettings()
        self._rngs[provider] = random.Random(f"{self._seed}:{provider}")
        self._applied[provider] = 0
        self._quotas.pop(provider, None)

    def reset(self) -> None:
        """Clear the faults of every provider."""
        for provider in self._defaults:
            self.clear(provider)

    def get(self, provider: str) -> FaultSettings:
        """Current faults of *provider*."""
        self._check(provider)
        return self._settings[provider]

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Current faults of every provider, as JSON-ready dicts."""
        return {name: asdict(settings) for name, settings in self._settings.items()}

    def plan(
        self, provider: str, *, outage_only: bool = False, now: float | None = None
    ) -> FaultPlan:
        """Decide the faults of one request to *provider* (consumes ``rate_limit_next`` and
        ``expire_after``; counts the request in the quota fault's window).

        Args:
            outage_only: the request is only subject to outages and latency (e.g. the Spotify
                token service, a separate host from the Web API).
            now: the request's arrival, monotonic seconds; the quota fault needs it (None:
                no quota applies).
        """
        plan = self._decide(provider, outage_only, now)
        s = self._settings[provider]
        if plan.faulty and s.expire_after > 0:
            self._applied[provider] += 1
            if self._applied[provider] >= s.expire_after:
                # The burst is over: the provider recovers (its random generator keeps going).
                self._settings[provider] = FaultSettings()
                self._applied[provider] = 0
        return plan

    def _decide(self, provider: str, outage_only: bool, now: float | None) -> FaultPlan:
        s = self._settings[provider]
        status = s.error_status or self._defaults[provider]
        if s.outage:
            return FaultPlan("outage", status, latency=s.latency)
        if outage_only:
            return FaultPlan(latency=s.latency)
        if s.rate_limit_next > 0:
            self._settings[provider] = replace(s, rate_limit_next=s.rate_limit_next - 1)
            return FaultPlan("forced_429", retry_after=s.retry_after, latency=s.latency)
        if s.quota_limit > 0 and now is not None:
            window = self._quotas.get(provider)
            if window is None or window.window != s.quota_window:
                window = self._quotas[provider] = SlidingWindow(s.quota_window)
            decision = window.acquire(now, s.quota_limit)
            if not decision.allowed:
                retry_after = retry_after_header(decision.retry_after)
                return FaultPlan("quota", retry_after=retry_after, latency=s.latency)
        rng = self._rngs[provider]
        if s.error_rate > 0 and rng.random() < s.error_rate:
            return FaultPlan("error", status, latency=s.latency)
        # "refused" acts on the listening port; no request that arrives is planned with it.
        connection = s.connection if s.connection != "refused" else None
        malformed = s.malformed_rate > 0 and rng.random() < s.malformed_rate
        return FaultPlan(
            malformed=s.malformed_kind if malformed else None,
            latency=s.latency,
            connection=connection,
            trickle_seconds=s.trickle_seconds if connection == "trickle" else 0.0,
        )


def malform(reply: Reply, kind: str = "truncated") -> Reply:
    """A malformed copy of a 2xx *reply*, broken as *kind* says (see :data:`MALFORMED_KINDS`).

    The status stays; ``Content-Length`` follows the new body (the server sets it).

    Raises:
        FaultError: an unknown *kind*.
    """
    if kind == "truncated":
        return replace(reply, body=reply.body[: len(reply.body) // 2])
    if kind == "not_json":
        return replace(reply, body=NOT_JSON_TEXT.encode())
    if kind == "html":
        return replace(reply, body=HTML_PAGE.encode(), content_type="text/html; charset=utf-8")
    if kind == "wrong_content_type":
        return replace(reply, content_type="text/plain; charset=utf-8")
    if kind == "empty":
        return replace(reply, body=b"")
    if kind == "missing_keys":
        return replace(reply, body=b"{}", content_type="application/json; charset=utf-8")
    raise FaultError(f"malformed_kind must be one of {MALFORMED_KINDS}, got {kind!r}")
