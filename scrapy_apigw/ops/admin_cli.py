"""The admin commands of ``apigw``, against Redis directly (for fleets whose jobs come and go)::

    apigw breakers list | reset PROVIDER | reset-all
    apigw rate-limits list | reset PROVIDER
    apigw cache stats | invalidate --provider PROVIDER [--data-type TYPE]
    apigw health

Each reads the project's settings (``SCRAPY_SETTINGS_MODULE`` or the ``scrapy.cfg`` above the
working directory, as ``scrapy`` does: the providers as the crawls configure them), and
``--redis-url``, ``--fleet`` and ``--namespace`` override ``APIGW_REDIS_URL``, ``APIGW_FLEET``
and ``APIGW_CACHE_NAMESPACE`` (defaults as in the settings: no URL, the namespace ``apigw``,
the fleet named as the namespace). The answer is printed as JSON (the admin endpoints' body);
exit status 0, or 1 with one line on stderr (unknown provider, Redis failing; never a
password), or 1 for ``health`` when the fleet is unhealthy. The same actions act on the same
state as the ``/admin`` endpoints (:mod:`scrapy_apigw.ops.state`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from scrapy_apigw.exceptions import ConfigError

__all__ = ["add_redis_options", "build_parser", "main", "register", "settings_from_args"]

Action = Callable[[Any], Awaitable[Any]]


def add_redis_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--redis-url``, ``--fleet`` and ``--namespace`` (read by :func:`settings_from_args`)."""
    parser.add_argument("--redis-url", help="Redis of the fleet (default: APIGW_REDIS_URL)")
    parser.add_argument("--fleet", help="fleet name (default: APIGW_FLEET, else the namespace)")
    parser.add_argument("--namespace", help="key prefix (default: APIGW_CACHE_NAMESPACE, apigw)")


def register(subparsers: Any) -> None:
    """Add ``breakers``, ``rate-limits``, ``cache`` and ``health`` to the ``apigw`` parser's
    *subparsers* (each with ``set_defaults(func=...)`` returning the exit status)."""
    # SUPPRESS: an option given before the action is not reset by the action's parser.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    add_redis_options(common)

    breakers = subparsers.add_parser(
        "breakers", parents=[common], help="list or reset the fleet's circuit breakers"
    )
    sub = breakers.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", parents=[common], help="every provider's breaker").set_defaults(
        func=_command(lambda state, args: state.breakers())
    )
    reset = sub.add_parser("reset", parents=[common], help="close one provider's circuit")
    reset.add_argument("provider")
    reset.set_defaults(func=_command(lambda state, args: state.reset_breaker(args.provider)))
    sub.add_parser("reset-all", parents=[common], help="close every circuit").set_defaults(
        func=_command(lambda state, args: state.reset_all_breakers())
    )

    limits = subparsers.add_parser(
        "rate-limits", parents=[common], help="list or reset the fleet's rate limits"
    )
    sub = limits.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", parents=[common], help="every provider's limits").set_defaults(
        func=_command(lambda state, args: state.rate_limits())
    )
    reset = sub.add_parser("reset", parents=[common], help="reset one provider's limits")
    reset.add_argument("provider")
    reset.set_defaults(func=_command(lambda state, args: state.reset_rate_limits(args.provider)))

    cache = subparsers.add_parser("cache", parents=[common], help="cache statistics, invalidation")
    sub = cache.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("stats", parents=[common], help="entries, hits, misses").set_defaults(
        func=_command(lambda state, args: state.cache_stats())
    )
    invalidate = sub.add_parser(
        "invalidate", parents=[common], help="make later lookups miss (O(1))"
    )
    invalidate.add_argument("--provider", required=True)
    invalidate.add_argument("--data-type", help="one data type (default: every one cached)")
    invalidate.set_defaults(
        func=_command(lambda state, args: state.invalidate_cache(args.provider, args.data_type))
    )

    health = subparsers.add_parser("health", parents=[common], help="the fleet's health report")
    health.set_defaults(func=_command(lambda state, args: state.health(), health=True))


def _command(
    action: Callable[[Any, Any], Awaitable[Any]], health: bool = False
) -> Callable[[Any], int]:
    def run(args: Any) -> int:
        return _run(args, action, health)

    return run


def settings_from_args(args: Any) -> Any:
    """The project's :class:`~scrapy_apigw.settings.GatewaySettings`, with ``--redis-url``,
    ``--fleet`` and ``--namespace`` (when given in *args*) over their settings.

    Raises:
        ConfigError: a setting is invalid.
    """
    from scrapy.utils.project import get_project_settings

    from scrapy_apigw.settings import GatewaySettings

    settings = get_project_settings()
    for option, name in (
        ("redis_url", "APIGW_REDIS_URL"),
        ("fleet", "APIGW_FLEET"),
        ("namespace", "APIGW_CACHE_NAMESPACE"),
    ):
        value = getattr(args, option, None)
        if value:
            settings.set(name, value, priority="cmdline")
    return GatewaySettings.from_settings(settings)


def _run(args: Any, action: Callable[[Any, Any], Awaitable[Any]], health: bool) -> int:
    from scrapy.utils.defer import deferred_from_coro
    from scrapy.utils.reactor import install_reactor

    from scrapy_apigw.ops.state import RedisState, StateUnavailable, UnknownProvider

    try:
        state = RedisState(settings_from_args(args))
    except (ConfigError, StateUnavailable) as exc:
        print(f"apigw: {exc}", file=sys.stderr)
        return 1
    install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")
    from twisted.internet import reactor as _installed

    reactor: Any = _installed
    outcome: dict[str, Any] = {}

    async def go() -> None:
        try:
            await state.open()
            outcome["body"] = await action(state, args)
        except (UnknownProvider, StateUnavailable) as exc:
            outcome["error"] = str(exc)
        finally:
            await state.close()

    def launch() -> None:
        d = deferred_from_coro(go())
        d.addErrback(lambda failure: outcome.setdefault("error", failure.getErrorMessage()))
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(launch)
    reactor.run(installSignalHandlers=False)
    if "error" in outcome:
        print(f"apigw: {outcome['error']}", file=sys.stderr)
        return 1
    body = outcome.get("body")
    print(json.dumps(body, sort_keys=True, indent=1))
    if health and isinstance(body, dict) and body.get("status") == "unhealthy":
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """A parser with only these commands (``apigw``'s own parser is in
    :mod:`scrapy_apigw.ops.cli`)."""
    parser = argparse.ArgumentParser(prog="apigw", description="scrapy-apigw admin commands")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one admin command (``argv`` default ``sys.argv[1:]``); returns the exit status.

    Raises:
        SystemExit: bad arguments (status 2), ``--help`` (0).
    """
    args = build_parser().parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":  # python -m scrapy_apigw.ops.admin_cli
    sys.exit(main())
