"""HTTP mode: Bolt's WSGI adapter behind a small threaded server, plus the operator's endpoints.

* ``POST /slack/events`` — Events API, slash commands and interactivity. Bolt verifies the signature and
  the timestamp (401 otherwise). A body that is not the JSON or form encoding Slack sends is answered
  400 here, before Bolt would turn it into a 500 that Slack retries.
* ``GET /healthz`` (liveness), ``GET /readyz`` (database, document store and generator answer) and
  ``GET /metrics`` (Prometheus) — ``bot.slack.ops``, answered before Bolt and without a signature.

The server is the standard library's WSGI server with a thread per request: acknowledgements take
milliseconds and the heavy work is elsewhere, so this is enough for a team's bot; any WSGI server can
host ``SlackWsgiApp`` instead.
"""

from __future__ import annotations

import json
import logging
import socketserver
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse

from bot.service import InputError
from bot.slack.ops import ComponentCheck, OpsEndpoints
from storage import Database

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
MAX_BODY_BYTES = 4 * 1024 * 1024
JSON_HEADERS = {"content-type": ["application/json;charset=utf-8"]}
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _error(status: int, message: str) -> BoltResponse:
    return BoltResponse(status=status, body=json.dumps({"ok": False, "error": message}), headers=JSON_HEADERS)


class TanyaRequestHandler(SlackRequestHandler):
    """Bolt's WSGI handler, refusing malformed bodies with 400 instead of failing inside Bolt."""

    def dispatch(self, request: WsgiHttpRequest) -> BoltResponse:
        try:
            length = int(request.environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _error(400, "bad Content-Length")
        if length > MAX_BODY_BYTES:
            return _error(413, "request body too large")
        try:
            raw = request.get_body()
            bolt_request = BoltRequest(body=raw, query=request.query_string, headers=request.get_headers())
        except (ValueError, AttributeError, TypeError, UnicodeDecodeError) as exc:
            log.info("rejected a malformed request: %s", exc)
            return _error(400, "malformed request body")
        if not isinstance(bolt_request.body, dict):
            return _error(400, "malformed request body")
        return self.app.dispatch(bolt_request)


class SlackWsgiApp:
    """The whole HTTP surface of ``tanya serve`` as one WSGI application."""

    def __init__(
        self,
        app: App,
        database: Database,
        *,
        path: str = EVENTS_PATH,
        components: ComponentCheck | None = None,
    ) -> None:
        self.slack = TanyaRequestHandler(app, path=path)
        self.ops = OpsEndpoints(database, components)

    @property
    def database(self) -> Database:
        return self.ops.database

    @database.setter
    def database(self, database: Database) -> None:
        self.ops.database = database

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.ops.handles(environ):
            return self.ops(environ, start_response)
        return self.slack(environ, start_response)


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # stdlib signature
        log.debug("%s %s", self.address_string(), format % args)


class HttpServer:
    """The HTTP endpoint. The port is bound on construction, so a port in use is reported before the
    models are loaded; requests are served once ``start`` hands over the application."""

    def __init__(self, host: str, port: int) -> None:
        try:
            self.server = make_server(
                host, port, _not_ready, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
            )
        except OSError as exc:
            raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        self.host, self.port = self.server.server_address[:2]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, wsgi_app: WsgiApp) -> HttpServer:
        self.server.set_app(wsgi_app)
        self._thread = threading.Thread(target=self.server.serve_forever, name="tanya-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=10)
        self.server.server_close()


def _not_ready(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]
