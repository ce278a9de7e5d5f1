"""Whatever a client sends to ``/slack/events``, the answer is 2xx or 4xx — never a 5xx or a traceback.

A 5xx makes Slack retry the same broken delivery and, worse, looks like an outage to the operator;
a traceback at ERROR for someone else's mistake buries the real ones. Unsigned requests, including
those whose signature headers are not even ASCII or whose timestamp is not a number, are refused with
401 before anything is parsed; signed requests with a body Bolt cannot use are refused with 400 (or
acknowledged and ignored), and each leaves at most one WARNING line saying why.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from tests.slack import slack_requests as slack
from tests.slack.emulator import APP_ID, TEAM_ID


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    signed: bool = True
    content_type: str = "application/json"
    headers: dict[str, bytes | str] = field(default_factory=dict)


def event(inner: object, **outer: object) -> bytes:
    body = {
        "type": "event_callback",
        "team_id": TEAM_ID,
        "api_app_id": APP_ID,
        "event_id": slack.unique("Ev"),
    }
    body.update(outer)
    body["event"] = inner
    return json.dumps(body).encode()


def payload(value: object) -> bytes:
    return urlencode({"payload": json.dumps(value)}).encode()


FORM = "application/x-www-form-urlencoded"
GOOD_EVENT = event({"type": "app_home_opened", "user": "UMALFORM01", "tab": "messages"})

CASES = [
    # -- unsigned, or signed in ways that cannot be checked: 401 before any parsing -------------
    Case("no signature headers", GOOD_EVENT, signed=False),
    Case(
        "non-ASCII signature (UTF-8 bytes)",
        GOOD_EVENT,
        signed=False,
        headers={"X-Slack-Signature": "v0=é".encode(), "X-Slack-Request-Timestamp": "NOW"},
    ),
    Case(
        "non-ASCII signature (latin-1 byte)",
        GOOD_EVENT,
        signed=False,
        headers={"X-Slack-Signature": b"v0=\xff\xfe", "X-Slack-Request-Timestamp": "NOW"},
    ),
    Case(
        "timestamp that is not a number",
        GOOD_EVENT,
        signed=False,
        headers={"X-Slack-Signature": "v0=" + "0" * 64, "X-Slack-Request-Timestamp": "yesterday"},
    ),
    Case(
        "non-ASCII timestamp",
        GOOD_EVENT,
        signed=False,
        headers={"X-Slack-Signature": "v0=" + "0" * 64, "X-Slack-Request-Timestamp": "１２３".encode()},
    ),
    Case(
        "timestamp far too large",
        GOOD_EVENT,
        signed=False,
        headers={"X-Slack-Signature": "v0=" + "0" * 64, "X-Slack-Request-Timestamp": "9" * 400},
    ),
    Case(
        "empty signature",
        GOOD_EVENT,
        signed=False,
        headers={"X-Slack-Signature": "", "X-Slack-Request-Timestamp": "NOW"},
    ),
    Case("signature only", GOOD_EVENT, signed=False, headers={"X-Slack-Signature": "v0=abc"}),
    Case("timestamp only", GOOD_EVENT, signed=False, headers={"X-Slack-Request-Timestamp": "NOW"}),
    Case("unsigned non-UTF-8 body", b"\xff\xfe{", signed=False),
    Case("unsigned form with a bad payload", b"payload=%7Bnot-json", signed=False, content_type=FORM),
    # -- signed, but not what Slack sends ------------------------------------------------------
    Case("event: null", event(None)),
    Case("event: a string", event("app_mention")),
    Case("event: a list", event([{"type": "app_mention"}])),
    Case("event without a type", event({"user": "UMALFORM01"})),
    Case("event type is a number", event({"type": 7})),
    Case("event_id is an object", event({"type": "app_home_opened", "user": "U1"}, event_id={"a": 1})),
    Case(
        "reaction whose item is a string",
        event({"type": "reaction_added", "user": "U1", "reaction": "+1", "item": "msg"}),
    ),
    Case(
        "reaction whose reaction is a list",
        event({"type": "reaction_added", "user": "U1", "reaction": ["+1"], "item": {}}),
    ),
    Case(
        "reaction with a numeric user",
        event(
            {
                "type": "reaction_removed",
                "user": 5,
                "reaction": "+1",
                "item": {"type": "message", "channel": "C1", "ts": "1.2"},
            }
        ),
    ),
    Case(
        "reaction with a bad event_ts",
        event(
            {
                "type": "reaction_added",
                "user": "U1",
                "reaction": "+1",
                "item": {"type": "message", "channel": "C1", "ts": "1.2"},
                "event_ts": "soon",
            }
        ),
    ),
    Case(
        "app_mention with text null",
        event({"type": "app_mention", "user": "U1", "channel": "C1", "ts": "1.2", "text": None}),
    ),
    Case(
        "app_mention with a numeric channel",
        event({"type": "app_mention", "user": "U1", "channel": 42, "ts": "1.2", "text": "hi"}),
    ),
    Case(
        "message with a user object",
        event(
            {
                "type": "message",
                "user": {"id": "U1"},
                "channel": "D1",
                "ts": "1.2",
                "text": "hi",
                "channel_type": "im",
            }
        ),
    ),
    Case(
        "message with thread_ts a number",
        event(
            {"type": "message", "user": "U1", "channel": "C1", "ts": "1.3", "thread_ts": 1.2, "text": "hi"}
        ),
    ),
    Case("app_home_opened without a user", event({"type": "app_home_opened", "tab": "home"})),
    Case("url_verification without a challenge", json.dumps({"type": "url_verification"}).encode()),
    Case("JSON that is a list", b"[1, 2]"),
    Case("JSON that is a string", b'"event_callback"'),
    Case("JSON that is null", b"null"),
    Case("not JSON at all", b"{nope"),
    Case("empty body", b""),
    Case("non-UTF-8 body", b"\xff\xfe{}"),
    Case("deeply nested JSON", b"[" * 100_000 + b"]" * 100_000),
    Case(
        "view_submission without view.type",
        payload({"type": "view_submission", "user": {"id": "U1"}, "view": {"callback_id": "x"}}),
    ),
    Case(
        "view_submission with view: null",
        payload({"type": "view_submission", "user": {"id": "U1"}, "view": None}),
    ),
    Case(
        "view_submission of the suggestion form, bad metadata",
        payload(
            {
                "type": "view_submission",
                "user": {"id": "U1"},
                "view": {
                    "type": "modal",
                    "callback_id": "tanya_suggestion",
                    "private_metadata": "{bad",
                    "state": {"values": {}},
                },
            }
        ),
    ),
    Case("view_closed without a view", payload({"type": "view_closed", "user": {"id": "U1"}})),
    Case("block_actions without actions", payload({"type": "block_actions", "user": {"id": "U1"}})),
    Case(
        "block_actions with actions: a string",
        payload({"type": "block_actions", "user": {"id": "U1"}, "actions": "vote"}),
    ),
    Case(
        "block_actions, vote with a bad value",
        payload(
            {
                "type": "block_actions",
                "user": {"id": "U1"},
                "actions": [{"action_id": "tanya_vote_up", "value": "x", "type": "button"}],
            }
        ),
    ),
    Case(
        "block_actions without a user",
        payload({"type": "block_actions", "actions": [{"action_id": "tanya_vote_up", "value": "1"}]}),
    ),
    Case("payload that is not JSON", b"payload=%7Bnot-json", content_type=FORM),
    Case("payload that is a list", payload([1, 2]), content_type=FORM),
    Case("payload that is null", payload(None), content_type=FORM),
    Case("payload without a type", payload({"user": {"id": "U1"}}), content_type=FORM),
    Case("shortcut without a callback", payload({"type": "shortcut", "user": {"id": "U1"}})),
    Case(
        "slash command without a user",
        urlencode({"command": "/tanya", "text": "status"}).encode(),
        content_type=FORM,
    ),
    Case(
        "slash command without text",
        urlencode({"command": "/tanya", "user_id": "U1", "channel_id": "C1"}).encode(),
        content_type=FORM,
    ),
    Case(
        "an unknown slash command",
        urlencode({"command": "/other", "user_id": "U1", "text": "x"}).encode(),
        content_type=FORM,
    ),
    Case("form with no fields Slack uses", b"a=1&b=2", content_type=FORM),
    Case("retry number that is not a number", GOOD_EVENT, headers={"X-Slack-Retry-Num": "many"}),
    Case("an odd content type", GOOD_EVENT, content_type="text/plain; charset=utf-16"),
]
for case in CASES[:]:
    if "view_submission" in case.name or "block_actions" in case.name or "shortcut" in case.name:
        CASES.append(Case(case.name + " (form)", case.body, content_type=FORM))


def send(url: str, case: Case) -> int:
    """POST with exactly the bytes and headers of ``case`` (urllib would refuse some of them)."""
    parts = urlsplit(url)
    headers: dict[str, bytes | str] = {
        "Content-Type": case.content_type,
        "Content-Length": str(len(case.body)),
    }
    if case.signed:
        stamp = str(int(time.time()))
        headers["X-Slack-Request-Timestamp"] = stamp
        headers["X-Slack-Signature"] = slack.signature(case.body, stamp)
    for name, value in case.headers.items():
        headers[name] = str(int(time.time())) if value == "NOW" else value
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest("POST", parts.path)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders(case.body)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_no_request_a_client_can_send_gets_a_5xx_or_a_traceback(make_bot, caplog) -> None:
    bot = make_bot()
    statuses: dict[str, int] = {}
    with caplog.at_level(logging.WARNING):
        for case in CASES:
            statuses[case.name] = send(bot.events_url, case)
        bot.settle()
    print(f"{len(statuses)} malformed requests, {sum(s >= 500 for s in statuses.values())} answered 5xx")
    assert {name: s for name, s in statuses.items() if s >= 500} == {}
    unsigned = {case.name: statuses[case.name] for case in CASES if not case.signed}
    assert set(unsigned.values()) == {401}, unsigned
    loud = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert loud == []
    # The bot still works afterwards.
    assert bot.send_event(slack.app_home_opened("UMALFORM02")).status == 200
