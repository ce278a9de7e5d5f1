"""Peak resident memory of one ``tanya ask`` on the embedded default.

    .venv/bin/python benchmarks/ask_memory.py

Ingests ``docs/user`` into a temporary data directory, then runs ``tanya ask`` in a child process
(so the number includes imports, the embedder, the index and the language model) and reads the
child's peak RSS from ``getrusage``. Goal: under 2 GB. Writes ``benchmarks/results/ask_memory.json``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result

REPO = Path(__file__).resolve().parent.parent
QUESTION = "How do I rate an answer, and what happens to my vote?"


# A wrapper process with exactly one child, so RUSAGE_CHILDREN is that child's peak alone.
WRAPPER = (
    "import resource, subprocess, sys; "
    "subprocess.run(sys.argv[1:], check=True, capture_output=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def run_tanya(home: Path, *args: str) -> tuple[float, int]:
    """Seconds and peak RSS (KiB) of one ``tanya`` invocation."""
    env = {**os.environ, "TANYA_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    output = subprocess.run(
        [sys.executable, "-c", WRAPPER, sys.executable, "-m", "bot", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return time.perf_counter() - started, int(output.strip().splitlines()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        _, ingest_kib = run_tanya(home, "ingest", str(REPO / "docs" / "user"))
        # The first ask converts the bundled model to safetensors; measure the steady state after it.
        first_seconds, first_kib = run_tanya(home, "ask", "--json", QUESTION)
        seconds, peak_kib = run_tanya(home, "ask", "--json", QUESTION)
    result = {
        "question": QUESTION,
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "first_ask_peak_rss_mib_including_model_conversion": round(first_kib / 1024, 1),
        "ingest_peak_rss_mib": round(ingest_kib / 1024, 1),
        "goal_mib": 2048,
        "meets_goal": peak_kib / 1024 < 2048,
        "first_ask_seconds_including_model_conversion": round(first_seconds, 2),
        "ask_seconds": round(seconds, 2),
    }
    path = write_result("ask_memory", result)
    print(path.read_text())


if __name__ == "__main__":
    main()
