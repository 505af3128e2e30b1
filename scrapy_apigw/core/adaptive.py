"""Adaptive rate (AIMD): the rate and burst a provider really grants, below the configured ones.

The configured rate and burst are a ceiling, not a promise: the provider may share its quota with
other clients, document it wrongly, or measure a window too short for the configured burst. The
controller lowers the effective rate and burst multiplicatively on a rate-limited answer and
raises them additively after quiet intervals (AIMD: TCP congestion avoidance, RFC 5681 §3.1;
Envoy's adaptive concurrency filter moves its limit the same way from measured samples).

Pure logic over a small immutable record, so the same rules can run in one process or, later,
inside a Redis script on the server's clock:

    state = AdaptiveState.initial(config)
    state = on_rate_limited(state, config, now, sent_at, after_burst)  # a 429 or equivalent
    state = on_success(state, config, now)                 # any answer that was not rate limited
    state = on_announced(state, config, rate, burst)       # the provider announced its quota

Every time is seconds on one clock (the caller's monotonic clock, or Redis ``TIME``); nothing
here reads a clock except :class:`AdaptiveRate`, the stateful wrapper for one process.

Rules (constants are :class:`AimdConfig` fields):

- **Decrease, once per congestion event.** A rate-limited answer to a request *sent* at or after
  ``hold_until`` starts a new congestion event: ``rate ← max(floor, rate × decrease)``,
  ``burst ← max(1, ⌊burst × decrease⌋)``, ``hold_until ← now + hold``. Answers to requests sent
  before that belong to the event already handled and change nothing (TCP reduces its window
  once per window of data: the NewReno "recover" point of RFC 6582 §3.2 ignores losses of
  segments sent before the reduction). The requests of one burst were all sent before the first
  429 came back, so the burst costs one decrease, not one per 429. ``hold`` adds a short guard
  for answers whose send time is unknown (``sent_at=None`` counts as sent ``now``).
- **Plateau below the refused rate.** The rate a congestion event refused is remembered;
  increases stop at ``plateau × refused`` until ``probe_after`` seconds pass with no rate limit,
  then the memory is dropped and increases go on to the ceiling. Plain AIMD probes past the
  provider's limit on every cycle (a rejection per sawtooth, 75 % of the quota on average at
  ×0.5); holding just below the rate that failed is CUBIC's plateau around ``W_max`` (RFC 9438
  §4.2, and botocore's adaptive retry mode, a client-side CUBIC rate limiter), simplified to a
  flat cap. ``plateau=1.0`` gives plain AIMD.
- **A burst too large, or a rate too high** (*after_burst*, told by the caller from how the
  refused request left: :func:`refused_after_burst`). A refusal of a request sent in or after a
  burst the provider has not yet absorbed drops the burst to 1 (held there until
  ``probe_after``; halving took one refusal per halving, and a reactor stall let the halved
  burst out at once) and takes the rate to ``margin × rate`` once per refused rate (at exactly
  a window quota's rate, paced sends are refused at the window's edge by arrival jitter). A
  refusal of an evenly paced request halves the rate only and holds it there (``rate_cap``):
  every step above a provider's rate is a rejection, so no climb toward the refused rate;
  refused again after ``steady`` s held, it goes only ``margin`` lower (the edge of the
  provider's window, not a rate twice too high; the wait before the next probe unchanged).
- **Blind probes wait for evidence.** A rate refused at an even pace is the provider's own
  measurement that its quota is below it, and without quota headers the only way to learn
  that the quota rose is a probe that is refused when it has not (a probe must send more than
  the provider's burst above its rate to tell the two apart). So the first hold after such a
  refusal lasts ``probe_max``, unless the quota has been seen to move (``moved``: a good rate
  refused later, the provider lowered it; or a higher quota announced), when it lasts
  ``probe_after``. When the hold passes, the rate held is the ``good_rate``; a refused probe
  above it returns to it (not to half), with a hold of ``max(hold, quiet)``, and doubles the
  wait before the next probe (``probe_backoff``, up to ``probe_max``); the good rate itself
  refused, not at its edge, is halved and forgotten, and the quota has moved (the wait back to
  ``probe_after``). A refused burst says nothing of the rate: its hold is ``probe_after``.
  *recovered* False (no request sent after the last decrease answered yet) makes a refusal part
  of the last event. Unknown (None) keeps the rules above: both halve, the plateau caps the
  climb.
- **Increase, one step per quiet interval.** A success answered at or after ``next_increase``
  raises the rate by ``step × configured rate`` (up to the ceiling and the plateau), then, once
  the rate is at the ceiling, the burst by one; ``next_increase ← now + quiet``. Any rate-limited
  answer also sets ``next_increase ← now + quiet``. Steps need traffic: an idle provider gains
  at most one step when traffic resumes (TCP does not grow a window it does not use, RFC 7661).
  The rate comes back before the burst because throughput comes from the rate; a burst only
  shortens the first window after idle time and is what overflows a provider's window first.
- **Announced quota.** A provider announcing its real quota sets the ceiling to
  ``min(configured, announced)`` (the effective rate and burst drop to it at once; a later,
  higher announcement lets them climb back additively, never above the configured values).
  An announcement higher than the last one and above the held rate is room the provider
  declares: the refused rate and the holds are forgotten at once and the quota has moved (no
  blind probe needed); the same announcement repeated on every answer is no news.
  :func:`quota_ceiling` turns "*limit* requests per *window* seconds" into a rate and burst.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

from scrapy_apigw.core.clock import Clock

__all__ = [
    "AdaptiveRate",
    "AdaptiveState",
    "AimdConfig",
    "on_announced",
    "on_rate_limited",
    "on_success",
    "quota_ceiling",
    "refused_after_burst",
]


@dataclass(frozen=True)
class AimdConfig:
    """Constants of the AIMD controller for one provider.

    Time constants are seconds of the controller's clock (the gateway scales them with the
    sandbox speed like its other time constants); fractions are of the configured ``rate``, so
    one set of defaults fits 1 req/s MusicBrainz and 10 req/s Spotify.

    Attributes:
        rate: configured rate, req/s: the ceiling; finite and > 0.
        burst: configured burst, tokens: the ceiling; >= 1.
        decrease: multiplicative decrease factor per congestion event, in (0, 1); 0.5 as TCP
            Reno (RFC 5681 §3.1).
        step: additive increase per quiet interval, as a fraction of ``rate``, in (0, 1].
        floor: lowest effective rate, as a fraction of ``rate``, in (0, 1]; a lower announced
            ceiling wins over it.
        quiet: seconds without a rate limit before each increase step; > 0.
        hold: seconds after a decrease during which rate limits belong to the same congestion
            event even when the request was sent after the decrease; >= 0.
        plateau: increases stop at this fraction of the last refused rate, in (0, 1]; 1.0 turns
            the plateau off (plain AIMD).
        probe_after: seconds without a rate limit after which the refused rate is forgotten
            and increases continue to the ceiling; > 0.
        probe_backoff: a refused probe multiplies the wait before the next one by this, >= 1.
        probe_max: the longest wait before a probe, s; >= ``probe_after``; also the first
            wait after a rate refused at an even pace while the quota has not been seen to
            move.
        steady: seconds a held rate (``rate_cap``) must go without a rate limit before a
            refusal of it counts as its edge (``margin``, not ``decrease``); > 0.
        margin: a refused burst takes the rate to this fraction of itself, once per refused
            rate, in (0, 1]: evenly paced sends at exactly a window quota's rate are refused
            by the arrival jitter at the window's edge; 1.0 leaves the rate alone.

    Raises:
        ValueError: a value out of its range.
    """

    rate: float
    burst: int
    decrease: float = 0.5
    step: float = 0.1
    floor: float = 0.1
    quiet: float = 2.0
    hold: float = 1.0
    plateau: float = 0.9
    probe_after: float = 300.0
    probe_backoff: float = 2.0
    probe_max: float = 2400.0
    steady: float = 10.0
    margin: float = 0.95

    def __post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise ValueError(f"rate must be finite and > 0 req/s, got {self.rate}")
        if self.burst < 1:
            raise ValueError(f"burst must be >= 1 token, got {self.burst}")
        if not 0 < self.decrease < 1:
            raise ValueError(f"decrease must be in (0, 1), got {self.decrease}")
        for name in ("step", "floor", "plateau", "margin"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {value}")
        for name in ("quiet", "probe_after", "steady"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be finite and > 0 s, got {value}")
        if not (self.probe_backoff >= 1 and math.isfinite(self.probe_backoff)):
            raise ValueError(f"probe_backoff must be finite and >= 1, got {self.probe_backoff}")
        if not (self.probe_max >= self.probe_after and math.isfinite(self.probe_max)):
            raise ValueError(
                f"probe_max must be finite and >= probe_after ({self.probe_after} s), "
                f"got {self.probe_max}"
            )
        if not (self.hold >= 0 and math.isfinite(self.hold)):
            raise ValueError(f"hold must be finite and >= 0 s, got {self.hold}")

    @property
    def min_rate(self) -> float:
        """Lowest effective rate, req/s (``floor × rate``)."""
        return self.floor * self.rate

    @property
    def rate_step(self) -> float:
        """Additive increase per step, req/s (``step × rate``)."""
        return self.step * self.rate


@dataclass(frozen=True)
class AdaptiveState:
    """The controller's state: small, immutable, and made of numbers only (fits a Redis hash).

    Attributes:
        rate: effective rate, req/s (what the token bucket should use).
        burst: effective burst, tokens, >= 1.
        ceiling_rate: ``min(configured, announced)`` rate, req/s.
        ceiling_burst: ``min(configured, announced)`` burst, tokens.
        refused_rate: rate refused by the last congestion event, req/s; ``inf`` when forgotten.
        hold_until: a rate limit of a request sent before this instant changes nothing, s.
        next_increase: earliest instant of the next increase step, s.
        refused_at: instant of the last rate-limited answer (counted or not), s; ``-inf``: none.
        decreases: congestion events (decreases) so far.
        increases: increase steps so far.
        rate_cap: increases of the rate stop here until the refused rate is forgotten, req/s
            (a rate refused while evenly paced holds at its decrease); ``inf``: no cap.
        burst_cap: increases of the burst stop here until the refused rate is forgotten,
            tokens (a refused burst holds at its decrease); 0: no cap.
        good_rate: a rate held ``probe_after`` s without a rate limit, req/s: where a refused
            probe above it returns; 0: none known.
        probe_wait: seconds without a rate limit before the next probe (forgetting the refused
            rate and the caps); 0: ``probe_after``.
        moved: 1 once the provider's quota has been seen to move (a good rate refused later,
            or a higher quota announced), else 0: only a quota seen to move is probed blind
            after ``probe_after``; a first measurement waits ``probe_max``.
    """

    rate: float
    burst: int
    ceiling_rate: float
    ceiling_burst: int
    refused_rate: float = math.inf
    hold_until: float = -math.inf
    next_increase: float = -math.inf
    refused_at: float = -math.inf
    decreases: int = 0
    increases: int = 0
    rate_cap: float = math.inf
    burst_cap: int = 0
    good_rate: float = 0.0
    probe_wait: float = 0.0
    moved: int = 0

    @classmethod
    def initial(cls, config: AimdConfig) -> AdaptiveState:
        """The state before any answer: effective = ceiling = configured rate and burst."""
        return cls(
            rate=float(config.rate),
            burst=int(config.burst),
            ceiling_rate=float(config.rate),
            ceiling_burst=int(config.burst),
        )


def on_rate_limited(
    state: AdaptiveState,
    config: AimdConfig,
    now: float,
    sent_at: float | None = None,
    after_burst: bool | None = None,
    recovered: bool = True,
) -> AdaptiveState:
    """The provider refused a request for its rate (429, MusicBrainz 503, Last.fm error 29...).

    Args:
        state: the current state.
        config: the provider's constants.
        now: when the answer arrived, s.
        sent_at: when the refused request was sent, s (same clock as *now*); None when unknown,
            which counts as sent *now*.
        after_burst: how the refused request was sent (:func:`refused_after_burst`): True in or
            after a burst that the provider has not yet been seen to absorb (the burst is too
            large for its window); False evenly paced, the burst absorbed or none (the rate is
            too high); None unknown (both are lowered).
        recovered: False while no request sent after the last decrease has been answered
            without a rate limit: the provider has not absorbed the excess yet (MusicBrainz
            refuses paced sends until the backlog its refused requests built drains), so the
            refusal belongs to the last congestion event, whenever it was sent.

    Returns:
        The next state: decreased when this starts a new congestion event (the request was sent
        at or after ``hold_until``), otherwise the same rate with the next increase postponed to
        ``now + quiet``. See the module's rules for each kind of event.
    """
    next_increase = now + config.quiet
    sent = now if sent_at is None else sent_at
    same = replace(state, next_increase=next_increase, refused_at=now)
    if sent < state.hold_until or not recovered:
        return same
    event = replace(same, hold_until=now + config.hold, decreases=state.decreases + 1)
    if after_burst is True:
        burst = 1
        rate, refused = state.rate, state.refused_rate
        if refused == math.inf or rate > config.margin * refused:
            refused = rate
            rate = max(min(config.min_rate, state.ceiling_rate), config.margin * rate)
        if (rate, burst) == (state.rate, state.burst):
            return same  # the burst is at 1 and the rate below the margin: nothing to lower
        return replace(
            event,
            rate=rate,
            burst=burst,
            refused_rate=refused,
            rate_cap=min(state.rate_cap, rate),
            burst_cap=burst,
        )
    floor = min(config.min_rate, state.ceiling_rate)
    if after_burst is False:
        probing = 0 < state.good_rate < state.rate
        # A rate held steady and refused long after: its edge (arrival jitter, a stalled
        # sender catching up), not a rate twice too high.
        edge = state.rate_cap == state.rate and now - state.refused_at >= config.steady
        # The good rate itself refused, not at its edge: the provider lowered its quota.
        moved = 1 if state.moved or (state.good_rate > 0 and not probing and not edge) else 0
        if probing:
            rate = state.good_rate
            wait = min(
                config.probe_max, max(config.probe_after, state.probe_wait) * config.probe_backoff
            )
        elif edge:
            rate = max(floor, state.rate * config.margin)
            wait = state.probe_wait
        else:
            rate = max(floor, state.rate * config.decrease)
            # A rate refused at an even pace measures the quota below it; unless the quota has
            # been seen to move, a blind probe above it is a rejection for nothing.
            wait = 0.0 if moved else config.probe_max
        return replace(
            event,
            # A refused probe's excess is still in the provider's window or backlog: its
            # refusals for one more quiet interval belong to this event, fleet-wide.
            hold_until=now + max(config.hold, config.quiet) if probing else event.hold_until,
            rate=rate,
            refused_rate=state.rate,
            rate_cap=rate,
            good_rate=state.good_rate if probing or edge else 0.0,
            probe_wait=wait,
            moved=moved,
        )
    return replace(
        event,
        rate=max(floor, state.rate * config.decrease),
        burst=max(1, math.floor(state.burst * config.decrease)),
        refused_rate=state.rate,
    )


def refused_after_burst(sent_at: float, ahead_until: float, answered_sent_at: float) -> bool:
    """Whether a request sent at *sent_at* and refused belongs to a burst (True) or was sent
    evenly paced after the provider absorbed the last burst (False).

    A burst's excess stays in the provider's window after the burst: a sliding window refuses
    evenly paced sends until the burst's arrivals leave it, and a provider that counts refused
    requests (MusicBrainz) refuses them until the backlog drains. So a refusal is the burst's
    when the request was sent while the sends were ahead of the paced schedule (before
    *ahead_until*), or later but before any request sent from *ahead_until* on was answered
    without a rate limit.

    Args:
        sent_at: when the refused request was sent, s.
        ahead_until: until when the sends were ahead of the paced schedule, s
            (:attr:`~scrapy_apigw.core.ratelimit.TokenBucket.ahead_until`); ``-inf``: never.
        answered_sent_at: the latest send instant of a request answered without a rate limit,
            s; ``-inf``: none.
    """
    if ahead_until == -math.inf:
        return False
    return sent_at < ahead_until or answered_sent_at < ahead_until


def on_success(state: AdaptiveState, config: AimdConfig, now: float) -> AdaptiveState:
    """An answer that was not rate limited arrived at *now* (any outcome but rate limited).

    Returns:
        The next state: one increase step when ``now >= next_increase`` and something is below
        its cap (the rate first, then the burst), otherwise *state* itself. The refused rate and
        the caps are forgotten first when the last rate limit is ``probe_after`` s old or more;
        the rate then held is the good rate a refused probe returns to.
    """
    refused = state.refused_rate
    remembered = refused != math.inf or state.rate_cap != math.inf or state.burst_cap
    if remembered and now - state.refused_at >= (state.probe_wait or config.probe_after):
        refused = math.inf
        state = replace(
            state, refused_rate=refused, rate_cap=math.inf, burst_cap=0, good_rate=state.rate
        )
    if now < state.next_increase:
        return state
    rate_cap = min(state.ceiling_rate, config.plateau * refused, state.rate_cap)
    burst_cap = min(state.ceiling_burst, state.burst_cap or state.ceiling_burst)
    rate, burst = state.rate, state.burst
    if rate < rate_cap:
        rate = min(rate_cap, rate + config.rate_step)
    elif rate >= state.ceiling_rate and burst < burst_cap:
        burst += 1
    else:
        return state  # at a cap: nothing to raise, and no step is spent
    return replace(
        state,
        rate=rate,
        burst=burst,
        next_increase=now + config.quiet,
        increases=state.increases + 1,
    )


def on_announced(
    state: AdaptiveState, config: AimdConfig, rate: float, burst: int
) -> AdaptiveState:
    """The provider announced its quota as *rate* req/s and *burst* tokens (see
    :func:`quota_ceiling`).

    The ceiling becomes ``min(configured, announced)``; the effective rate and burst are lowered
    to it at once, never raised (they climb back by :func:`on_success`). Not a congestion event.
    Invalid announcements (rate not finite and > 0, burst < 1) are ignored.
    """
    if not (rate > 0 and math.isfinite(rate)) or burst < 1:
        return state
    ceiling_rate = min(float(config.rate), float(rate))
    ceiling_burst = min(int(config.burst), int(burst))
    if ceiling_rate > state.ceiling_rate and ceiling_rate > state.rate_cap:
        # The provider announces more room than before: what it refused is stale evidence,
        # and its quota moves.
        state = replace(
            state,
            refused_rate=math.inf,
            rate_cap=math.inf,
            burst_cap=0,
            probe_wait=0.0,
            moved=1,
        )
    return replace(
        state,
        rate=min(state.rate, ceiling_rate),
        burst=min(state.burst, ceiling_burst),
        ceiling_rate=ceiling_rate,
        ceiling_burst=ceiling_burst,
    )


def quota_ceiling(limit: int, window: float) -> tuple[float, int]:
    """Rate and burst that keep a token bucket within "*limit* requests per *window* seconds".

    A bucket of rate ``r`` and burst ``b`` can send ``b + r·window`` requests in one window, so
    a window quota allows no burst on top of its full rate. The rate is ``(limit - 1) / window``
    with burst 1 (one request of margin, as the gateway keeps for Discogs' moving window: the
    arrival jitter on the wire would otherwise put request ``limit + 1`` into the server's
    window about half the time); ``limit = 1`` gives ``1 / window``.

    Args:
        limit: requests per window, >= 1.
        window: window length, s; finite and > 0.

    Returns:
        ``(rate req/s, burst tokens)``.

    Raises:
        ValueError: invalid *limit* or *window*.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1 request per window, got {limit}")
    if not (window > 0 and math.isfinite(window)):
        raise ValueError(f"window must be finite and > 0 s, got {window}")
    return max(1, limit - 1) / window, 1


class AdaptiveRate:
    """The AIMD controller of one provider in one process: the pure rules plus a clock.

    Not thread-safe: meant for one event loop (the Twisted reactor).

    Args:
        config: the provider's constants.
        clock: monotonic clock, seconds.
    """

    def __init__(self, config: AimdConfig, clock: Clock = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._state = AdaptiveState.initial(config)

    @property
    def config(self) -> AimdConfig:
        """The constants."""
        return self._config

    @property
    def state(self) -> AdaptiveState:
        """The current state record."""
        return self._state

    @property
    def rate(self) -> float:
        """Effective rate, req/s (a stat)."""
        return self._state.rate

    @property
    def burst(self) -> int:
        """Effective burst, tokens (a stat)."""
        return self._state.burst

    def rate_limited(
        self,
        sent_at: float | None = None,
        after_burst: bool | None = None,
        recovered: bool = True,
    ) -> bool:
        """Report a rate-limited answer to a request sent at *sent_at* (clock time, s), in or
        after a burst or not (*after_burst*), after the last decrease was absorbed or not
        (*recovered*): see :func:`on_rate_limited`.

        Returns:
            True when the rate or burst was lowered (a new congestion event).
        """
        before = self._state
        self._state = on_rate_limited(
            before, self._config, self._clock(), sent_at, after_burst, recovered
        )
        return self._state.decreases != before.decreases

    def success(self) -> bool:
        """Report an answer that was not rate limited.

        Returns:
            True when the rate or burst was raised one step.
        """
        before = self._state
        self._state = on_success(before, self._config, self._clock())
        return self._state.increases != before.increases

    def reset(self) -> None:
        """Back to the initial state: the configured rate and burst (admin reset)."""
        self._state = AdaptiveState.initial(self._config)

    def announced(self, rate: float, burst: int) -> bool:
        """Report the provider's announced quota as a rate (req/s) and burst (tokens).

        Returns:
            True when the effective rate or burst changed.
        """
        before = self._state
        self._state = on_announced(before, self._config, rate, burst)
        return (self._state.rate, self._state.burst) != (before.rate, before.burst)

    def __repr__(self) -> str:
        return f"AdaptiveRate(rate={self._state.rate}, burst={self._state.burst})"
