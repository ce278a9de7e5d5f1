"""Rate and time left of an ingest, from its events: what a progress display shows."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from retrieval.ingestion.ingest import IngestEvent


@dataclass
class IngestMeter:
    """
    Follows `IngestEvent`s and says how far an ingest is and how long the rest should take.

    The rate is measured from the moment the first batch starts embedding, so the seconds spent
    loading the model do not count as slow embedding; time left is the bytes still to read at the
    bytes-per-second of the files embedded so far (unchanged and skipped files cost next to nothing
    and are left out of the rate).
    """

    clock: Callable[[], float] = field(default=time.monotonic, metadata={"help": "Seconds, monotonic."})
    files_total: int = 0
    files_done: int = 0
    bytes_total: int = 0
    bytes_done: int = 0
    chunks: int = 0
    _started: float | None = None  # when the first batch began embedding (the model loaded)
    _latest: float | None = None
    _embedded_chunks: int = 0
    _embedded_bytes: int = 0

    def update(self, event: IngestEvent) -> None:
        """Takes one event of the ingest."""
        if event.kind == "start":
            self.files_total, self.bytes_total = event.total, event.size
        elif event.kind == "batch" and self._started is None:
            self._started = self.clock()
        elif event.kind == "file":
            self.files_done = event.done
            self.bytes_done += event.size
            if event.status == "indexed":
                self.chunks += event.chunks
                self._embedded_chunks += event.chunks
                self._embedded_bytes += event.size
                self._latest = self.clock()

    @property
    def chunks_per_second(self) -> float | None:
        """Chunks embedded and written per second since the first batch; None until two batches."""
        rates = self._rates()
        return None if rates is None else rates[0]

    @property
    def seconds_left(self) -> float | None:
        """Estimated seconds until the last file is done; None while there is nothing to go on."""
        rates = self._rates()
        if rates is None or rates[1] <= 0:
            return None
        return max(0.0, self.bytes_total - self.bytes_done) / rates[1]

    def summary(self) -> str:
        """One line such as `12/40 files · 310 chunks · 15.2 chunks/s · about 3 min left`."""
        parts = [f"{self.files_done}/{self.files_total} files", f"{self.chunks} chunks"]
        rate, left = self.chunks_per_second, self.seconds_left
        if rate is not None:
            parts.append(f"{rate:.1f} chunks/s")
        if left is not None and self.files_done < self.files_total:
            parts.append(f"about {_duration(left)} left")
        return " · ".join(parts)

    def _rates(self) -> tuple[float, float] | None:
        if self._started is None or self._latest is None:
            return None
        seconds = self._latest - self._started
        if seconds <= 0:
            return None
        return self._embedded_chunks / seconds, self._embedded_bytes / seconds


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"
