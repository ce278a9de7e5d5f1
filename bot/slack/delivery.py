"""Posting tanya's message for a question exactly once, even when Slack fails after storing it.

Slack can store a message and still answer 500 (or drop the connection before the answer arrives).
Posting again blindly then leaves a second "Looking through the documents…" in the thread that nobody
ever updates. So the post carries message metadata naming the question it belongs to, is never
repeated by the HTTP client (``bot.slack.retries``), and after an uncertain failure the thread is
searched for that metadata before posting again. A 429 past the client's deadline, or a refusal such
as ``channel_not_found``, ends the attempt: the caller records the answer as undelivered.
"""

from __future__ import annotations

import logging
from http.client import HTTPException
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

log = logging.getLogger(__name__)

EVENT_TYPE = "tanya_answer"
LOOKUP_LIMIT = 200
TRANSPORT_ERRORS = (URLError, OSError, HTTPException, TimeoutError)


class Undeliverable(Exception):
    """Slack did not take the message; the text says why (``ratelimited``, ``channel_not_found``…)."""


class _Uncertain(Exception):
    """The post may or may not have been stored: look before posting again."""


def _status(exc: SlackApiError) -> int:
    return int(getattr(exc.response, "status_code", 200) or 200)


def _error(exc: SlackApiError) -> str:
    response = exc.response
    error = response.get("error") if response is not None else None
    return str(error or f"HTTP {_status(exc)}")


def find_posted(client: WebClient, channel: str, thread_ts: str, key: str, oldest: str) -> str | None:
    """The ts of tanya's message for ``key`` in this thread, or None when there is none (yet)."""
    try:
        response = client.conversations_replies(
            channel=channel, ts=thread_ts, oldest=oldest, include_all_metadata=True, limit=LOOKUP_LIMIT
        )
    except SlackApiError as exc:
        raise _Uncertain(f"could not look the message up: {_error(exc)}") from exc
    except TRANSPORT_ERRORS as exc:
        raise _Uncertain(f"could not look the message up: {exc}") from exc
    for message in response.get("messages") or []:
        metadata = message.get("metadata") or {}
        payload = metadata.get("event_payload") or {}
        if metadata.get("event_type") == EVENT_TYPE and payload.get("key") == key:
            return str(message["ts"])
    return None


def post_once(
    client: WebClient,
    *,
    channel: str,
    thread_ts: str,
    key: str,
    after_ts: str,
    deadline: float,
    look_first: bool = False,
    **fields: Any,
) -> str:
    """Post ``fields`` in the thread once and return the message's ts, or raise ``Undeliverable``.

    ``key`` names the question (one message per key); ``after_ts`` is the question's ts, so the lookup
    reads only the part of the thread that could hold the message. ``look_first`` searches before the
    first post too: after a crash the message may be there already.
    """
    metadata = {"event_type": EVENT_TYPE, "event_payload": {"key": key}}
    uncertain = look_first

    def attempt_once() -> str:
        nonlocal uncertain
        if uncertain:
            found = find_posted(client, channel, thread_ts, key, after_ts)
            if found is not None:
                log.info("found the message for %s already posted as %s; not posting it again", key, found)
                return found
        try:
            response = client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, metadata=metadata, **fields
            )
        except SlackApiError as exc:
            if _status(exc) >= 500:
                uncertain = True
                raise _Uncertain(_error(exc)) from exc
            raise Undeliverable(_error(exc)) from exc
        except TRANSPORT_ERRORS as exc:
            uncertain = True
            raise _Uncertain(str(exc) or type(exc).__name__) from exc
        return str(response["ts"])

    retrying = Retrying(
        stop=stop_after_delay(deadline),
        wait=wait_exponential_jitter(initial=0.5, max=8.0, jitter=0.5),
        retry=retry_if_exception_type(_Uncertain),
        reraise=True,
    )
    try:
        return retrying(attempt_once)
    except _Uncertain as exc:
        try:  # the last failure may have been stored too
            found = find_posted(client, channel, thread_ts, key, after_ts)
        except _Uncertain:
            found = None
        if found is not None:
            return found
        raise Undeliverable(str(exc)) from exc
