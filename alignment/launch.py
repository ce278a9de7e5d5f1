"""Running a training job in a launched subprocess (`accelerate launch …`), and what passes between them.

A worker that trains in its own process cannot spread one run over several GPUs: that takes one process
per GPU, started together by a launcher. So the worker can instead start the launcher for each job and
wait. The worker keeps doing what it always does around a run (the heartbeat, the job's status, its
error), and the launched run's main process reports to it over two channels:

* progress: one stdout line per stage or step event, `tanya-progress <json>`; every other output line
  is passed on to the worker's log;
* the outcome: a JSON file at the path given with `--result`, written when the run ends.

A launched run that exits non-zero, or ends without writing its outcome, fails the job with the exit
status and its last lines of output.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from alignment.pipeline import RunOutcome

log = logging.getLogger(__name__)

PROGRESS_PREFIX = "tanya-progress "

# (job id, path for the outcome) → the command line of one launched run.
CommandBuilder = Callable[[int, Path], list[str]]

# Started in front of the launcher on Linux: asks the kernel to send it SIGTERM when the worker dies,
# even by SIGKILL (the setting survives exec), and then becomes the launcher, which passes the signal on
# to its processes. Without it a killed worker would leave a run behind that could still register an
# adapter after its job was failed. (A `preexec_fn` would do the same but is unsafe with the worker's
# heartbeat thread running.)
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys; "
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM); "  # 1 = PR_SET_PDEATHSIG
    "os.execvp(sys.argv[1], sys.argv[1:])"
)


class LaunchError(RuntimeError):
    """The launched run failed; the message names its exit status and its last error line."""


def progress_line(record: dict[str, Any]) -> str:
    """The stdout line a launched run prints for one progress record."""
    return PROGRESS_PREFIX + json.dumps(record, default=str, ensure_ascii=False)


def progress_printer(stream: TextIO) -> Callable[[dict[str, Any]], None]:
    """A stage hook for the launched run's main process: progress records as lines on `stream`."""

    def emit(record: dict[str, Any]) -> None:
        keep = {key: record[key] for key in ("stage", "step", "max_steps", "event") if key in record}
        print(progress_line(keep), file=stream, flush=True)

    return emit


def write_outcome(outcome: RunOutcome, path: Path) -> None:
    """Writes the outcome for the worker, atomically (a half-written file is never read)."""
    data = {**outcome.as_dict(), "lineage": outcome.lineage}
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, default=str, ensure_ascii=False), encoding="utf-8")
    os.replace(partial, path)


def read_outcome(path: Path) -> RunOutcome:
    data = json.loads(path.read_text(encoding="utf-8"))
    return RunOutcome(
        status=data["status"],
        message=data["message"],
        adapter_id=data.get("adapter_id"),
        adapter_name=data.get("adapter_name"),
        adapter_path=Path(data["adapter_path"]) if data.get("adapter_path") else None,
        metrics=data.get("metrics") or {},
        lineage=data.get("lineage") or {},
    )


def launched_runner(
    command: CommandBuilder, *, env: Mapping[str, str] | None = None, tail_lines: int = 30
) -> Callable[[Any, Callable[[dict[str, Any]], None]], RunOutcome]:
    """
    A `Worker` runner that runs each job as `command(job_id, outcome_path)` and waits for it.

    :param env: the subprocess's environment; None: this process's (the launched run reads the same
        settings the worker was started with).
    :param tail_lines: lines of output kept for the error of a failed run.
    """

    def run(job: Any, hook: Callable[[dict[str, Any]], None]) -> RunOutcome:
        with tempfile.TemporaryDirectory(prefix="tanya-launch-") as scratch:
            result = Path(scratch) / "outcome.json"
            argv = command(int(job.id), result)
            log.info("training job %s: launching %s", job.id, " ".join(argv))
            if sys.platform == "linux":
                argv = [sys.executable, "-c", _DIE_WITH_PARENT, *argv]
            tail: deque[str] = deque(maxlen=tail_lines)
            process = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                errors="replace",
                env=dict(env) if env is not None else None,
                start_new_session=True,  # its own process group: stopping the job stops every rank
            )
            try:
                assert process.stdout is not None
                for line in process.stdout:
                    _route(line.rstrip("\n"), job.id, hook, tail)
                status = process.wait()
            except BaseException:
                _stop(process)
                raise
            if status != 0:
                raise LaunchError(
                    f"training subprocess exited with status {status}: {_last_error(tail)}\n"
                    + "\n".join(tail)
                )
            if not result.is_file():
                raise LaunchError("training subprocess ended without writing its outcome\n" + "\n".join(tail))
            return read_outcome(result)

    return run


def _route(line: str, job_id: Any, hook: Callable[[dict[str, Any]], None], tail: deque[str]) -> None:
    if line.startswith(PROGRESS_PREFIX):
        try:
            record = json.loads(line[len(PROGRESS_PREFIX) :])
        except ValueError:
            tail.append(line)
            return
        hook(record)
        return
    if line.strip():
        tail.append(line)
        log.info("training job %s: %s", job_id, line)


def _last_error(tail: deque[str]) -> str:
    for line in reversed(tail):
        if "Error" in line or "error" in line or "Exception" in line:
            return line.strip()
    return tail[-1].strip() if tail else "no output"


def _stop(process: subprocess.Popen[str]) -> None:
    """Ends the launched run and every process it started (they share its process group)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
