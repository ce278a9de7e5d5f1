"""How the Web API client retries: until a deadline, honouring ``Retry-After``, never a blind re-post.

slack_sdk's own handlers count attempts (three 429s, two 5xx), and the count is shared between them, so
a fourth 429 in a row lost an answer although Slack had only asked tanya to wait a second or two.
Slack's rate limits are per minute, so a budget of attempts is the wrong measure: these handlers keep
retrying while the total time spent on the call, including the next wait, stays within a deadline.

``chat.postMessage`` is not repeated here after a 5xx or a dropped connection: Slack may have stored the
message before failing, and a blind re-post leaves a second copy in the thread. ``bot.slack.delivery``
looks the message up before posting again. A 429 is always safe to repeat: Slack stored nothing.

Each handler counts the retries it grants by its ``reason`` (``tanya_slack_api_retries_total``), the
early sign of a Slack incident or of tanya posting too fast. Bolt copies the retry handlers into the
client it builds per request, so those retries are counted whichever client made the call.
"""

from __future__ import annotations

import random
import time
from http.client import RemoteDisconnected
from typing import Any
from urllib.error import URLError

from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from tenacity import wait_exponential_jitter

from bot.observability.metrics import SLACK_API_RETRIES

# Slack's rate windows are a minute long; two of them cover a 429 answered with "Retry-After: 60".
DEFAULT_DEADLINE_SECONDS = 120.0
MAX_ATTEMPTS = 60  # a bound on the loop whatever Slack sends; the deadline is what normally ends it
NOT_REPEATABLE = ("chat.postMessage",)


def _elapsed(state: RetryState) -> float:
    """Seconds since the first failure of this call (the first ``can_retry``)."""
    if state.custom_values is None:
        state.custom_values = {}
    started = state.custom_values.setdefault("tanya_started", time.monotonic())
    return time.monotonic() - float(started)


def _method(request: HttpRequest) -> str:
    return request.url.rstrip("/").rsplit("/", 1)[-1].partition("?")[0]


def retry_after_seconds(response: HttpResponse | None) -> float:
    """Slack's ``Retry-After`` in seconds (1 when missing or unreadable, never negative)."""
    if response is None:
        return 1.0
    for name, values in response.headers.items():
        if name.lower() == "retry-after":
            value = values[0] if isinstance(values, list) and values else values
            try:
                return max(0.0, float(str(value).strip()))
            except ValueError:
                return 1.0
    return 1.0


class DeadlineRetryHandler(RetryHandler):
    """Base: retry while the call's total time, including the coming wait, is within ``deadline``."""

    reason = "other"  # the label its retries are counted under

    def __init__(self, deadline: float = DEFAULT_DEADLINE_SECONDS) -> None:
        super().__init__(max_retry_count=MAX_ATTEMPTS)
        self.deadline = deadline

    def can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if state.current_attempt >= self.max_retry_count:
            return False
        if not self._can_retry(state=state, request=request, response=response, error=error):
            return False
        wait = self.wait_seconds(state, response)
        if _elapsed(state) + wait > self.deadline:
            return False
        state.custom_values["tanya_wait"] = wait  # type: ignore[index]
        return True

    def wait_seconds(self, state: RetryState, response: HttpResponse | None) -> float:
        raise NotImplementedError

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        SLACK_API_RETRIES.labels(reason=self.reason).inc()
        state.next_attempt_requested = True
        wait = (state.custom_values or {}).get("tanya_wait")
        time.sleep(self.wait_seconds(state, response) if wait is None else float(wait))
        state.increment_current_attempt()


class RateLimitedRetryHandler(DeadlineRetryHandler):
    """429: wait what Slack asks (plus a little jitter so replicas do not return in step), any method."""

    reason = "rate_limited"

    def _can_retry(self, *, state: RetryState, request: HttpRequest, **kwargs: Any) -> bool:
        response: HttpResponse | None = kwargs.get("response")
        return response is not None and response.status_code == 429

    def wait_seconds(self, state: RetryState, response: HttpResponse | None) -> float:
        return retry_after_seconds(response) + random.uniform(0.0, 0.25)


class ServerErrorRetryHandler(DeadlineRetryHandler):
    """5xx, with exponential back-off, for methods that are safe to repeat."""

    reason = "server_error"

    _backoff = wait_exponential_jitter(initial=0.5, max=8.0, jitter=0.5)

    def _can_retry(self, *, state: RetryState, request: HttpRequest, **kwargs: Any) -> bool:
        response: HttpResponse | None = kwargs.get("response")
        return _method(request) not in NOT_REPEATABLE and response is not None and response.status_code >= 500

    def wait_seconds(self, state: RetryState, response: HttpResponse | None) -> float:
        return float(self._backoff(_AttemptNumber(state.current_attempt + 1)))


class ConnectionRetryHandler(ServerErrorRetryHandler):
    """A connection refused, reset or timed out, for methods that are safe to repeat."""

    reason = "connection"

    def _can_retry(self, *, state: RetryState, request: HttpRequest, **kwargs: Any) -> bool:
        if _method(request) in NOT_REPEATABLE or kwargs.get("response") is not None:
            return False
        error = kwargs.get("error")
        return isinstance(error, (URLError, ConnectionError, RemoteDisconnected, TimeoutError))


class _AttemptNumber:
    """The one attribute tenacity's wait strategies read from their retry state."""

    def __init__(self, attempt_number: int) -> None:
        self.attempt_number = attempt_number
