"""HTTP mode's server: uvicorn in a background thread of ``tanya serve``, on a port bound up front.

The port is bound and served as soon as ``tanya serve`` starts, before the models load: a port in use
is reported at once, and during a long start ``/healthz`` already answers (200, ``"starting"``) while
everything else gets 503 with ``Retry-After``, instead of connections hanging in the backlog. ``start``
then hands over the real application (``bot.slack.asgi``).

uvicorn picks httptools and uvloop when they are installed (they are dependencies of tanya) and falls
back to its pure-Python parser and asyncio elsewhere. It runs outside the main thread, so it installs no
signal handlers: ``tanya serve`` keeps SIGTERM for its own graceful stop. Any other ASGI server can host
``SlackAsgiApp`` instead.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn

from bot.service import InputError
from bot.slack.asgi import AsgiApp, Receive, Scope, Send, SlackAsgiApp, starting

log = logging.getLogger(__name__)

BACKLOG = 1024
START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0


class HttpServer:
    """The HTTP-mode server: uvicorn on a socket bound up front, run in a background thread."""

    def __init__(self, host: str, port: int) -> None:
        try:
            self.socket = socket.create_server((host, port), backlog=BACKLOG)
        except OSError as exc:
            raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        self.host, self.port = self.socket.getsockname()[:2]
        self.app: AsgiApp = starting
        config = uvicorn.Config(
            self._asgi,
            interface="asgi3",
            lifespan="off",
            proxy_headers=False,
            ws="none",
            log_config=None,  # tanya's logging is configured already; uvicorn's loggers propagate to it
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=STOP_TIMEOUT_SECONDS,
        )
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)  # no "Started server process" lines
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self.socket]}, name="tanya-http", daemon=True
        )
        self._thread.start()
        self._wait_until_serving()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, app: AsgiApp) -> HttpServer:
        """Serve ``app`` from now on; requests already in flight finish on what they started with."""
        self.app = app
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=STOP_TIMEOUT_SECONDS + 5)
        self.socket.close()
        if isinstance(self.app, SlackAsgiApp):
            self.app.close()

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.socket.close()
                raise InputError(f"the HTTP server on {self.host}:{self.port} did not start")
            time.sleep(0.005)
