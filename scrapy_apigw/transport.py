"""Enrichment calls over treq, through the gateway, the auth layer and the cache.

One :class:`Transport` per pipeline. :meth:`Transport.fetch` turns an
:class:`~scrapy_apigw.providers.base.ApiCall` into an
:class:`~scrapy_apigw.providers.base.ApiAnswer`:

cache hit? → for each attempt: fail fast if the circuit is OPEN, the provider unavailable
(it keeps rate limiting) or the crawl stopping → wait for the provider's token bucket / pause /
window → take a breaker permit → send with treq → classify → record on the breaker and pacing
→ retry (backoff with jitter, or the provider pause a rate limit set) → cache ``ok`` /
``not_found`` answers with their data type's TTL. A malformed answer (a 2xx that is not JSON,
or lacks what the call needs) is retried like a 5xx and never cached.

A call made for an item (``run``, see :mod:`scrapy_apigw.enrichment.run`) also stops between
attempts once that item's enrichment was ended (its deadline, or the stop's grace), whatever the
reactor does with the cancellation.

Never ask twice (issue 7 §2):

- single-flight: identical calls (same cache key) in flight at once make one call, whose answer
  or exception every caller gets (:mod:`scrapy_apigw.core.singleflight`); an item that ends
  leaves without cancelling it for the others;
- remembered refusals: a 403 refusing the app an endpoint (``ApiCall.refusal``) and refused
  credentials are stored in the cache for ``APIGW_REFUSAL_TTL`` seconds, so the next crawl does
  not ask again (:meth:`Transport.refused`, :meth:`Transport.remember_refusal`);
- stale-if-error: when the provider fails (server errors after retries, open circuit, timeouts,
  rate limited for good), an expired answer kept for ``APIGW_STALE_TTL`` stands in, marked
  ``stale``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import treq

from scrapy_apigw.batching import Batcher, BatchRule
from scrapy_apigw.cache.base import cache_key
from scrapy_apigw.core.outcome import Outcome
from scrapy_apigw.core.payload import drop_keys, read_payload
from scrapy_apigw.core.singleflight import Flight, SingleFlight
from scrapy_apigw.deferreds import maybe_deferred_to_future
from scrapy_apigw.exceptions import (
    ApiGatewayError,
    AuthError,
    CircuitOpenError,
    Interrupted,
    ProviderUnavailable,
)
from scrapy_apigw.gateway import Gateway, ProviderState
from scrapy_apigw.providers.auth import Auth, NoAuth, granted_token
from scrapy_apigw.providers.base import ANSWER_KINDS, ApiAnswer, ApiCall
from scrapy_apigw.providers.clients import batch_rules_for, unread_keys_for
from scrapy_apigw.providers.spec import AuthContext
from scrapy_apigw.secrets import credentials_verifier, redact_url, verifies

if TYPE_CHECKING:
    from scrapy_apigw.cache import ResponseCache
    from scrapy_apigw.enrichment.run import ItemRun

logger = logging.getLogger(__name__)

#: The refusal name under which refused credentials are remembered (see
#: :meth:`Transport.remember_refusal`).
CREDENTIALS_REFUSAL = "credentials"


class RunCheck(Protocol):
    """What a call checks between attempts: :class:`~scrapy_apigw.enrichment.run.ItemRun`, or
    the runs of every item waiting for one shared call."""

    def check(self, provider: str) -> None:
        """Raise :class:`~scrapy_apigw.exceptions.Interrupted` when no attempt is to be made."""
        ...


class _Waiting:
    """The items waiting for one shared call, checked as one run: it has ended once every
    waiting item's run has ended (a caller without a run never ends)."""

    def __init__(self, flight: Flight[ApiAnswer]) -> None:
        self.flight = flight

    def check(self, provider: str) -> None:
        runs = self.flight.tags
        if not runs:
            raise Interrupted(provider, "no item waits for this call")
        if all(run is not None and run.ended for run in runs):
            raise Interrupted(provider, runs[0].reason)


@dataclass
class Attempt:
    """One HTTP exchange: its outcome, status (0 when no response), body and headers.

    ``error`` is the exception class of a network error; ``malformed`` the kind of a
    :attr:`Outcome.MALFORMED` answer (``"truncated JSON"``, ``"no results list"``...).
    """

    outcome: Outcome
    status: int = 0
    data: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: float | None = None
    error: str | None = None
    malformed: str | None = None

    def describe(self) -> str:
        """Log-safe summary, e.g. ``"HTTP 503"``, ``"ConnectionRefusedError"`` or
        ``"malformed answer (truncated JSON)"``."""
        if self.outcome is Outcome.MALFORMED:
            return f"malformed answer ({self.malformed})"
        return f"HTTP {self.status}" if self.status else (self.error or self.outcome.value)


class Transport:
    """treq client for the pipeline path, sharing the crawler's :class:`Gateway`.

    Args:
        gateway: the crawler's gateway (limits, breakers, retry policies, stats).
        cache: the answer cache, or None to disable caching.
        reactor: ``IReactorTime`` of the batch windows (default: the running reactor).
        items_in_flight: the pipeline's count of items being enriched: batches are sent as soon
            as every one of them waits in a batch (see :class:`~scrapy_apigw.batching.Batcher`).
    """

    def __init__(
        self,
        gateway: Gateway,
        cache: ResponseCache | None = None,
        reactor: Any = None,
        items_in_flight: Callable[[], int] | None = None,
    ) -> None:
        self.gateway = gateway
        self.cache = cache
        self.settings = gateway.settings
        self.auth: dict[str, Auth] = {
            name: self._build_auth(state) for name, state in gateway.states.items()
        }
        self._refused: set[str] = set()
        self._flights: SingleFlight[ApiAnswer] = SingleFlight()
        #: (provider, what) -> refused?, as learned in this crawl (from the cache or an answer)
        self._refusals: dict[tuple[str, str], bool] = {}
        self._pool: Any = None
        self._client: Any = None
        self.batch_rules: dict[str, dict[str, BatchRule]] = {
            name: {rule.data_type: rule for rule in batch_rules_for(name, self.settings.specs)}
            for name in gateway.states
        }
        #: provider -> the answer members its client never reads (dropped on arrival)
        self._unread = {name: unread_keys_for(name, self.settings.specs) for name in gateway.states}
        self.batcher = Batcher(
            gateway.settings.batch_window, self._send_batch, reactor, items_in_flight
        )

    # -- lifecycle --------------------------------------------------------------------------

    def _http(self) -> Any:
        if self._client is None:
            from twisted.internet import reactor
            from twisted.web.client import Agent, HTTPConnectionPool

            self._pool = HTTPConnectionPool(reactor, persistent=True)
            self._pool.maxPersistentPerHost = 8
            # The pool would silently resend a request that failed on a reused connection:
            # that retry is ours to make, counted and paced (1 + max_retries attempts at most).
            self._pool.retryAutomatically = False
            agent: Any = Agent(reactor, pool=self._pool)
            self._client = treq.client.HTTPClient(agent)
        return self._client

    async def close(self) -> None:
        """Close cached connections (treq's pool keeps idle ones open otherwise)."""
        if self._pool is not None:
            await maybe_deferred_to_future(self._pool.closeCachedConnections())
            self._pool = self._client = None

    # -- public API -------------------------------------------------------------------------

    async def fetch(self, call: ApiCall, run: ItemRun | None = None) -> ApiAnswer:
        """Answer *call* from the cache or the provider.

        Args:
            call: the request to answer.
            run: the item's enrichment this call is made for, if any: once it has ended, no
                further attempt is made.

        Raises:
            ProviderUnavailable: no answer (circuit open, retries exhausted, network error).
            RateLimitedError: the provider is unavailable: it keeps rate limiting, or asked for
                a pause longer than ``max_retry_after``.
            Interrupted: the crawl is stopping (cache hits still answer), or *run* has ended.
            AuthError: the provider refused our credentials (remembered for the crawl, and for
                ``APIGW_REFUSAL_TTL`` in the cache for these very credentials).

        While an identical call (same cache key) is in flight, this one waits for its outcome
        instead of asking (``apigw/<provider>/singleflight/saved``). When the provider fails
        (``ProviderUnavailable`` other than ``Interrupted`` and ``AuthError``) and the cache
        still holds an expired answer within ``APIGW_STALE_TTL``, that answer is returned with
        ``stale=True`` (``apigw/<provider>/cache/stale_served``).
        """
        state = self.gateway.states.get(call.provider)
        if state is None:
            raise ProviderUnavailable(call.provider, "provider disabled or unknown")
        ttl = state.config.ttl(call.data_type)
        if self.cache is not None and ttl > 0:
            cached = await self.cache.get(call)
            metrics = self.gateway.metrics
            if metrics is not None:  # cache/hit is counted by the cache's on_event
                metrics.cache_lookup(state.name, call.data_type, cached is not None)
            if cached is not None:
                return cached
            self.gateway.inc(f"{state.name}/cache/miss")
        key = cache_key(call)
        if self._flights.in_flight(key):
            self.gateway.inc(f"{state.name}/singleflight/saved")
        try:
            answer, _ = await self._flights.share(
                key, lambda flight: self._ask(state, call, ttl, _Waiting(flight)), run
            )
        except ProviderUnavailable as exc:
            stale = await self._stale(state, call, ttl, exc)
            if stale is None:
                raise
            return stale
        return answer

    async def _ask(
        self, state: ProviderState, call: ApiCall, ttl: float, run: RunCheck | None
    ) -> ApiAnswer:
        """The call itself, shared by every identical call in flight: ask, cache the answer."""
        if call.refusal and await self.refused(state.name, call.refusal):
            self.gateway.inc(f"{state.name}/refusals/remembered")
            return ApiAnswer(kind="forbidden", status=403, from_cache=True)
        answer = await self._dispatch(state, call, run)
        unread = self._unread.get(state.name)
        if unread and answer.kind == "ok":
            # Before it is cached or read: a cold and a warm crawl read the same answer.
            drop_keys(answer.data, unread)
        if self.cache is not None and ttl > 0:
            if answer.kind == "ok":
                await self.cache.put(call, answer, ttl)
            elif answer.kind == "not_found":
                await self.cache.put(call, answer, min(ttl, state.config.not_found_ttl))
        if call.refusal and answer.kind == "forbidden":
            await self.remember_refusal(state.name, call.refusal)
        return answer

    async def _stale(
        self, state: ProviderState, call: ApiCall, ttl: float, error: ProviderUnavailable
    ) -> ApiAnswer | None:
        """An expired answer to stand in for a provider that failed, or None."""
        if self.cache is None or ttl <= 0 or isinstance(error, Interrupted | AuthError):
            return None
        answer = await self.cache.get_stale(call)
        if answer is None:
            return None
        self.gateway.inc(f"{state.name}/cache/stale_served")
        logger.debug("apigw: %s failed (%s): a cached answer stands in", state.name, error.reason)
        return answer

    # -- remembered refusals ----------------------------------------------------------------

    async def refused(self, provider: str, what: str) -> bool:
        """True when *provider* refused *what* (an endpoint, a batch kind: e.g.
        ``"audio_features"``, ``"batch:tracks"``) in this crawl or, within
        ``APIGW_REFUSAL_TTL`` seconds, in an earlier one (the cache remembers it).

        The cache is read once per ``(provider, what)`` and crawl; what it says is kept for the
        crawl. Never raises for a cache problem (an unreadable cache: not refused).

        Raises:
            ValueError: *what* is not 1..100 characters of ``A-Z a-z 0-9 _ . : / -``.
        """
        return await self._learn(provider, what, lambda entry: True)

    async def remember_refusal(self, provider: str, what: str) -> None:
        """Remember that *provider* refused *what*: for the crawl, and in the cache for
        ``APIGW_REFUSAL_TTL`` seconds (key ``<namespace>:v1:<provider>:refusal:<what>``,
        value ``{"at": <epoch seconds>}``: nothing secret). Stores once per crawl
        (``apigw/<provider>/refusals/stored``). Never raises for a cache problem.

        Raises:
            ValueError: *what* is not a valid refusal name (see :meth:`refused`).
        """
        await self._store_refusal(provider, what, lambda: {})

    async def _learn(
        self, provider: str, what: str, matches: Callable[[dict[str, Any]], bool]
    ) -> bool:
        """Whether *provider* refused *what*: known for the crawl, else read from the cache
        once (an entry counts when ``matches(entry)``) and kept for the crawl."""
        known = self._refusals.get((provider, what))
        if known is not None:
            return known
        refused = False
        if self.cache is not None and self.settings.refusal_ttl > 0:
            entry = await self.cache.get_refusal(provider, what)
            refused = entry is not None and matches(entry)
        # A concurrent remember_refusal may have set it meanwhile: never unlearn a refusal.
        return self._refusals.setdefault((provider, what), refused)

    async def _store_refusal(
        self, provider: str, what: str, document: Callable[[], dict[str, Any]]
    ) -> None:
        """Learn the refusal for the crawl and store it once in the cache, with *document()*
        (made only when stored) besides its time."""
        if self._refusals.get((provider, what)):
            return
        self._refusals[(provider, what)] = True
        ttl = self.settings.refusal_ttl
        if self.cache is None or ttl <= 0:
            return
        await self.cache.put_refusal(provider, what, {"at": round(time.time()), **document()}, ttl)
        self.gateway.inc(f"{provider}/refusals/stored")

    async def _credentials_refused_before(self, state: ProviderState) -> bool:
        """True when these very credentials were refused by *state*'s provider in an earlier
        crawl (within ``APIGW_REFUSAL_TTL``). Read once per provider and crawl."""
        creds = self.settings.credentials.get(state.name, {})
        return await self._learn(
            state.name,
            CREDENTIALS_REFUSAL,
            lambda entry: verifies(entry.get("verifier"), state.name, creds),
        )

    async def _remember_credentials_refused(self, state: ProviderState) -> None:
        creds = self.settings.credentials.get(state.name, {})
        # Not the credentials, nor a plain hash of them: a salted, slow verifier (see
        # docs/design.md "Remembered refusals"), computed only when stored.
        await self._store_refusal(
            state.name,
            CREDENTIALS_REFUSAL,
            lambda: {"verifier": credentials_verifier(state.name, creds)},
        )

    # -- batching ---------------------------------------------------------------------------

    async def _dispatch(
        self, state: ProviderState, call: ApiCall, run: RunCheck | None = None
    ) -> ApiAnswer:
        """A cache miss: to the batcher when its data type has a batch rule (and the provider
        did not refuse that batch endpoint), else one call; a lookup the batch did not cover is
        then made alone."""
        rule = self.batch_rules.get(state.name, {}).get(call.data_type)
        batched = rule is not None and self.batcher.window > 0
        if (
            rule is not None
            and batched
            and not await self._batch_refused(state.name, rule.data_type)
        ):
            if run is not None:
                run.check(state.name)
            answer = await self.batcher.submit(rule, call)
            if answer is not None:
                return answer
        return await self._call(state, call, run)

    async def _send_batch(self, rule: BatchRule, calls: list[ApiCall]) -> list[ApiAnswer | None]:
        """Send one batch as ONE call through :meth:`_call` (token bucket, breaker, retries) and
        split its answer per lookup; None for the lookups to make alone. A batch of one lookup
        is sent as that lookup's own call.

        A batch the provider refuses (403: Spotify's batch endpoints for development-mode apps
        since 2026-02-11, PROVIDERS.md section 1) or rejects (another 4xx) is answered by single
        calls; a 403 is remembered (:meth:`_remember_batch_refusal`).

        Raises:
            ProviderUnavailable, RateLimitedError, AuthError, Interrupted: as :meth:`_call`, for
                every lookup of the batch.
        """
        state = self.gateway.states[calls[0].provider]
        prefix = f"{state.name}/batch/{rule.data_type}"
        if await self._batch_refused(state.name, rule.data_type):  # refused while it filled
            return [None] * len(calls)
        if len(set(calls)) == 1:
            # One lookup (maybe asked twice): its own call says as much, and a 403 to it is
            # about that lookup (audio features refused to this app), not about batching.
            single = await self._call(state, calls[0])
            return [single] * len(calls)
        self.gateway.inc(f"{prefix}/sent")
        self.gateway.inc(f"{prefix}/ids", len(calls))
        try:
            answer = await self._call(state, rule.build(calls))
        except Exception:
            self.gateway.inc(f"{prefix}/failed")
            raise
        if answer.kind == "forbidden":
            await self._remember_batch_refusal(state.name, rule.data_type)
            return [None] * len(calls)
        if answer.kind != "ok":
            self.gateway.inc(f"{prefix}/unanswered")
            return [None] * len(calls)
        parts = rule.split(answer, calls)
        answered = sum(part is not None for part in parts)
        if answered < len(calls):
            self.gateway.inc(f"{prefix}/uncovered", len(calls) - answered)
        if answered > 1:
            self.gateway.inc(f"{prefix}/saved", answered - 1)
        return parts

    async def _batch_refused(self, provider: str, data_type: str) -> bool:
        """True when *provider* refused the batch endpoint of *data_type*: in this crawl, or
        within ``APIGW_REFUSAL_TTL`` in an earlier one (remembered as ``batch:<data_type>``,
        see :meth:`refused`)."""
        return await self.refused(provider, f"batch:{data_type}")

    async def _remember_batch_refusal(self, provider: str, data_type: str) -> None:
        """Remember that *provider* refused the batch endpoint of *data_type*: its lookups are
        sent alone for the rest of the crawl and, within ``APIGW_REFUSAL_TTL``, in later
        crawls (:meth:`remember_refusal`). One WARNING and one ``batch/<type>/refused`` stat
        per crawl."""
        if self._refusals.get((provider, f"batch:{data_type}")):
            return
        await self.remember_refusal(provider, f"batch:{data_type}")
        self.gateway.inc(f"{provider}/batch/{data_type}/refused")
        logger.warning(
            "apigw: %s refused the batch endpoint for %s (HTTP 403); single lookups for the "
            "rest of the crawl and for APIGW_REFUSAL_TTL",
            provider,
            data_type,
        )

    # -- internals --------------------------------------------------------------------------

    async def _call(
        self, state: ProviderState, call: ApiCall, run: RunCheck | None = None
    ) -> ApiAnswer:
        if state.name in self._refused:
            raise AuthError(state.name, "credentials refused earlier in this crawl")
        if await self._credentials_refused_before(state):
            self._refuse(state, "credentials refused in an earlier crawl (APIGW_REFUSAL_TTL)")
        auth = self.auth[state.name]
        url = state.config.base_url + call.path

        async def send() -> Attempt:
            headers = {
                "User-Agent": self.settings.user_agent,
                "Accept": "application/json",
                **dict(call.headers),
            }
            params = list(call.params)
            await auth.apply(headers, params)  # after a refresh: the new token
            return await self._attempt(state, call.method, url, headers, params, call=call)

        refreshed = False
        while True:
            try:
                result = await self._with_retries(state, send, run)
            except AuthError as exc:  # the token endpoint refused the client credentials
                # Refused for the crawl before the cache write's await, so a concurrent item
                # is told "earlier in this crawl", not "in an earlier crawl".
                try:
                    self._refuse(state, exc.reason)
                finally:
                    await self._remember_credentials_refused(state)
            if result.outcome is Outcome.AUTH_FAILED:
                if auth.refreshable and not refreshed:
                    # An expired OAuth token: refresh once; this is not a retry (PROVIDERS.md §0).
                    auth.invalidate()
                    refreshed = True
                    self.gateway.inc(f"{state.name}/auth/refreshes")
                    continue
                try:
                    self._refuse(state, f"credentials refused ({result.describe()})")
                finally:
                    await self._remember_credentials_refused(state)
            kind = ANSWER_KINDS.get(result.outcome)
            if kind is None:  # a failure not retried: its status is not in retry_statuses
                raise ProviderUnavailable(state.name, f"{result.describe()}, not retried")
            if kind == "rejected":
                logger.debug(
                    "apigw: %s refused %s %s: %s",
                    state.name,
                    call.method,
                    redact_url(url),
                    result.describe(),
                )
            return ApiAnswer(kind=kind, status=result.status, data=result.data)

    def _refuse(self, state: ProviderState, reason: str) -> NoReturn:
        if state.name not in self._refused:
            self._refused.add(state.name)
            logger.error(
                "apigw: %s: %s; the provider is skipped for the rest of the crawl",
                state.name,
                reason,
            )
        raise AuthError(state.name, reason)

    async def _with_retries(
        self,
        state: ProviderState,
        send: Callable[[], Awaitable[Attempt]],
        run: RunCheck | None = None,
    ) -> Attempt:
        attempt = 0
        last: Attempt | None = None
        retried = False  # a retry was made: its end is counted (retry/succeeded, gave_up)
        try:
            while True:
                if run is not None:
                    run.check(state.name)
                try:
                    result = await send()
                except CircuitOpenError as exc:
                    if last is None:
                        raise
                    # This call's own failures opened the circuit: name them, not just it.
                    reason = f"{last.describe()} after {attempt - 1} retries, then {exc.reason}"
                    raise ProviderUnavailable(state.name, reason) from None
                if run is not None:
                    # Under a non-asyncio reactor a cancelled exchange comes back as a network
                    # error: it must not be retried for an item that has ended.
                    run.check(state.name)
                last = result
                if not state.retries(result.outcome, result.status):
                    if retried:
                        self.gateway.retries_ended(state, answered=True)
                    return result
                attempt += 1
                delay = self.gateway.retry_delay(state, result.outcome, attempt, result.retry_after)
                if delay is None:
                    raise self.gateway.rate_limited_error(state, result.retry_after)
                if not state.policy.should_retry(result.outcome, attempt):
                    raise ProviderUnavailable(
                        state.name, f"{result.describe()} after {attempt - 1} retries"
                    )
                self.gateway.retried(state, result.outcome)
                retried = True
                if delay > 0:
                    await self.gateway.sleep(state, delay)
        except Exception:
            if retried:
                self.gateway.retries_ended(state, answered=False)
            raise

    async def _attempt(
        self,
        state: ProviderState,
        method: str,
        url: str,
        headers: dict[str, str],
        params: list[tuple[str, str]],
        body: bytes | None = None,
        call: ApiCall | None = None,
    ) -> Attempt:
        gateway = self.gateway
        await gateway.fleet_fail_fast(state)
        await gateway.acquire(state)
        ticket = await gateway.fleet_check_circuit(state)
        sent_at = gateway.clock()
        try:
            status, response_headers, content = await self._send(
                method, url, headers, params, body, state.config.timeout
            )
        except ApiGatewayError:
            raise
        except Exception as exc:
            # Timeouts, refused or reset connections: the exception class is the reason (its
            # text is not logged, so no URL or credential can leak through it).
            await gateway.fleet_observe(state, Outcome.NETWORK_ERROR, {}, ticket, sent_at)
            return Attempt(Outcome.NETWORK_ERROR, error=type(exc).__name__)
        # Accept: application/json was sent; *call* says what this call needs from the body.
        payload = read_payload(content, response_headers.get("content-type"), json_expected=True)
        verdict = state.judge(status, payload, call)
        retry_after = await gateway.fleet_observe(
            state, verdict.outcome, response_headers, ticket, sent_at
        )
        return Attempt(
            verdict.outcome,
            status,
            verdict.data,
            response_headers,
            retry_after,
            malformed=verdict.malformed,
        )

    async def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        params: list[tuple[str, str]],
        body: bytes | None,
        timeout: float,
    ) -> tuple[int, dict[str, str], bytes]:
        from twisted.internet import reactor

        d = self._http().request(
            method, url, headers=headers, params=params or None, data=body, timeout=timeout
        )
        response = await maybe_deferred_to_future(d)
        # treq's timeout stops at the response headers: the body gets its own (verified fact).
        content_d = treq.content(response)
        content_d.addTimeout(timeout, reactor)
        content = await maybe_deferred_to_future(content_d)
        response_headers = {
            key.decode("latin-1").lower(): values[-1].decode("latin-1")
            for key, values in response.headers.getAllRawHeaders()
        }
        return response.code, response_headers, content

    # -- auth -------------------------------------------------------------------------------

    def _build_auth(self, state: ProviderState) -> Auth:
        """The provider's auth, as its spec builds it (``ProviderSpec.auth``) from its
        credentials; :class:`NoAuth` when it declares none or a credential is missing (the
        pipeline skips such a provider)."""
        spec = self.settings.specs.get(state.name)
        creds = self.settings.credentials.get(state.name, {})
        if spec is None or spec.auth is None:
            return NoAuth()
        if not all(creds.get(credential.name) for credential in spec.credentials):
            return NoAuth()
        context = AuthContext(state.name, self._token_poster(state), self.gateway.clock)
        return spec.auth(creds, context)

    def _token_poster(
        self, state: ProviderState
    ) -> Callable[[dict[str, str], bytes], Awaitable[tuple[int, Any]]]:
        async def post(headers: dict[str, str], body: bytes) -> tuple[int, Any]:
            token_url = state.config.token_url
            if not token_url:
                raise ProviderUnavailable(state.name, "no token_url configured")
            all_headers = {"User-Agent": self.settings.user_agent, **headers}

            async def send() -> Attempt:
                return await self._attempt(state, "POST", token_url, all_headers, [], body)

            result = await self._with_retries(state, send)
            # Count what the endpoint granted, not what was asked for.
            granted = granted_token(result.status, result.data) is not None
            self.gateway.inc(f"{state.name}/auth/{'tokens' if granted else 'refused'}")
            return result.status, result.data

        return post
