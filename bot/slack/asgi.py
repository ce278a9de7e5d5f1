"""The HTTP surface of ``tanya serve`` as one ASGI application: Bolt, plus the operator's endpoints.

* ``POST /slack/events`` — Events API, slash commands and interactivity. Bolt verifies the signature and
  the timestamp (401 otherwise). A body that is not the JSON or form encoding Slack sends is answered
  400 here, before Bolt would turn it into a 500 that Slack retries; a body over 4 MiB, 413.
* ``GET /healthz``, ``/readyz`` and ``/metrics`` — ``bot.slack.ops``, answered before Bolt and without a
  signature.

Why ASGI: Slack delivers in bursts (a busy channel, a retry storm) and wants each acknowledgement
within 3 s, ideally at once. The server reads and parses requests on one event loop (httptools and
uvloop under uvicorn), so a burst costs neither a thread nor Python header parsing per request. Bolt's
``App`` is synchronous and an acknowledgement may touch the database (a suggestion is saved before
its form closes), so dispatch runs on a small thread pool: a slow database stalls those requests, not
the loop, and every other connection is still read and answered. While a request is being
acknowledged, lazy work and local generation in the same process wait (``bot.slack.priority``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse

from bot.slack.ops import OpsEndpoints
from bot.slack.payloads import shape_problem, signature_problem
from bot.slack.priority import AckFirst
from storage import Database

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
MAX_BODY_BYTES = 4 * 1024 * 1024
DISPATCH_THREADS = 8

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class SlackAsgiApp:
    """Bolt behind the operator's endpoints; ``app=None`` serves only the operator's endpoints."""

    def __init__(
        self,
        app: App | None,
        ops: OpsEndpoints,
        *,
        path: str = EVENTS_PATH,
        threads: int = DISPATCH_THREADS,
        acks: AckFirst | None = None,
    ) -> None:
        self.bolt = app
        self.ops = ops
        self.acks = acks or AckFirst()
        self.path = path
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tanya-http")

    @property
    def database(self) -> Database:
        return self.ops.database

    @database.setter
    def database(self, database: Database) -> None:
        self.ops.database = database

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await _refuse_other_protocols(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        loop = asyncio.get_running_loop()
        if self.ops.handles(method, path):
            reply = await loop.run_in_executor(self.executor, self.ops.respond, path)
            await respond(send, reply.status, reply.body, reply.content_type)
            return
        if self.bolt is None or path != self.path:
            await respond_json(send, 404, {"ok": False, "error": "not found"})
            return
        if method != "POST":
            await respond_json(send, 405, {"ok": False, "error": "POST only"}, [(b"allow", b"POST")])
            return
        with self.acks.acknowledgement():  # until the response is sent, lazy work and generation give way
            await self._acknowledge(self.bolt, scope, receive, send)

    async def _acknowledge(self, bolt: App, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(scope, receive, MAX_BODY_BYTES)
        if body is None:
            await respond_json(send, 413, {"ok": False, "error": "request body too large"})
            return
        secret = getattr(bolt, "_signing_secret", "")
        if secret:  # before any parsing: an unsigned request learns nothing about the body's handling
            problem = signature_problem(_headers(scope), body, secret)
            if problem is not None:
                log.warning("refused an unsigned request: %s", problem)
                await respond_json(send, 401, {"ok": False, "error": "invalid signature"})
                return
        request = bolt_request(scope, body)
        problem = (
            "not the JSON or form encoding Slack sends" if request is None else shape_problem(request.body)
        )
        if problem is not None:
            log.warning("rejected a malformed request: %s", problem)
            await respond_json(send, 400, {"ok": False, "error": "malformed request body"})
            return
        loop = asyncio.get_running_loop()
        response = await loop.run_in_executor(self.executor, bolt.dispatch, request)
        await respond_bolt(send, response)


def _headers(scope: Scope) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return headers


def bolt_request(scope: Scope, body: bytes) -> BoltRequest | None:
    """The request as Bolt reads it, or None when the body is not the JSON or form encoding Slack sends."""
    headers = _headers(scope)
    try:
        request = BoltRequest(
            body=body.decode("utf-8"), query=scope.get("query_string", b"").decode("latin-1"), headers=headers
        )
    except (ValueError, AttributeError, TypeError, RecursionError) as exc:  # UnicodeDecodeError: ValueError
        log.info("could not parse a request body: %s", type(exc).__name__)
        return None
    return request if isinstance(request.body, dict) else None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None once it is larger than ``limit`` (the rest is not read)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode("latin-1")),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def respond_json(
    send: Send, status: int, payload: dict[str, Any], headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    await respond(send, status, json.dumps(payload).encode(), "application/json;charset=utf-8", headers)


async def respond_bolt(send: Send, response: BoltResponse) -> None:
    body = response.body.encode("utf-8") if isinstance(response.body, str) else bytes(response.body or b"")
    headers = [
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, values in response.headers.items()
        if name.lower() not in ("content-length", "content-type")
        for value in values
    ]
    content_type = response.headers.get("content-type", ["text/plain;charset=utf-8"])[0]
    await respond(send, response.status, body, content_type, headers)


async def _refuse_other_protocols(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":  # nothing to set up or tear down per server start
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
        if message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
    elif scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1003})


async def starting(scope: Scope, receive: Receive, send: Send) -> None:
    """What the port answers while the models load: alive (``/healthz``), not ready for anything else."""
    if scope["type"] != "http":
        await _refuse_other_protocols(scope, receive, send)
    elif scope["path"] == "/healthz":
        await respond_json(send, 200, {"status": "starting"})
    else:
        await respond_json(send, 503, {"status": "starting"}, [(b"retry-after", b"5")])
