"""Downloader middlewares: per-provider throttling, circuit breaking and Retry-After retries.

Order (set by the add-on; keep it when listing them by hand)::

    process_request:   TokenBucketThrottleMiddleware (560) -> CircuitBreakerMiddleware (570)
    process_response:  CircuitBreakerMiddleware (570) -> TokenBucketThrottleMiddleware (560)
                       -> RetryAfterMiddleware (550, replaces Scrapy's RetryMiddleware)

Requests to URLs that belong to no provider pass through untouched (the retry middleware then
behaves exactly like Scrapy's). All three share the crawler's gateway with the enrichment
pipeline, so a Retry-After seen by either path pauses both.

A 2xx provider response that is not a usable answer is MALFORMED (:func:`response_verdict`):
retried with backoff, counted as a breaker failure, and, once the retries are spent, handed to
the callback with ``response.meta["apigw_malformed"]`` naming the kind.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from scrapy import Request, Spider
from scrapy.downloadermiddlewares.retry import RetryMiddleware, get_retry_request
from scrapy.exceptions import NotConfigured
from scrapy.http import Response
from scrapy.utils.response import response_status_message

from scrapy_apigw.core.outcome import Outcome
from scrapy_apigw.core.payload import Payload, is_json_type, json_requested, read_payload
from scrapy_apigw.core.retry import parse_retry_after
from scrapy_apigw.exceptions import ApiGatewayError
from scrapy_apigw.gateway import Gateway, ProviderState, Verdict
from scrapy_apigw.secrets import redact_url

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from typing_extensions import Self

logger = logging.getLogger(__name__)

#: ``request.meta`` key: wall-clock time (epoch seconds, the gateway's ``wall`` clock) before
#: which a retry must not be sent (wall, not monotonic: a JOBDIR keeps it across processes).
META_NOT_BEFORE = "apigw_not_before"
#: ``request.meta`` key set while a provider response is MALFORMED: its kind, e.g.
#: ``"truncated JSON"`` (removed again when a retry's response is fine).
META_MALFORMED = "apigw_malformed"
#: ``request.meta`` key set on provider requests: the provider's name.
META_PROVIDER = "apigw_provider"
#: The breaker ticket (fleet or local, with its half-open permit) of a request in flight.
META_BREAKER = "_apigw_breaker"
#: When a provider request was let through to be sent (the gateway's monotonic ``clock``): a
#: rate limit of a request sent before the last decrease is the same congestion event.
META_SENT_AT = "_apigw_sent_at"


#: Verdict on each provider response, so the three middlewares decode its body once.
_VERDICTS: weakref.WeakKeyDictionary[Response, Verdict] = weakref.WeakKeyDictionary()


def classify_response(
    gateway: Gateway, state: ProviderState, response: Response, request: Request | None = None
) -> Outcome:
    """The outcome of a provider *response* (memoised per response object)."""
    return response_verdict(gateway, state, response, request).outcome


def response_verdict(
    gateway: Gateway, state: ProviderState, response: Response, request: Request | None = None
) -> Verdict:
    """The verdict on a provider *response* to *request* (memoised per response object).

    Spider requests have no call type, so the malformed rule is generic: a 2xx whose body is
    empty, an HTML page, or not JSON (truncated or not) when JSON was expected, or with a
    ``Content-Type`` that is not JSON when JSON was asked for
    (:func:`~scrapy_apigw.core.payload.read_payload`). JSON is expected when the response says
    it is JSON or the request asked for it (``Accept: application/json``, ``fmt=json``,
    ``format=json``); an XML answer to a request that did not ask for JSON is fine. For a URL
    outside the provider's ``base_url`` / ``token_url`` (a web page of its domain, such as
    ``musicbrainz.org/recording/...``) only the JSON rules apply, not the empty/HTML ones.
    Sets or clears ``request.meta["apigw_malformed"]``.
    """
    verdict = _VERDICTS.get(response)
    if verdict is None:
        request = request if request is not None else response.request
        payload = _payload(state, request, response)
        verdict = _VERDICTS[response] = state.judge(response.status, payload)
        if request is not None:
            if verdict.outcome is Outcome.MALFORMED:
                request.meta[META_MALFORMED] = verdict.malformed
            else:
                request.meta.pop(META_MALFORMED, None)
    return verdict


def _payload(state: ProviderState, request: Request | None, response: Response) -> Payload:
    url = request.url if request is not None else response.url
    raw_type = response.headers.get(b"Content-Type")
    content_type = raw_type.decode("latin-1") if raw_type else None
    raw_accept = request.headers.get(b"Accept") if request is not None else None
    asked = json_requested(raw_accept.decode("latin-1") if raw_accept else None, url)
    payload = read_payload(response.body, content_type, asked)
    config = state.config
    api = url.startswith(config.base_url) or bool(
        config.token_url and url.startswith(config.token_url)
    )
    if not (api or asked or is_json_type(content_type)):
        return Payload(payload.data)  # a web page of the provider's domain, not an API answer
    return payload


def response_headers(response: Response) -> dict[str, str]:
    """Lower-case ``name -> last value`` view of a Scrapy response's headers."""
    return {
        key.decode("latin-1").lower(): values[-1].decode("latin-1")
        for key, values in response.headers.items()
        if values
    }


class _GatewayComponent:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.gateway = Gateway.for_crawler(crawler)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        """Build from the crawler; raises NotConfigured when the gateway is disabled."""
        return cls(crawler)

    def _state(self, request: Request) -> ProviderState | None:
        state = self.gateway.provider_for_url(request.url)
        if state is not None:
            request.meta[META_PROVIDER] = state.name
        return state

    def _outcome(
        self, request: Request, response: Response
    ) -> tuple[ProviderState, Outcome] | None:
        """The provider and the outcome of a provider response (None for other requests)."""
        state = self.gateway.provider_for_url(request.url)
        if state is None:
            return None
        return state, classify_response(self.gateway, state, response, request)


class TokenBucketThrottleMiddleware(_GatewayComponent):
    """Paces provider requests with the provider's token bucket, pause and window quota.

    A request to a provider that is unavailable (it keeps rate limiting, see
    :class:`~scrapy_apigw.core.ratelimit_streak.RateLimitStreak`) fails at once, and one that is
    waiting when the provider becomes so fails then: its errback receives
    :class:`~scrapy_apigw.exceptions.RateLimitedError` (``retry_in`` seconds). Once the engine
    starts closing the spider, waiting and new provider requests fail with
    :class:`~scrapy_apigw.exceptions.Interrupted`, so a graceful stop is not held by a pause.

    The wait is asynchronous (the reactor never blocks). While a request waits it is counted
    as active in its downloader slot, so Scrapy's ``DownloaderAwarePriorityQueue`` sends other
    hosts' requests first instead of filling ``CONCURRENT_REQUESTS`` with waiting ones.

    On responses it applies what they say about pacing: a rate-limited answer (429, MusicBrainz
    503, Last.fm error 29) pauses the provider for its ``Retry-After`` (RFC 9110 §10.2.3) or a
    backoff; Discogs' ``X-Discogs-Ratelimit*`` headers tune its window quota.
    """

    async def process_request(self, request: Request, spider: Spider | None = None) -> None:
        """Wait for the provider's next free slot (no-op for non-provider URLs)."""
        state = self._state(request)
        if state is None:
            return
        # The provider's own timeout bounds the download, not only Scrapy's 180 s
        # DOWNLOAD_TIMEOUT (already in meta, set by DownloadTimeoutMiddleware at 350): a
        # provider that accepts and never answers must cost what its retry policy assumes.
        timeout = request.meta.get("download_timeout")
        request.meta["download_timeout"] = min(
            float(timeout) if timeout else state.config.timeout, state.config.timeout
        )
        await self.gateway.fleet_fail_fast(state)
        not_before = request.meta.get(META_NOT_BEFORE)
        delay = max(0.0, float(not_before) - self.gateway.wall()) if not_before else 0.0
        with self._counted_in_slot(request):
            await self.gateway.acquire(state, self.gateway.clock() + delay if delay else 0.0)
        request.meta[META_SENT_AT] = self.gateway.clock()

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Response:
        """Record pacing signals (Retry-After pauses, quota headers) of provider responses."""
        if found := self._outcome(request, response):
            sent_at = request.meta.get(META_SENT_AT)
            self.gateway.record_pacing(*found, response_headers(response), sent_at)
        return response

    @contextmanager
    def _counted_in_slot(self, request: Request) -> Iterator[None]:
        # Public downloader API only (slots, get_slot_key); if a future Scrapy renames slots
        # the accounting is skipped and pacing still works.
        downloader = getattr(getattr(self.crawler, "engine", None), "downloader", None)
        active: set[Request] | None = None
        if downloader is not None and hasattr(downloader, "slots"):
            slot = downloader.slots.get(downloader.get_slot_key(request))
            active = getattr(slot, "active", None)
        if active is None or request in active:
            yield
            return
        active.add(request)
        try:
            yield
        finally:
            active.discard(request)


class CircuitBreakerMiddleware(_GatewayComponent):
    """Fails provider requests at once while the provider's circuit is open.

    The request's errback receives :class:`~scrapy_apigw.exceptions.CircuitOpenError` (with
    ``retry_in`` seconds until a half-open probe). Responses feed the breaker: 5xx, malformed
    2xx answers and network errors are failures; 2xx and 404 successes; other 4xx and rate
    limits are ignored
    (resilience4j's ``ignoreExceptions``: a refused request says nothing of the provider's health).
    """

    async def process_request(self, request: Request, spider: Spider | None = None) -> None:
        """Take a breaker permit for a provider request (the fleet's with shared limits), or
        raise CircuitOpenError."""
        state = self._state(request)
        if state is not None:
            request.meta[META_BREAKER] = await self.gateway.fleet_check_circuit(state)

    async def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Response:
        """Record a provider response's outcome on the breaker that let it through."""
        if found := self._outcome(request, response):
            await self.gateway.fleet_record_breaker(*found, request.meta.pop(META_BREAKER, None))
        return response

    async def process_exception(
        self, request: Request, exception: Exception, spider: Spider | None = None
    ) -> None:
        """Record a download error (timeout, refused connection) as a breaker failure."""
        state = self.gateway.provider_for_url(request.url)
        if state is None or isinstance(exception, ApiGatewayError):
            return
        ticket = request.meta.pop(META_BREAKER, None)
        if _is_network_error(exception):
            await self.gateway.fleet_record_breaker(state, Outcome.NETWORK_ERROR, ticket)
            self.gateway.inc(f"{state.name}/responses/{Outcome.NETWORK_ERROR.value}")
            self.gateway.observe_response_time(state, request.meta.get(META_SENT_AT))
        else:
            # releases a probe permit
            await self.gateway.fleet_record_breaker(state, Outcome.CLIENT_ERROR, ticket)


class RetryAfterMiddleware(RetryMiddleware):
    """Scrapy's ``RetryMiddleware``, plus backoff with jitter and Retry-After for providers.

    For provider requests: retries the outcomes the provider's policy retries (429 and the
    provider's own rate-limit signal, the ``retry_statuses`` 500/502/503/504, malformed 2xx
    answers, timeouts and connection errors; :meth:`ProviderState.retries`), never
    400/401/403/404; waits ``Retry-After`` (delta-seconds or HTTP-date) or an exponential
    backoff (1 s doubling to 60 s, ±20 % jitter) before the retry is sent, without holding a
    download slot (the retry is rescheduled at once and held by the throttle middleware);
    gives up at the provider's ``max_retries`` (or ``max_retry_times`` meta). Builds retries with
    :func:`scrapy.downloadermiddlewares.retry.get_retry_request`, so the ``retry/*`` stats that
    monitors read stay intact. Other requests get Scrapy's own behaviour unchanged.

    With ``APIGW_ENABLED = False`` it is exactly Scrapy's ``RetryMiddleware``.
    """

    gateway: Gateway | None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        """Build like Scrapy's RetryMiddleware (NotConfigured when ``RETRY_ENABLED`` is off)."""
        middleware = super().from_crawler(crawler)
        try:
            middleware.gateway = Gateway.for_crawler(crawler)
        except NotConfigured:
            middleware.gateway = None
        return middleware

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Request | Response:
        """Retry a provider response its policy says to retry; delegate other requests."""
        state = self._provider(request)
        if state is None:
            return super().process_response(request, response)
        if request.meta.get("dont_retry", False):
            return response
        assert self.gateway is not None
        verdict = response_verdict(self.gateway, state, response, request)
        outcome = verdict.outcome
        if not state.retries(outcome, response.status):
            if request.meta.get("retry_times", 0):
                self.gateway.retries_ended(state, answered=True)
            return response
        headers = response_headers(response)
        retry_after = parse_retry_after(
            headers.get("retry-after"), self.gateway.wall(), headers.get("date")
        )
        if outcome is Outcome.MALFORMED:
            reason = f"malformed answer ({verdict.malformed})"
        else:
            reason = response_status_message(response.status)
        return self._retry_provider(request, state, reason, outcome, retry_after) or response

    def process_exception(
        self, request: Request, exception: Exception, spider: Spider | None = None
    ) -> Request | Response | None:
        """Retry network errors of provider requests with backoff; never an open circuit."""
        state = self._provider(request)
        if state is None:
            return super().process_exception(request, exception)
        if request.meta.get("dont_retry", False):
            return None
        if isinstance(exception, ApiGatewayError) or not isinstance(
            exception, self.exceptions_to_retry
        ):
            if request.meta.get("retry_times", 0):
                assert self.gateway is not None
                self.gateway.retries_ended(state, answered=False)
            return None
        return self._retry_provider(request, state, exception, Outcome.NETWORK_ERROR, None)

    def _provider(self, request: Request) -> ProviderState | None:
        return self.gateway.provider_for_url(request.url) if self.gateway else None

    def _retry_provider(
        self,
        request: Request,
        state: ProviderState,
        reason: str | Exception,
        outcome: Outcome,
        retry_after: float | None,
    ) -> Request | None:
        assert self.gateway is not None and self.crawler.spider is not None
        attempt = request.meta.get("retry_times", 0) + 1
        delay = self.gateway.retry_delay(state, outcome, attempt, retry_after)
        if delay is None:
            # The gateway logged one WARNING when the provider became unavailable.
            logger.info(
                "apigw: %s: not retrying %s",
                self.gateway.rate_limited_error(state, retry_after),
                redact_url(request.url),
            )
            if attempt > 1:
                self.gateway.retries_ended(state, answered=False)
            return None
        retry = get_retry_request(
            request,
            spider=self.crawler.spider,
            reason=reason,
            max_retry_times=request.meta.get("max_retry_times", state.config.max_retries),
            priority_adjust=request.meta.get("priority_adjust", self.priority_adjust),
            give_up_log_level=request.meta.get("give_up_log_level", self.give_up_log_level),
        )
        if retry is None:
            if attempt > 1:
                self.gateway.retries_ended(state, answered=False)
            return None
        # Held by the throttle middleware, so the wait holds no download slot.
        retry.meta[META_NOT_BEFORE] = self.gateway.wall() + delay
        self.gateway.retried(state, outcome)
        return retry


#: Scrapy's own download errors (Scrapy >= 2.14 raises these instead of Twisted's): refused,
#: timed out, failed, cut short. Looked up by name so older Scrapy versions work too.
_SCRAPY_NETWORK_ERRORS = (
    "DownloadConnectionRefusedError",
    "DownloadTimeoutError",
    "DownloadFailedError",
    "ResponseDataLossError",
)


def _is_network_error(exception: Exception) -> bool:
    import scrapy.exceptions
    from twisted.internet import error as tx_error
    from twisted.internet.defer import TimeoutError as DeferTimeoutError
    from twisted.web.client import ResponseFailed

    scrapy_errors = tuple(
        cls
        for name in _SCRAPY_NETWORK_ERRORS
        if isinstance(cls := getattr(scrapy.exceptions, name, None), type)
    )
    return isinstance(
        exception,
        (
            tx_error.TimeoutError,
            DeferTimeoutError,
            tx_error.ConnectError,
            tx_error.ConnectionLost,
            tx_error.ConnectionDone,
            ResponseFailed,
            TimeoutError,
            ConnectionError,
            *scrapy_errors,
        ),
    )


__all__ = [
    "META_MALFORMED",
    "META_NOT_BEFORE",
    "META_PROVIDER",
    "CircuitBreakerMiddleware",
    "RetryAfterMiddleware",
    "TokenBucketThrottleMiddleware",
    "classify_response",
    "response_headers",
    "response_verdict",
]
