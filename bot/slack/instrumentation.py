"""Measuring Slack traffic in both directions, without touching the listeners.

* Incoming: a Bolt global middleware counts every verified delivery by type (it runs after Bolt's
  signature check, so forged requests never reach a metric) and notes Slack's own retries.
* Outgoing: the Web API client counts calls that end in an error; the retries granted are counted by
  the retry handlers themselves (``bot.slack.retries``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt.request import BoltRequest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from bot.observability.metrics import EVENTS, RETRIED_DELIVERIES, SLACK_API_ERRORS, label


def delivery_type(body: dict[str, Any]) -> str:
    """``app_mention``, ``reaction_added``…, ``slash_command``, ``block_actions``, ``view_submission``…"""
    if body.get("type") == "event_callback":
        return label((body.get("event") or {}).get("type"))
    if body.get("command"):
        return "slash_command"
    return label(body.get("type"))


def count_delivery(req: BoltRequest, body: dict[str, Any], next: Callable[[], None]) -> None:
    """Bolt global middleware (Bolt injects arguments by these names)."""
    if not req.lazy_only:
        EVENTS.labels(type=delivery_type(body)).inc()
        retry = (req.headers.get("x-slack-retry-num") or ["0"])[0]
        if retry not in ("", "0"):
            RETRIED_DELIVERIES.inc()
    next()


class CountingWebClient(WebClient):
    """A ``WebClient`` that counts failed calls by method and Slack's error code (``ratelimited``,
    ``channel_not_found``…, or ``transport`` when no answer came back at all)."""

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:  # type: ignore[override]
        try:
            return super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            SLACK_API_ERRORS.labels(method=label(api_method, 64), error=label(error)).inc()
            raise
        except Exception:
            SLACK_API_ERRORS.labels(method=label(api_method, 64), error="transport").inc()
            raise
