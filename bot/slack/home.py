"""The App Home tab: how tanya is doing, at a glance.

Feedback per day, the questions people disliked most recently, training runs and the active adapter.
Disliked questions asked in private channels or DMs are shown only to admins: the Home tab is visible
to everyone in the workspace.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.slack.charts import helpful_share, vote_bars
from bot.slack.context import SlackContext
from bot.slack.text import escape, shorten
from storage import ChannelKind
from storage.jobs import recent_jobs
from storage.stats import active_adapter, counts, daily_votes, recent_downvoted

log = logging.getLogger(__name__)

SHAREABLE_ORIGINS = (ChannelKind.public_channel, ChannelKind.cli)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") + " UTC" if value else "—"


def home_view(ctx: SlackContext, *, admin: bool, days: int = 14) -> dict[str, Any]:
    with ctx.database.session() as session:
        totals = counts(session)
        chart = vote_bars(daily_votes(session, days=days))
        adapter = active_adapter(session)
        adapter_line = (
            f"`{escape(adapter.name)}` (active since {_when(adapter.activated_at)})"
            if adapter
            else "base model"
        )
        disliked = [
            interaction
            for interaction in recent_downvoted(session, limit=20)
            if admin or interaction.origin in SHAREABLE_ORIGINS
        ][:5]
        disliked_lines = [
            f"• #{item.id} {'🔒 ' if item.origin not in SHAREABLE_ORIGINS else ''}"
            f"{escape(shorten(item.question, 140))}"
            for item in disliked
        ]
        job_lines = [
            f"• #{job.id} *{job.status.value}* · {_when(job.finished_at or job.started_at or job.created_at)}"
            + (f" · {escape(shorten(job.error, 80))}" if job.error else "")
            for job in recent_jobs(session, limit=5)
        ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "tanya — how it is going"}},
        _section(
            f"*Answering with:* {adapter_line}\n*Answers:* {totals.interactions} · "
            f"*Feedback:* {helpful_share(totals.votes_up, totals.votes_down)} · "
            f"*Corrections:* {totals.corrections}"
        ),
        _section(f"*Feedback, last {days} days* (█ 👍  ░ 👎)\n```\n{chart}\n```"),
        {"type": "divider"},
        _section("*Recently disliked answers*\n" + ("\n".join(disliked_lines) or "_None — nice._")),
        _section("*Training runs*\n" + ("\n".join(job_lines) or "_None yet._")),
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": "`/tanya help` lists commands · admins: `/tanya retrain`"}
            ],
        },
    ]
    return {"type": "home", "blocks": blocks}


class AppHome:
    """The App Home tab: what tanya knows, how it is doing, and (for admins) the adapters."""

    def __init__(self, ctx: SlackContext) -> None:
        self.ctx = ctx

    def publish(self, event: dict[str, Any], client: WebClient) -> None:
        user = event.get("user")
        if not user or event.get("tab", "home") != "home":
            return
        try:
            view = home_view(self.ctx, admin=self.ctx.admins.is_admin(user))
        except Exception:
            log.exception("could not build the App Home for %s", user)
            view = {
                "type": "home",
                "blocks": [
                    _section(":warning: Statistics are unavailable right now; try again in a minute.")
                ],
            }
        client.views_publish(user_id=user, view=view)


def register(app: App, home: AppHome) -> None:
    def acknowledge(ack: Ack) -> None:
        ack()

    def publish_home(event: dict[str, Any], client: WebClient) -> None:
        home.publish(event, client)

    app.event("app_home_opened")(ack=acknowledge, lazy=[publish_home])
