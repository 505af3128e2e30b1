"""Fault injection per provider: outages, random errors, latency, forced 429s, broken bodies.

Faults are set at run time (``POST /_sandbox/faults`` or ``Sandbox.set_faults``) and merged
into the provider's current settings; ``clear`` resets them. Random draws come from one
``random.Random`` per provider seeded with ``"{seed}:{provider}"``, so a run is repeatable.

Precedence for one request: outage, then a forced rate limit (``rate_limit_next``), then a
random error (``error_rate``); when none applies the provider answers and a 2xx body may be
truncated (``malformed_rate``). ``latency`` delays every answer, without blocking the reactor.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

__all__ = ["FaultError", "FaultInjector", "FaultPlan", "FaultSettings", "malform"]


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
        malformed_rate: probability (0..1) that a 2xx body is cut in half.
    """

    outage: bool = False
    error_rate: float = 0.0
    error_status: int | None = None
    latency: float = 0.0
    rate_limit_next: int = 0
    retry_after: str | None = None
    malformed_rate: float = 0.0


@dataclass(frozen=True)
class FaultPlan:
    """What the faults decided for one request.

    Attributes:
        kind: ``"outage"``, ``"forced_429"``, ``"error"`` or ``None`` (the provider answers).
        status: the status of an outage or error.
        retry_after: header value for a forced rate limit.
        malformed: cut the body if the provider answers 2xx.
        latency: seconds to wait before answering.
    """

    kind: str | None = None
    status: int | None = None
    retry_after: str | None = None
    malformed: bool = False
    latency: float = 0.0


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
        elif key == "rate_limit_next":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise FaultError(f"rate_limit_next must be an int >= 0, got {value!r}")
            clean[key] = value
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
        return merged

    def clear(self, provider: str) -> None:
        """Remove every fault of *provider* and re-seed its random generator."""
        self._check(provider)
        self._settings[provider] = FaultSettings()
        self._rngs[provider] = random.Random(f"{self._seed}:{provider}")

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

    def plan(self, provider: str, *, outage_only: bool = False) -> FaultPlan:
        """Decide the faults of one request to *provider* (consumes ``rate_limit_next``).

        Args:
            outage_only: the request is only subject to outages and latency (e.g. the Spotify
                token service, a separate host from the Web API).
        """
        s = self._settings[provider]
        status = s.error_status or self._defaults[provider]
        if s.outage:
            return FaultPlan("outage", status, latency=s.latency)
        if outage_only:
            return FaultPlan(latency=s.latency)
        if s.rate_limit_next > 0:
            self._settings[provider] = replace(s, rate_limit_next=s.rate_limit_next - 1)
            return FaultPlan("forced_429", retry_after=s.retry_after, latency=s.latency)
        rng = self._rngs[provider]
        if s.error_rate > 0 and rng.random() < s.error_rate:
            return FaultPlan("error", status, latency=s.latency)
        malformed = s.malformed_rate > 0 and rng.random() < s.malformed_rate
        return FaultPlan(malformed=malformed, latency=s.latency)


def malform(body: bytes) -> bytes:
    """A broken copy of *body*: its first half (a truncated JSON document is never valid)."""
    return body[: len(body) // 2]
