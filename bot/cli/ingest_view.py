"""The progress bar and summary of ``tanya ingest``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bot.cli import console as out
from bot.service import Tanya


def run_ingest(service: Tanya, paths: Sequence[Path]) -> Any:
    """Ingest with a live progress bar; skipped files are listed with their reasons, as they happen."""
    progress = Progress(
        TextColumn("[bold]ingest[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}", style="dim"),
        console=out.errors,
        transient=True,
        disable=not out.errors.is_terminal,
    )
    task = progress.add_task("", total=None)

    def on_event(event: Any) -> None:
        if event.kind == "start":
            progress.update(task, total=event.total)
        elif event.kind == "file":
            name = event.path.name if event.path else ""
            progress.update(task, completed=event.done, description=name)
            if event.status == "skipped":
                progress.console.print(f"[yellow]skipped[/] {event.path}: {event.reason}", soft_wrap=True)

    with progress:
        report = service.ingest(list(paths), progress=on_event)

    out.console.print(
        f"[bold]{report.files_indexed}[/] files indexed, [bold]{report.files_unchanged}[/] unchanged, "
        f"[bold]{len(report.files_skipped)}[/] skipped · [bold]{report.chunks_written}[/] chunks written, "
        f"{report.chunks_deleted} removed · {report.seconds:.1f}s"
    )
    return report
