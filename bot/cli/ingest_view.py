"""The progress bar and summary of ``tanya ingest``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from bot.cli import console as out
from bot.service import Tanya

# Without a terminal (a log file, CI) the bar is off; a line this often shows the ingest is alive.
PLAIN_PROGRESS_EVERY_S = 30.0


def run_ingest(service: Tanya, paths: Sequence[Path], *, clock: Any = time.monotonic) -> Any:
    """
    Ingest with a live progress bar (files, chunks, chunks/s, time left); skipped files are listed
    with their reasons as they happen.
    """
    from retrieval.ingestion.progress import IngestMeter  # heavy

    meter = IngestMeter(clock=clock)
    progress = Progress(
        TextColumn("[bold]ingest[/]"),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.fields[name]}", style="dim"),
        console=out.errors,
        transient=True,
        disable=not out.errors.is_terminal,
    )
    task = progress.add_task("", total=None, name="")
    last_line = clock()

    def on_event(event: Any) -> None:
        nonlocal last_line
        meter.update(event)
        if event.kind == "start":
            progress.update(task, total=max(meter.bytes_total, 1), description=meter.summary())
            return
        if event.kind != "file":
            return
        name = event.path.name if event.path else ""
        progress.update(task, completed=meter.bytes_done, description=meter.summary(), name=name)
        if event.status == "skipped":
            progress.console.print(f"[yellow]skipped[/] {event.path}: {event.reason}", soft_wrap=True)
        if progress.disable and clock() - last_line >= PLAIN_PROGRESS_EVERY_S:
            last_line = clock()
            out.errors.print(f"ingest: {meter.summary()}", soft_wrap=True, highlight=False)

    with progress:
        report = service.ingest(list(paths), progress=on_event)

    rate = f" · {meter.chunks_per_second:.1f} chunks/s" if meter.chunks_per_second is not None else ""
    out.console.print(
        f"[bold]{report.files_indexed}[/] files indexed, [bold]{report.files_unchanged}[/] unchanged, "
        f"[bold]{len(report.files_skipped)}[/] skipped · [bold]{report.chunks_written}[/] chunks written, "
        f"{report.chunks_deleted} removed · {report.seconds:.1f}s{rate}"
    )
    return report
