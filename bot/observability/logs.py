"""Log output: plain text for a terminal, or one JSON object per line for a log pipeline.

What a line is about — the Slack event, the answer (interaction), the channel, the training job — is
kept in a ``contextvars`` variable rather than threaded through every call: a listener binds it once
with ``log_context`` and every record emitted below it, from any module, carries it. Work handed to
another thread keeps it only when submitted through ``contextvars.copy_context().run`` (the answer pool
is), because executors do not copy context by themselves.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

CONTEXT_FIELDS = ("event_id", "interaction_id", "channel", "job_id")
LogFormat = Literal["text", "json"]

_context: ContextVar[dict[str, Any]] = ContextVar("tanya_log_context", default={})  # noqa: B039 - never mutated
_json_enabled = False

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is worth keeping.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Attach ``fields`` (None values are skipped) to every record logged inside the block."""
    added = {name: value for name, value in fields.items() if value is not None}
    token = _context.set({**_context.get(), **added})
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, Any]:
    return dict(_context.get())


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    found = current_context()
    for name, value in record.__dict__.items():
        if name not in _STANDARD and not name.startswith("_"):
            found[name] = value
    return found


class JsonFormatter(logging.Formatter):
    """One JSON object per record; tracebacks go into a field, so a record never spans two lines."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``LEVEL logger: message [event_id=… interaction_id=…]`` — the context, readably, at the end."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = {name: value for name, value in _fields(record).items() if name in CONTEXT_FIELDS}
        if not context:
            return text
        suffix = " ".join(f"{name}={value}" for name, value in context.items())
        first, newline, rest = text.partition("\n")
        return f"{first} [{suffix}]{newline}{rest}"


def configure_logging(log_format: LogFormat = "text", level: str | None = None) -> None:
    """Set up the root logger once, for a command-line process.

    The default level is WARNING for text (a terminal user wants quiet) and INFO for JSON (a log
    pipeline wants every answer's line). Like ``logging.basicConfig`` it leaves an already configured
    root logger alone, so a host application or a test runner keeps its own handlers.
    """
    global _json_enabled
    json_lines = log_format == "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    root = logging.getLogger()
    if root.handlers:
        return
    root.addHandler(handler)
    root.setLevel((level or ("INFO" if json_lines else "WARNING")).upper())
    _json_enabled = json_lines
    if json_lines:
        logging.captureWarnings(True)  # warnings.warn output becomes records, hence JSON too


def json_enabled() -> bool:
    """Whether this process writes JSON lines (then plain console messages are logged instead)."""
    return _json_enabled
