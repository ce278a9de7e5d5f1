"""The ``/tanya`` slash command: ``help``, ``status``, ``stats``, ``adapters``, ``retrain``, ``rollback``.

Acknowledged at once (``help`` is answered in the acknowledgement itself); the rest runs lazily and
answers ephemerally through the command's ``response_url``. ``retrain`` and ``rollback`` change what
every user gets, so only admins may run them; a refusal queues nothing and says who can.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond

from alignment.registry import RegistryError, list_versions, rollback
from bot.slack.charts import helpful_share, vote_bars
from bot.slack.context import SlackContext
from bot.slack.text import escape, shorten
from storage.jobs import enqueue_job
from storage.stats import counts, daily_votes

log = logging.getLogger(__name__)

COMMAND = "/tanya"
HELP = (
    "*/tanya* — what I can do here:\n"
    "• `/tanya status` — documents, answers, votes and the active adapter\n"
    "• `/tanya stats` — feedback over the last two weeks\n"
    "• `/tanya adapters` — trained adapter versions\n"
    "• `/tanya retrain` — queue a training run on the feedback so far _(admins)_\n"
    "• `/tanya rollback` — go back to the previous adapter _(admins)_\n"
    "• `/tanya help` — this list\n"
    "Ask me anything by mentioning me in a channel or in a direct message; rate answers with 👍/👎."
)
# Where the data lives is for admins' eyes only.
INFRASTRUCTURE_KEYS = ("database", "document_store")
FAILED = "Sorry — that did not work because of a problem on my side. Please try again in a minute."


def subcommand(command: dict[str, Any]) -> str:
    words = (command.get("text") or "").strip().lower().split()
    return words[0] if words else "help"


class TanyaCommand:
    """The ``/tanya`` slash command: status for everyone, retrain and adapters for admins."""

    def __init__(self, ctx: SlackContext) -> None:
        self.ctx = ctx
        self.handlers: dict[str, Callable[[dict[str, Any]], str]] = {
            "status": self.status,
            "stats": self.stats,
            "adapters": self.adapters,
            "retrain": self.retrain,
            "rollback": self.rollback,
        }

    def acknowledge(self, ack: Ack, command: dict[str, Any]) -> None:
        name = subcommand(command)
        if name == "help":
            ack(text=HELP, response_type="ephemeral")
        elif name not in self.handlers:
            ack(text=f"I don't know `/tanya {name}`.\n\n{HELP}", response_type="ephemeral")
        else:
            ack()

    def run(self, command: dict[str, Any], respond: Respond) -> None:
        handler = self.handlers.get(subcommand(command))
        if handler is None:
            return
        try:
            text = handler(command)
        except Exception:
            log.exception("/tanya %s failed", subcommand(command))
            text = FAILED
        try:
            respond(text=text, response_type="ephemeral")
        except Exception as exc:
            log.warning("could not answer /tanya %s: %s", subcommand(command), exc)

    # -- subcommands ------------------------------------------------------------------------------

    def _refusal(self, what: str) -> str:
        return f"Only tanya admins can {what} — ask {self.ctx.admins.describe()}. Nothing was changed."

    def retrain(self, command: dict[str, Any]) -> str:
        user = command.get("user_id")
        if not self.ctx.admins.is_admin(user):
            return self._refusal("start a training run")
        with self.ctx.database.session() as session:
            job, created = enqueue_job(
                session,
                requested_by=user or "unknown",
                reason="slack",
                notify_channel=command.get("channel_id"),
            )
            job_id, status, channel = job.id, job.status.value, job.notify_channel
        if created:
            return f"Queued training job #{job_id}. I'll post its progress in this conversation."
        where = f" in <#{channel}>" if channel else ""
        return f"Training job #{job_id} is already {status}; I'll post its progress{where}. Nothing new was queued."

    def rollback(self, command: dict[str, Any]) -> str:
        if not self.ctx.admins.is_admin(command.get("user_id")):
            return self._refusal("roll back the adapter")
        try:
            with self.ctx.database.session() as session:
                result = rollback(session)
        except RegistryError as exc:
            return f"Nothing to roll back: {escape(str(exc))}."
        log.info(
            "%s rolled back %s (now active: %s)",
            command.get("user_id"),
            result.rolled_back,
            result.now_active,
        )
        restored, retired = escape(result.now_active or ""), escape(result.rolled_back)
        if result.now_active:
            return (
                f"Rolled back: `{restored}` is active again and `{retired}` is out of service. "
                "The next answer uses it."
            )
        return f"Rolled back: `{retired}` is out of service; the base model answers again."

    def adapters(self, command: dict[str, Any]) -> str:
        with self.ctx.database.session() as session:
            versions = list_versions(session)[:15]
            lines = []
            for version in versions:
                marker = "▶" if version.status.value == "active" else "•"
                when = (version.activated_at or version.created_at).strftime("%Y-%m-%d %H:%M")
                gate = (version.metrics or {}).get("gate") if isinstance(version.metrics, dict) else None
                reason = gate.get("reason") if isinstance(gate, dict) else None
                extra = f" · {escape(shorten(str(reason), 120))}" if reason else ""
                lines.append(
                    f"{marker} `{escape(version.name)}` — {version.status.value} · {when} UTC{extra}"
                )
        if not lines:
            return "No adapters have been trained yet: answers come from the base model. (`/tanya retrain`)"
        return "*Adapter versions* (newest first)\n" + "\n".join(lines)

    def stats(self, command: dict[str, Any]) -> str:
        with self.ctx.database.session() as session:
            totals = counts(session)
            days = daily_votes(session, days=14)
        return (
            f"*Feedback* — {totals.interactions} answers, {helpful_share(totals.votes_up, totals.votes_down)}, "
            f"{totals.corrections} corrections\n```\n{vote_bars(days)}\n```"
        )

    def status(self, command: dict[str, Any]) -> str:
        try:
            stats = self.ctx.service.status()
        except Exception as exc:  # the document store may be down; storage still answers
            log.warning("full status unavailable: %s", exc)
            with self.ctx.database.session() as session:
                stats = counts(session).as_dict()
            stats["documents"] = "unavailable"
        if not self.ctx.admins.is_admin(command.get("user_id")):
            for private in INFRASTRUCTURE_KEYS:
                stats.pop(private, None)
        lines = [
            f"*{key.replace('_', ' ')}*: {value if value is not None else '—'}"
            for key, value in stats.items()
        ]
        return "\n".join(lines)


def register(app: App, handler: TanyaCommand) -> None:
    def acknowledge(ack: Ack, command: dict[str, Any]) -> None:
        handler.acknowledge(ack, command)

    def run_command(command: dict[str, Any], respond: Respond) -> None:
        handler.run(command, respond)

    app.command(COMMAND)(ack=acknowledge, lazy=[run_command])
