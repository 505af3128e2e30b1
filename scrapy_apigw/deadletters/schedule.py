"""When a dead letter is due for replay: the design documents' schedule (ARCHITECTURE.md,
issue 9 section 2), pure logic with the time passed in.

- ``failed`` (every provider failed): replayed while it has had fewer than
  ``APIGW_DEADLETTER_MAX_ATTEMPTS`` attempts (default 3), at once: the failure was transient or
  it was not;
- ``partial`` (some providers failed): re-enriched once its last attempt is more than
  ``APIGW_DEADLETTER_PARTIAL_AFTER`` seconds old (default 86,400: 24 h), whatever its attempts;
  what it lacks may come back a day later.
"""

from __future__ import annotations

from dataclasses import dataclass

from scrapy_apigw.deadletters.record import DeadLetter
from scrapy_apigw.enrichment.fields import STATUS_FAILED, STATUS_PARTIAL

__all__ = ["DEFAULT_MAX_ATTEMPTS", "DEFAULT_PARTIAL_AFTER", "ReplaySchedule"]

#: ``APIGW_DEADLETTER_MAX_ATTEMPTS`` default: a failed track is tried 3 times in all.
DEFAULT_MAX_ATTEMPTS = 3
#: ``APIGW_DEADLETTER_PARTIAL_AFTER`` default, seconds (24 h).
DEFAULT_PARTIAL_AFTER = 86400.0


@dataclass(frozen=True)
class ReplaySchedule:
    """Which dead letters a replay (``scrapy crawl apigw_enrich -a dead_letters=1``) takes.

    Args:
        max_attempts: a ``failed`` record is due while ``attempts < max_attempts`` (>= 1).
        partial_after: a ``partial`` record is due when ``now - last_attempt > partial_after``
            seconds (strictly more; >= 0).
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    partial_after: float = DEFAULT_PARTIAL_AFTER

    def is_due(self, record: DeadLetter, now: float) -> bool:
        """True if *record* is to be replayed at *now* (epoch seconds, the same clock as
        :attr:`DeadLetter.last_attempt`). Any other status is never due."""
        if record.status == STATUS_FAILED:
            return record.attempts < self.max_attempts
        if record.status == STATUS_PARTIAL:
            return now - record.last_attempt > self.partial_after
        return False

    def due_at(self, record: DeadLetter) -> float | None:
        """The first instant (epoch seconds) *record* is due: its last attempt for a failed one
        under the limit, never (None) for a failed one at the limit; for a partial one, the
        instant ``partial_after`` after its last attempt (due strictly after it)."""
        if record.status == STATUS_FAILED:
            return record.last_attempt if record.attempts < self.max_attempts else None
        if record.status == STATUS_PARTIAL:
            return record.last_attempt + self.partial_after
        return None
