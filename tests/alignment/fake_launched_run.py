"""Stands in for `<launcher> -m bot.train_launch --job-id N --result PATH` in the worker's tests.

    python fake_launched_run.py MODE -m bot.train_launch --job-id N --result PATH

MODE `ok` reports a stage, waits for the file named by TANYA_TEST_RELEASE (when set) and writes an
outcome; `fail` prints a traceback's last line and exits 3; `silent` exits 0 without an outcome;
`hang` writes its pid to TANYA_TEST_PIDFILE and waits (up to two minutes) to be stopped.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from alignment.launch import progress_line, write_outcome
from alignment.pipeline import PROMOTED, RunOutcome


def main() -> int:
    mode, args = sys.argv[1], sys.argv[2:]
    job_id = int(args[args.index("--job-id") + 1])
    result = Path(args[args.index("--result") + 1])
    print(f"starting job {job_id}", flush=True)
    if mode == "fail":
        print("Traceback (most recent call last):", file=sys.stderr)
        print("RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB", file=sys.stderr, flush=True)
        return 3
    if mode == "silent":
        return 0
    if mode == "hang":
        Path(os.environ["TANYA_TEST_PIDFILE"]).write_text(str(os.getpid()))
        threading.Event().wait(120)  # a stand-in for training; the test kills the worker meanwhile
        return 4
    print(progress_line({"stage": "sft", "event": "begin", "max_steps": 4}), flush=True)
    release = os.environ.get("TANYA_TEST_RELEASE")
    deadline = time.monotonic() + 60
    while release and not Path(release).exists() and time.monotonic() < deadline:
        threading.Event().wait(0.02)  # the test creates the file once it has seen the progress
    outcome = RunOutcome(
        PROMOTED,
        f"Adapter tanya-job{job_id} is now active.",
        adapter_name=f"tanya-job{job_id}",
        adapter_path=Path(f"/adapters/tanya-job{job_id}"),
        metrics={"gate": {"promote": True}},
        lineage={"train": {"votes": [1, 2]}},
    )
    write_outcome(outcome, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
