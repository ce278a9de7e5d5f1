"""Posting training-job progress back to the conversation that asked for it.

The worker only writes job rows; this poller, running inside ``tanya serve``, reads them and posts each
status change once to the job's ``notify_channel``. "Once" holds across bot replicas because each
notice first claims a ``job:<id>:<status>`` key in ``processed_events``. Jobs that changed long ago
(before this process could have seen them) are not announced, so a restart does not replay history.
A run that finished with a report (plot and summary next to its adapter) gets it uploaded into the
thread of its notice. The same loop prunes old delivery claims, which only need to outlive Slack's
retry window.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from slack_sdk import WebClient

from bot.slack.once import claim, job_status_key
from bot.slack.reports import PLOT_FILE, post_run_report
from bot.slack.text import escape
from storage import Database, JobStatus, TrainingJob
from storage.events import forget_events_before
from storage.jobs import recent_jobs
from storage.models import utcnow

log = logging.getLogger(__name__)

FRESH_FOR = timedelta(hours=6)
PRUNE_EVERY_SECONDS = 3600.0


def _changed_at(job: TrainingJob) -> datetime:
    return job.finished_at or job.heartbeat_at or job.started_at or job.created_at


def describe(job: TrainingJob) -> str:
    status = job.status
    if status is JobStatus.running:
        return f":gear: Training job #{job.id} has started" + (
            f" on `{escape(job.worker)}`." if job.worker else "."
        )
    if status is JobStatus.succeeded:
        metrics = job.metrics if isinstance(job.metrics, dict) else {}
        message = escape(str(metrics.get("message") or "").strip()[:500])
        if not message and job.adapter is not None:
            message = f"adapter `{escape(job.adapter.name)}` is {job.adapter.status.value}."
        return f":white_check_mark: Training job #{job.id} finished" + (f": {message}" if message else ".")
    if status is JobStatus.failed:
        reason = (job.error or "no reason given").splitlines()[0][:300]
        return f":x: Training job #{job.id} failed: {escape(reason)}"
    if status is JobStatus.cancelled:
        return f":no_entry_sign: Training job #{job.id} was cancelled."
    return f"Training job #{job.id} is {status.value}."


def report_folder(job: TrainingJob) -> Path | None:
    """Where a finished run left its plot and summary (next to its adapter), if it did."""
    if job.status is not JobStatus.succeeded or job.adapter is None:
        return None
    folder = Path(job.adapter.path)
    return folder if (folder / PLOT_FILE).is_file() else None


@dataclass(frozen=True)
class Notice:
    """A finished training job to announce in the channel where it was asked for."""

    job_id: int
    status: str
    channel: str
    requested_by: str | None
    text: str
    report: Path | None


class JobStatusPoller:
    """Posts the outcome of training jobs started from Slack when they finish (any replica may post it)."""

    def __init__(self, database: Database, client: WebClient, *, interval: float = 10.0) -> None:
        self.database = database
        self.client = client
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune = 0.0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="tanya-job-poller", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def poll_once(self) -> int:
        """Post every unreported status change (and a finished run's report); returns how many."""
        now = utcnow()
        with self.database.session() as session:
            notices = [
                Notice(
                    job.id,
                    job.status.value,
                    job.notify_channel,
                    job.requested_by,
                    describe(job),
                    report_folder(job),
                )
                for job in recent_jobs(session, limit=25)
                if job.notify_channel
                and job.status is not JobStatus.queued
                and now - _changed_at(job) <= FRESH_FOR
            ]
        posted = 0
        for notice in notices:
            if not claim(self.database, job_status_key(notice.job_id, notice.status), "job_status"):
                continue
            channel, ts = notice.channel, self._post(notice.channel, notice.text)
            if ts is None and notice.requested_by:
                channel, ts = notice.requested_by, self._post(notice.requested_by, notice.text)
            if ts is None:
                continue
            posted += 1
            if notice.report is not None:
                self._upload_report(notice.report, channel, ts)
        return posted

    def _post(self, channel: str, text: str) -> str | None:
        try:
            return str(self.client.chat_postMessage(channel=channel, text=text)["ts"])
        except Exception as exc:  # e.g. not_in_channel: the requester is told directly
            log.warning("could not post a job update to %s: %s", channel, exc)
            return None

    def _upload_report(self, folder: Path, channel: str, thread_ts: str) -> None:
        """The run's plot and summary, in the thread of its notice so the channel stays tidy."""
        try:
            post_run_report(self.client, folder, channel=channel, thread_ts=thread_ts)
        except Exception as exc:
            log.warning("could not upload the training report from %s: %s", folder, exc)

    def _prune(self) -> None:
        if time.monotonic() - self._last_prune < PRUNE_EVERY_SECONDS:
            return
        self._last_prune = time.monotonic()
        with self.database.session() as session:
            removed = forget_events_before(session)
        if removed:
            log.info("forgot %d old delivery claims", removed)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
                self._prune()
            except Exception:
                log.exception("job status poll failed; retrying in %.0fs", self.interval)
            self._stop.wait(self.interval)
