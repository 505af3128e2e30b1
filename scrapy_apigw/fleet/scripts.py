"""The fleet's Lua scripts, each in a server-clock variant and a test-only argument-clock one.

Each ``*.lua`` file of this package is the body of one script and reads the instant it decides
at from a variable ``now`` (integer microseconds). A one-line prelude defines it:

- ``server`` (production): ``now`` is Redis ``TIME`` (``seconds * 1e6 + microseconds``), the one
  clock every process of the fleet shares; the client's clock is never used (clock skew between
  machines would otherwise break a shared quota, RESILIENCE.md §2).
- ``argument`` (tests only): ``now`` is taken from the first argument, which is then removed, so
  the body sees the same ``ARGV`` as in production. Tests thereby drive the exact logic that runs
  in production at exact instants.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Literal

__all__ = ["SCRIPT_NAMES", "Script", "load_script"]

Clock = Literal["server", "argument"]

#: The scripts of the package: ``rate`` (acquire), ``pause``, ``quota``, ``breaker``,
#: ``heartbeat``, ``adaptive`` (compare-and-set of the adaptive-rate record), ``limits``
#: (admin: read or reset a provider's shared rate limits).
SCRIPT_NAMES = ("rate", "pause", "quota", "breaker", "heartbeat", "adaptive", "limits")

_PRELUDES: dict[str, str] = {
    # Scripts that write after reading TIME need effects replication before Redis 5 (a no-op
    # returning true since 7.0).
    "server": (
        "if redis.replicate_commands then redis.replicate_commands() end\n"
        "local now_parts = redis.call('TIME')\n"
        "local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])\n"
    ),
    "argument": "local now = tonumber(table.remove(ARGV, 1)) -- TEST ONLY: the instant, us\n",
}


@dataclass(frozen=True)
class Script:
    """One Lua script, ready for ``EVALSHA``.

    Attributes:
        name: the script's name (a :data:`SCRIPT_NAMES` entry).
        clock: ``"server"`` (Redis ``TIME``) or ``"argument"`` (test only: the instant in
            microseconds is the first argument).
        source: the full script, prelude included, UTF-8.
        sha: SHA-1 of ``source``, hex, as ``EVALSHA`` and ``SCRIPT LOAD`` name it.
    """

    name: str
    clock: Clock
    source: bytes
    sha: str


@functools.cache
def load_script(name: str, clock: Clock = "server") -> Script:
    """Return the script *name* with the *clock* prelude.

    Raises:
        ValueError: an unknown script name or clock.
    """
    if name not in SCRIPT_NAMES:
        raise ValueError(f"unknown fleet script {name!r}; known: {', '.join(SCRIPT_NAMES)}")
    if clock not in _PRELUDES:
        raise ValueError(f"unknown script clock {clock!r}; known: server, argument")
    body = resources.files(__package__).joinpath(f"{name}.lua").read_text(encoding="utf-8")
    source = (_PRELUDES[clock] + body).encode()
    return Script(name, clock, source, hashlib.sha1(source).hexdigest())
