"""The operator's endpoints: liveness, readiness and Prometheus metrics, as one small WSGI app.

* ``GET /healthz`` — the process is up and serving (liveness): always 200 once it answers at all.
* ``GET /readyz`` — tanya could answer a question now (readiness): 200 when the database, the document
  store and the generator all answer, 503 with what is wrong otherwise.
* ``GET /metrics`` — every metric of ``bot.metrics`` in Prometheus' text format.

In HTTP mode these are answered in front of Bolt, so they need no Slack signature (an orchestrator or
Prometheus cannot sign) and never reach a listener. In Socket Mode, where nothing else listens, the same
app can be served alone on ``TANYA_METRICS_PORT``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from bot import metrics
from storage import Database

log = logging.getLogger(__name__)

PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
ComponentCheck = Callable[[], dict[str, str]]


class OpsEndpoints:
    def __init__(self, database: Database, components: ComponentCheck | None = None) -> None:
        self.database = database
        self.components = components

    @staticmethod
    def handles(environ: dict[str, Any]) -> bool:
        return environ.get("REQUEST_METHOD") in ("GET", "HEAD") and environ.get("PATH_INFO", "") in PATHS

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not self.handles(environ):
            return _reply(start_response, "404 Not Found", b'{"status": "not found"}', "application/json")
        path = environ["PATH_INFO"]
        if path == "/metrics":
            payload, content_type = metrics.exposition()
            return _reply(start_response, "200 OK", payload, content_type)
        status, body = self.readiness() if path == "/readyz" else ("200 OK", {"status": "ok"})
        return _reply(start_response, status, json.dumps(body).encode(), "application/json")

    def readiness(self) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {}
        try:
            self.database.check()
            body["database"] = "ok"
        except Exception as exc:
            body["database"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if self.components is not None:
            try:
                body.update(self.components())
            except Exception as exc:  # a check that breaks must read as "not ready", not as a 500
                log.warning("readiness check failed: %s", exc)
                body["components"] = f"check failed: {exc}"
        ready = all(value == "ok" for value in body.values())
        body = {"status": "ok" if ready else "unavailable", **body}
        return ("200 OK" if ready else "503 Service Unavailable"), body


def _reply(
    start_response: Callable[..., Any], status: str, payload: bytes, content_type: str
) -> Iterable[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(payload)))])
    return [payload]
