"""Requests shaped like the ones Slack sends: signed Events API, slash command and interactivity posts.

Signatures are computed here with HMAC-SHA256 over ``v0:<timestamp>:<body>`` (Slack's v0 scheme),
independently of slack_sdk, so a bug in how the bot verifies them cannot hide behind shared code.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from tests.slack.emulator import APP_ID, BOT_USER_ID, SIGNING_SECRET, TEAM_ID

T = TypeVar("T")
_counter = itertools.count(1)


def wait_until(
    predicate: Callable[[], T], timeout: float = 60.0, interval: float = 0.02, what: str = ""
) -> T:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or predicate}")
        time.sleep(interval)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter):05d}"


def new_ts() -> str:
    """A message timestamp in Slack's format; unique within the test run."""
    return f"{1_600_000_000 + next(_counter)}.{next(_counter):06d}"


def signature(body: str | bytes, timestamp: int | str, secret: str = SIGNING_SECRET) -> str:
    """Slack signs the raw bytes of the body."""
    raw = body if isinstance(body, bytes) else body.encode()
    base = f"v0:{timestamp}:".encode() + raw
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class Reply:
    status: int
    body: str
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


def post(
    url: str,
    body: str | bytes,
    *,
    content_type: str = "application/json",
    secret: str | None = SIGNING_SECRET,
    timestamp: int | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Reply:
    """POST like Slack does; ``secret=None`` sends no signature at all."""
    data = body.encode() if isinstance(body, str) else body
    all_headers = {"Content-Type": content_type, **(headers or {})}
    if secret is not None:
        stamp = int(time.time()) if timestamp is None else timestamp
        all_headers["X-Slack-Request-Timestamp"] = str(stamp)
        all_headers["X-Slack-Signature"] = signature(data, stamp, secret)
    request = urllib.request.Request(url, data=data, headers=all_headers, method="POST")
    return _send(request, timeout)


def get(url: str, timeout: float = 10.0) -> Reply:
    return _send(urllib.request.Request(url, method="GET"), timeout)


def _send(request: urllib.request.Request, timeout: float) -> Reply:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Reply(response.status, response.read().decode(), dict(response.headers))
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read().decode(), dict(error.headers))


# -- payloads (shapes from Slack's documentation) -------------------------------------------------


def event_callback(event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    return {
        "token": "unused-verification-token",
        "team_id": TEAM_ID,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or unique("Ev"),
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": unique("4-ctx-"),
    }


def app_mention(
    text: str, *, user: str, channel: str, ts: str | None = None, thread_ts: str | None = None
) -> dict[str, Any]:
    ts = ts or new_ts()
    event = {
        "type": "app_mention",
        "user": user,
        "text": f"<@{BOT_USER_ID}> {text}",
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
        "team": TEAM_ID,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def message(
    text: str,
    *,
    user: str | None,
    channel: str,
    channel_type: str,
    ts: str | None = None,
    thread_ts: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    ts = ts or new_ts()
    event = {
        "type": "message",
        "text": text,
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
        "channel_type": channel_type,
        "team": TEAM_ID,
    }
    if user:
        event["user"] = user
    if thread_ts:
        event["thread_ts"] = thread_ts
    event.update(extra)
    return event


def reaction(
    kind: str, name: str, *, user: str, channel: str, ts: str, item_user: str | None = BOT_USER_ID
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": kind,
        "user": user,
        "reaction": name,
        "item": {"type": "message", "channel": channel, "ts": ts},
        "event_ts": new_ts(),
    }
    if item_user:
        event["item_user"] = item_user
    return event


def app_home_opened(user: str) -> dict[str, Any]:
    return {
        "type": "app_home_opened",
        "user": user,
        "channel": "D" + user[1:],
        "tab": "home",
        "event_ts": new_ts(),
    }


def slash_command(text: str, *, user: str, channel: str, response_url: str) -> str:
    return urlencode(
        {
            "token": "unused-verification-token",
            "team_id": TEAM_ID,
            "team_domain": "tanya-test",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/tanya",
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": unique("trigger."),
        }
    )


def block_action(
    action_id: str, value: str, *, user: str, channel: str, message_ts: str, thread_ts: str, response_url: str
) -> str:
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "unused-verification-token",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": unique("trigger."),
        "team": {"id": TEAM_ID, "domain": "tanya-test"},
        "channel": {"id": channel, "name": "general"},
        "message": {
            "type": "message",
            "user": BOT_USER_ID,
            "ts": message_ts,
            "thread_ts": thread_ts,
            "text": "answer",
        },
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": "feedback",
                "value": value,
                "type": "button",
                "action_ts": str(time.time()),
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)})


def view_submission(callback_id: str, *, user: str, private_metadata: str, values: dict[str, Any]) -> str:
    payload = {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": "tanya-test"},
        "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "unused-verification-token",
        "trigger_id": unique("trigger."),
        "view": {
            "id": unique("V"),
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "state": {"values": values},
            "hash": "1",
        },
    }
    return urlencode({"payload": json.dumps(payload)})
