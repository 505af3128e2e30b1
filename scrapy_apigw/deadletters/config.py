"""The ``APIGW_DEADLETTER_*`` settings, parsed once (a part of
:class:`~scrapy_apigw.settings.GatewaySettings`)."""

from __future__ import annotations

from dataclasses import dataclass

from scrapy.settings import BaseSettings

from scrapy_apigw import validate as v
from scrapy_apigw.deadletters.schedule import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PARTIAL_AFTER,
    ReplaySchedule,
)
from scrapy_apigw.validate import read

__all__ = ["DeadLetterSettings"]


@dataclass(frozen=True)
class DeadLetterSettings:
    """Attributes:
    enabled: ``APIGW_DEADLETTER_ENABLED`` (default True): every item ending ``failed`` or
        ``partial`` leaves a dead letter; one that completes removes its own.
    path: ``APIGW_DEADLETTER_PATH``: the local store (SQLite) used without Redis, and as the
        fallback when Redis fails; None = next to the embedded cache
        (:func:`~scrapy_apigw.deadletters.store_file.default_deadletter_path`).
    max_attempts: ``APIGW_DEADLETTER_MAX_ATTEMPTS`` (default 3): a failed record is replayed
        while it has had fewer attempts.
    partial_after: ``APIGW_DEADLETTER_PARTIAL_AFTER`` seconds (default 86,400): a partial
        record is replayed once its last attempt is older.
    """

    enabled: bool = True
    path: str | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    partial_after: float = DEFAULT_PARTIAL_AFTER

    @property
    def schedule(self) -> ReplaySchedule:
        """The replay schedule these settings give."""
        return ReplaySchedule(self.max_attempts, self.partial_after)

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> DeadLetterSettings:
        """Read the four settings (every one always read: see ``known_settings``).

        Raises:
            ConfigError: a malformed value.
        """
        return cls(
            enabled=read(settings, "APIGW_DEADLETTER_ENABLED", v.boolean, True),
            path=read(settings, "APIGW_DEADLETTER_PATH", v.optional(v.text), None),
            max_attempts=read(
                settings, "APIGW_DEADLETTER_MAX_ATTEMPTS", v.whole(minimum=1), DEFAULT_MAX_ATTEMPTS
            ),
            partial_after=read(
                settings,
                "APIGW_DEADLETTER_PARTIAL_AFTER",
                v.number(minimum=0, unit="s"),
                DEFAULT_PARTIAL_AFTER,
            ),
        )
