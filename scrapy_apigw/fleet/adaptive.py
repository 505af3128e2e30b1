"""The fleet's adaptive-rate record: :class:`~scrapy_apigw.core.adaptive.AdaptiveState` as the
text fields of a Redis hash (``fleet/adaptive.lua``), and back.

Times in the record are Redis server seconds (``TIME``), the fleet's one clock; a process turns
its own instants into server ones with the offset it measured on its last reply (see
docs/design.md, "Adaptive rate, fleet-wide").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields, replace

from scrapy_apigw.core.adaptive import AdaptiveState, AimdConfig

__all__ = ["state_fields", "state_from_fields"]

_INTEGERS = {"burst", "ceiling_burst", "decreases", "increases", "burst_cap", "moved"}


def state_fields(state: AdaptiveState) -> dict[str, str]:
    """*state* as ``field -> text`` (``repr`` of floats: exact, ``inf`` / ``-inf`` kept)."""
    return {
        f.name: str(int(value)) if f.name in _INTEGERS else repr(float(value))
        for f in fields(AdaptiveState)
        for value in (getattr(state, f.name),)
    }


def state_from_fields(values: Mapping[str, str], config: AimdConfig) -> AdaptiveState:
    """The state stored as *values*; :meth:`AdaptiveState.initial` when nothing is stored.

    A field missing or unreadable keeps its initial value; the effective rate and burst are
    kept within ``(0, configured]`` (a record written by a process configured higher cannot
    raise this one above its own ceiling).
    """
    state = AdaptiveState.initial(config)
    if not values:
        return state
    update: dict[str, float | int] = {}
    for f in fields(AdaptiveState):
        text = values.get(f.name)
        if text is None:
            continue
        try:
            number = float(text)
        except ValueError:
            continue
        if math.isnan(number):
            continue
        update[f.name] = int(number) if f.name in _INTEGERS else number
    state = replace(state, **update)  # type: ignore[arg-type]
    rate = state.rate if state.rate > 0 and math.isfinite(state.rate) else config.rate
    return replace(
        state,
        rate=min(rate, config.rate),
        burst=max(1, min(state.burst, config.burst)),
        ceiling_rate=min(state.ceiling_rate, config.rate),
        ceiling_burst=max(1, min(state.ceiling_burst, config.burst)),
        good_rate=min(state.good_rate, config.rate),
    )
