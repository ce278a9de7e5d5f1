"""``tanya serve``: wire the service, the Bolt app and the job poller, then run one transport.

Socket Mode when ``SLACK_APP_TOKEN`` is set, otherwise HTTP on ``--host``/``--port``. The models are
loaded before the first event is accepted (until then the port answers 503, ``/healthz`` excepted): the
first question should not pay for start-up, and two questions arriving together must not load the
model twice. Tests and the benchmark use
``build_runtime`` and ``start_http`` directly — the same code path, without blocking.

HTTP mode answers ``/healthz``, ``/readyz`` and ``/metrics`` on its own port; with
``TANYA_METRICS_PORT`` set (the only way in Socket Mode, where nothing else listens) they are also
served alone on that port (``start_ops``).
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from slack_bolt import App
from slack_bolt.error import BoltError
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.service import InputError, Tanya
from bot.settings import Settings
from bot.slack.app import build_app
from bot.slack.asgi import EVENTS_PATH, SlackAsgiApp
from bot.slack.client import api_base_url, make_web_client
from bot.slack.context import SlackContext
from bot.slack.jobs import JobStatusPoller
from bot.slack.ops import OpsEndpoints
from bot.slack.readiness import component_status
from bot.slack.server import HttpServer
from bot.slack.socket_mode import connect_socket_mode

log = logging.getLogger(__name__)


@dataclass
class SlackRuntime:
    """A built Slack app and what runs beside it, ready to start in HTTP or Socket Mode."""

    ctx: SlackContext
    app: App
    poller: JobStatusPoller
    socket_mode: bool

    @property
    def service(self) -> Tanya:
        return self.ctx.service

    def close(self, *, wait: bool = True) -> None:
        self.poller.stop()
        self.ctx.close(wait=wait)


def check_settings(settings: Settings) -> None:
    """Fail in one line, before anything starts, on a configuration Slack would reject later."""
    if not settings.slack_bot_token:
        raise InputError(
            "SLACK_BOT_TOKEN is not set: copy the Bot User OAuth Token (xoxb-…) from the app's page."
        )
    if settings.slack_app_token:
        if not settings.slack_app_token.get_secret_value().startswith("xapp-"):
            raise InputError("SLACK_APP_TOKEN must be an app-level token (xapp-…) with connections:write.")
    elif not settings.slack_signing_secret:
        raise InputError(
            "SLACK_SIGNING_SECRET is not set: HTTP mode needs it to verify requests "
            "(or set SLACK_APP_TOKEN to use Socket Mode)."
        )


def connect_app(ctx: SlackContext, *, socket_mode: bool, listener_executor: Executor | None) -> App:
    """Build the Bolt app, which checks the token with ``auth.test``: a wrong token or an unreachable
    Slack stops start-up here, in one line, before the models are loaded."""
    try:
        return build_app(ctx, socket_mode=socket_mode, listener_executor=listener_executor)
    except BoltError as exc:
        cause = exc.__cause__ or exc.__context__
        code = cause.response.get("error") if isinstance(cause, SlackApiError) else None
        raise InputError(
            f"Slack did not accept SLACK_BOT_TOKEN ({code or exc}): copy the Bot User OAuth Token again."
        ) from exc
    except (OSError, SlackClientError) as exc:
        raise InputError(f"cannot reach Slack at {api_base_url(ctx.settings)}: {exc}") from exc


def default_answer_workers(settings: Settings) -> int:
    """One answer at a time on the bundled CPU model (parallel answers only slow each other down);
    a few at once against a generation server, which batches them."""
    return 4 if settings.generator else 1


def build_runtime(
    settings: Settings,
    service: Tanya | None = None,
    *,
    job_poll_seconds: float = 10.0,
    stream_interval: float = 1.0,
    warm_up: bool = True,
    listener_executor: Executor | None = None,
) -> SlackRuntime:
    check_settings(settings)
    service = service or Tanya(settings)
    client = make_web_client(settings, retry_deadline=settings.slack_retry_seconds)
    ctx = SlackContext(
        settings=settings,
        service=service,
        client=client,
        answer_workers=default_answer_workers(settings),
        stream_interval=stream_interval,
    )
    socket_mode = bool(settings.slack_app_token)
    app = connect_app(ctx, socket_mode=socket_mode, listener_executor=listener_executor)
    database = service.database
    if warm_up:
        _ = service.rag  # loads the embedder and the generator now, once
    generator = service.generator
    if hasattr(generator, "between_tokens"):  # a local model shares this process's cores and interpreter
        generator.between_tokens = ctx.acks.wait
    poller = JobStatusPoller(database, client, interval=job_poll_seconds)
    return SlackRuntime(ctx=ctx, app=app, poller=poller, socket_mode=socket_mode)


def freeze_loaded_objects() -> int:
    """Leave what start-up loaded out of the garbage collector's full passes; returns how many objects.

    The models, tokenizers and libraries are over half a million objects that live as long as the
    process. A full collection walks all of them with the interpreter lock held, about 260 ms on a
    small machine, and every acknowledgement in flight waits for it: one burst of @mentions measured
    285 ms for all 50 instead of about 25. Frozen, they are never walked; what is created later still is.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def start_http(
    runtime: SlackRuntime, host: str, port: int, *, server: HttpServer | None = None
) -> HttpServer:
    """Serve the runtime over HTTP (on ``server`` if the port was bound already) and start the poller."""
    server = server or HttpServer(host, port)
    ops = OpsEndpoints(runtime.ctx.database, _components(runtime))
    server.start(SlackAsgiApp(runtime.app, ops, acks=runtime.ctx.acks))
    runtime.poller.start()
    runtime.ctx.start_background()
    return server


def start_ops(runtime: SlackRuntime, host: str, port: int, *, server: HttpServer | None = None) -> HttpServer:
    """Serve only ``/healthz``, ``/readyz`` and ``/metrics`` (on ``server`` if the port was bound already)."""
    server = server or HttpServer(host, port)
    return server.start(SlackAsgiApp(None, OpsEndpoints(runtime.ctx.database, _components(runtime))))


def _components(runtime: SlackRuntime) -> Callable[[], dict[str, str]]:
    return lambda: component_status(runtime.service)


class _StoppedWhileStarting(BaseException):
    """SIGTERM before tanya was up: abandon the start-up (the ``finally`` blocks release the ports)."""


class _StopSignal:
    """SIGTERM (an orchestrator's stop) ends ``tanya serve`` like Ctrl-C does, from the moment it starts.

    Installed before anything loads, so a stop that arrives during start-up, or just after the port
    starts answering, is a clean exit rather than death by the default handler.
    """

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.running = False
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, *_: object) -> None:
        self.requested.set()
        if not self.running:
            raise _StoppedWhileStarting

    def finish_gracefully(self) -> None:
        """From now on a stop is not an abandoned start-up: it is noted, and :meth:`wait` returns at once."""
        self.running = True

    def wait(self) -> None:
        self.running = True
        try:
            while not self.requested.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass


def serve(
    settings: Settings,
    *,
    host: str = "0.0.0.0",
    port: int = 3000,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Run until SIGINT/SIGTERM; answers already being written are finished before exiting."""
    check_settings(settings)
    stop = _StopSignal()
    try:
        _serve(settings, host, port, on_ready, stop)
    except _StoppedWhileStarting:
        log.info("stopped during start-up")


def _serve(
    settings: Settings,
    host: str,
    port: int,
    on_ready: Callable[[str], None] | None,
    stop: _StopSignal,
) -> None:
    # Both ports are bound before the models load, so a port in use is reported at once.
    server = None if settings.slack_app_token else HttpServer(host, port)
    ops = None
    try:
        if settings.metrics_port:
            ops = HttpServer(settings.metrics_host, settings.metrics_port)
        runtime = build_runtime(settings)
        log.debug("%d start-up objects left out of garbage collection", freeze_loaded_objects())
    except BaseException:
        for bound in (server, ops):
            if bound is not None:
                bound.stop()
        raise
    try:
        metrics_note = ""
        if ops is not None:
            start_ops(runtime, settings.metrics_host, settings.metrics_port, server=ops)
            metrics_note = f" (metrics: {ops.url}/metrics)"
        if runtime.socket_mode:
            token = settings.slack_app_token.get_secret_value()  # type: ignore[union-attr]
            handler = connect_socket_mode(runtime.app, token)
            stop.finish_gracefully()
            runtime.poller.start()
            runtime.ctx.start_background()
            if on_ready:
                on_ready(f"connected to Slack in Socket Mode{metrics_note}")
            try:
                stop.wait()
            finally:
                handler.close()
        else:
            # From the moment the port answers events, a stop lets the start-up finish, then drains.
            stop.finish_gracefully()
            server = start_http(runtime, host, port, server=server)
            if on_ready:
                on_ready(f"listening on {server.url}{EVENTS_PATH} (health: {server.url}/healthz)")
            stop.wait()
    finally:
        for bound in (server, ops):  # no new events first; then the answers in flight are finished
            if bound is not None:
                bound.stop()
        runtime.close()
