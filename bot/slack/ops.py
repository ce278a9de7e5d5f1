"""The operator's endpoints: liveness, readiness and Prometheus metrics, apart from any web framework.

* ``GET /healthz`` — the process is up and serving (liveness): always 200 once it answers at all.
* ``GET /readyz`` — tanya could answer a question now (readiness): 200 when the database, the document
  store and the generator all answer, 503 with what is wrong otherwise.
* ``GET /metrics`` — every metric of ``bot.observability.metrics`` in Prometheus' text format.

In HTTP mode these are answered in front of Bolt, so they need no Slack signature (an orchestrator or
Prometheus cannot sign) and never reach a listener. In Socket Mode, where nothing else listens, they
are served alone on ``TANYA_METRICS_PORT``. ``bot.slack.asgi`` puts them on the wire; the readiness
checks block on I/O, so it calls ``respond`` from a worker thread.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.observability import metrics
from storage import Database

log = logging.getLogger(__name__)

PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
ComponentCheck = Callable[[], dict[str, str]]


@dataclass(frozen=True)
class OpsReply:
    """One response of an operations endpoint."""

    status: int
    body: bytes
    content_type: str = "application/json"


class OpsEndpoints:
    """``/healthz``, ``/readyz`` and ``/metrics``, answered without touching Bolt."""

    def __init__(self, database: Database, components: ComponentCheck | None = None) -> None:
        self.database = database
        self.components = components

    @staticmethod
    def handles(method: str, path: str) -> bool:
        return method in ("GET", "HEAD") and path in PATHS

    def respond(self, path: str) -> OpsReply:
        if path not in PATHS:
            return OpsReply(404, b'{"status": "not found"}')
        if path == "/metrics":
            payload, content_type = metrics.exposition()
            return OpsReply(200, payload, content_type)
        status, body = self.readiness() if path == "/readyz" else (200, {"status": "ok"})
        return OpsReply(status, json.dumps(body).encode())

    def readiness(self) -> tuple[int, dict[str, Any]]:
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
        return (200 if ready else 503), body
