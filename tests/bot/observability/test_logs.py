"""Log lines: one JSON object each in JSON mode, the context (event, answer, job) in both formats."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bot.observability.logs import JsonFormatter, TextFormatter, log_context
from bot.settings import Settings
from tests.conftest import REPO_ROOT


def _emit(formatter: logging.Formatter, emit) -> list[str]:  # type: ignore[no-untyped-def]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("tests.bot.observability.sample")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    return stream.getvalue().splitlines()


def test_json_lines_carry_the_context_extras_and_a_one_line_traceback() -> None:
    def emit(logger: logging.Logger) -> None:
        logger.warning("before any event")
        with log_context(event_id="Ev01", channel="C1"):
            with log_context(interaction_id=7):
                try:
                    raise ValueError("bad\nthing")
                except ValueError:
                    logger.exception("answer %s failed", 7, extra={"reference": "ab12"})
            logger.info("still in the event")
        logger.error("after it")

    lines = _emit(JsonFormatter(), emit)
    assert len(lines) == 3, "a traceback never adds lines"
    first, failed, after = (json.loads(line) for line in lines)
    assert set(first) == {"time", "level", "logger", "message"}
    assert first["time"].endswith("+00:00") and first["level"] == "WARNING"
    assert failed["message"] == "answer 7 failed" and failed["logger"] == "tests.bot.observability.sample"
    assert (failed["event_id"], failed["channel"], failed["interaction_id"]) == ("Ev01", "C1", 7)
    assert failed["reference"] == "ab12" and "ValueError: bad" in failed["exception"]
    assert "event_id" not in after, "the context ends with its block"


def test_the_context_stays_with_its_own_thread() -> None:
    inside = threading.Event()
    release = threading.Event()

    def worker() -> None:
        with log_context(event_id="EvOTHER"):
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=worker)
    thread.start()
    inside.wait(10)
    lines = _emit(JsonFormatter(), lambda logger: logger.warning("here"))
    release.set()
    thread.join()
    assert "event_id" not in json.loads(lines[0])


def test_text_lines_end_with_the_context() -> None:
    def emit(logger: logging.Logger) -> None:
        with log_context(event_id="Ev02", job_id=3):
            logger.warning("slow")

    assert _emit(TextFormatter(), emit) == [
        "WARNING tests.bot.observability.sample: slow [event_id=Ev02 job_id=3]"
    ]


def test_settings_read_the_format_and_level_case_insensitively(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANYA_LOG_FORMAT", "JSON")
    monkeypatch.setenv("TANYA_LOG_LEVEL", "debug")
    settings = Settings()
    assert (settings.log_format, settings.log_level) == ("json", "DEBUG")
    monkeypatch.setenv("TANYA_LOG_FORMAT", "xml")
    with pytest.raises(ValueError):
        Settings()


def test_a_cli_process_in_json_mode_writes_only_json_lines(tmp_path: Path) -> None:
    """Python warnings and the command's own notices go through logging too."""
    code = (
        "import logging, warnings\n"
        "from bot.cli.application import quiet_libraries, report_error, say\n"
        "quiet_libraries()\n"
        "say('starting')\n"
        "warnings.warn('something is deprecated')\n"
        "logging.getLogger('bot.x').info('an answer', extra={'interaction_id': 5})\n"
        "report_error('it broke')\n"
    )
    env = {"TANYA_LOG_FORMAT": "json", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert records[0]["message"] == "starting" and records[0]["level"] == "INFO", "INFO is JSON's default"
    [warning] = [record for record in records if record["logger"] == "py.warnings"]
    assert "something is deprecated" in warning["message"]
    assert any(record.get("interaction_id") == 5 for record in records)
    assert records[-1]["level"] == "ERROR" and records[-1]["message"] == "it broke"
