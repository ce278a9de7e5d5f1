"""Cheap checks on a request before Bolt sees it, so a client's mistake is a 4xx, never a 5xx.

Bolt's signature check and its listener matchers assume what Slack sends: ASCII signature headers, a
numeric timestamp, an ``event`` object with a string ``type``, ``actions`` as a list of objects, a
``view`` with a ``type``. Anything else made them raise, which answered 500 (Slack retries those) with
a traceback at ERROR. ``signature_problem`` runs before the body is parsed; ``shape_problem`` after.
Each returns a one-line reason, or None when the request may go on.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from typing import Any

MAX_AGE_SECONDS = 300

_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_MESSAGE_LIKE = frozenset({"message", "app_mention", "reaction_added", "reaction_removed"})


def signature_problem(headers: dict[str, list[str]], body: bytes, secret: str) -> str | None:
    """Why the request is not validly signed (401), checked on the raw bytes before any parsing."""
    signature = (headers.get("x-slack-signature") or [""])[0]
    timestamp = (headers.get("x-slack-request-timestamp") or [""])[0]
    if not signature or not timestamp:
        return "no signature headers"
    if not _SIGNATURE.fullmatch(signature):
        return "a signature header that is not v0= and 64 hex digits"
    if not _TIMESTAMP.fullmatch(timestamp):
        return "a request timestamp that is not a number"
    # Slack signs the raw bytes; they are checked as bytes, so a body that is not UTF-8 is a 400 later.
    expected = (
        "v0="
        + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    )
    if abs(time.time() - int(timestamp)) > MAX_AGE_SECONDS or not hmac.compare_digest(expected, signature):
        return "a wrong signature or a timestamp more than five minutes off"
    return None


def _is_list_of_objects(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def shape_problem(body: dict[str, Any]) -> str | None:
    """Why a signed body is not something Slack sends (400), or None."""
    kind = body.get("type")
    if kind is not None and not isinstance(kind, str):
        return "type is not a string"
    if kind == "event_callback":
        event = body.get("event")
        if not isinstance(event, dict):
            return "event is not an object"
        if not isinstance(event.get("type"), str):
            return "event.type is not a string"
        allowed: tuple[type, ...] = (str,) if event["type"] in _MESSAGE_LIKE else (str, dict)
        for name in ("channel", "user", "ts", "thread_ts", "text", "subtype", "bot_id"):
            value = event.get(name)
            if value is not None and not isinstance(value, allowed):
                return f"event.{name} has the wrong type"
    if "actions" in body and not _is_list_of_objects(body["actions"]):
        return "actions is not a list of objects"
    if kind in ("view_submission", "view_closed"):
        view = body.get("view")
        if not isinstance(view, dict) or not isinstance(view.get("type"), str):
            return "view is not an object with a type"
    for name in ("user", "team", "channel", "container", "message"):
        value = body.get(name)
        if name in ("user", "team", "channel") and kind in (None, "event_callback", "url_verification"):
            continue  # slash commands and events carry these differently
        if value is not None and not isinstance(value, dict):
            return f"{name} is not an object"
    return None
