"""Fleet-wide limits: every process naming the same fleet shares each provider's rate, pauses,
window quota, learned quota and circuit breaker through Redis (Lua scripts on the server's
clock). See docs/design.md, "Fleet-wide limits" and "Fleet state in Redis".

Nothing here imports txredisapi or the reactor at module level.
"""

from scrapy_apigw.fleet.keys import ProviderKeys, processes_key, provider_keys
from scrapy_apigw.fleet.scripts import SCRIPT_NAMES, Script, load_script
from scrapy_apigw.fleet.store import (
    BreakerDecision,
    BreakerLimits,
    FleetStore,
    FleetUnavailable,
    LearnedQuota,
    PauseDecision,
    RateDecision,
    RateLimits,
)

__all__ = [
    "SCRIPT_NAMES",
    "BreakerDecision",
    "BreakerLimits",
    "FleetStore",
    "FleetUnavailable",
    "LearnedQuota",
    "PauseDecision",
    "ProviderKeys",
    "RateDecision",
    "RateLimits",
    "Script",
    "load_script",
    "processes_key",
    "provider_keys",
]
