"""Posting a training run's report to Slack: the plot as a file, the summary as its comment.

Each run leaves ``report.png`` and ``summary.md`` next to its adapter (see ``alignment.report``). The
Slack side calls ``post_run_report`` after a job ends, with the admin who asked for it (a DM) or the
channel the job names. ``files_upload_v2`` is Slack's current upload flow (get an upload URL, send the
bytes, complete the upload into a channel); the old ``files.upload`` method is retired.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slack_sdk import WebClient

PLOT_FILE = "report.png"
SUMMARY_MD = "summary.md"
SUMMARY_JSON = "summary.json"
# Slack shows at most this much of an initial comment comfortably; the full text is in summary.md.
MAX_COMMENT_CHARS = 3500


def _slack_markdown(markdown: str) -> str:
    """GitHub-style markdown as Slack mrkdwn: bold with single asterisks, tables as preformatted text."""
    lines = []
    in_table = False
    for line in markdown.splitlines():
        if line.startswith("|"):
            if not in_table:
                lines.append("```")
                in_table = True
            lines.append(line)
            continue
        if in_table:
            lines.append("```")
            in_table = False
        if line.startswith("#"):
            line = f"*{line.lstrip('#').strip()}*"
        lines.append(line.replace("**", "*"))
    if in_table:
        lines.append("```")
    text = "\n".join(lines).strip()
    return text if len(text) <= MAX_COMMENT_CHARS else text[: MAX_COMMENT_CHARS - 1] + "…"


def report_comment(report_dir: Path) -> str:
    summary = report_dir / SUMMARY_MD
    if summary.is_file():
        return _slack_markdown(summary.read_text(encoding="utf-8"))
    return f"Training report for {report_dir.name}"


def post_run_report(
    client: WebClient,
    report_dir: Path,
    *,
    channel: str | None = None,
    user: str | None = None,
    thread_ts: str | None = None,
) -> dict[str, Any]:
    """Upload ``report.png`` with the summary as its comment to ``channel``, or to a DM with ``user``.

    Returns the Slack API response data. Raises ``FileNotFoundError`` when the run left no plot, and
    ``slack_sdk.errors.SlackApiError`` when Slack refuses the upload.
    """
    if (channel is None) == (user is None):
        raise ValueError("give exactly one of channel or user")
    report_dir = Path(report_dir)
    plot = report_dir / PLOT_FILE
    if not plot.is_file():
        raise FileNotFoundError(plot)
    if user is not None:
        channel = client.conversations_open(users=user)["channel"]["id"]
    title = f"tanya training report: {report_dir.name}"
    summary_json = report_dir / SUMMARY_JSON
    if summary_json.is_file():
        outcome = json.loads(summary_json.read_text(encoding="utf-8")).get("outcome")
        if outcome:
            title += f" ({outcome})"
    response = client.files_upload_v2(
        channel=channel,
        file=str(plot),
        filename=f"{report_dir.name}.png",
        title=title,
        initial_comment=report_comment(report_dir),
        thread_ts=thread_ts,
    )
    return dict(response.data) if isinstance(response.data, dict) else {"ok": True}
