"""What every listener needs, built once per process and passed in explicitly (no globals)."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient

from bot.service import Tanya
from bot.settings import Settings
from bot.slack.admin import AdminCheck
from bot.slack.channels import ChannelKinds
from bot.slack.leases import Leases
from bot.slack.priority import AckFirst, lower_thread_priority
from storage import Database

log = logging.getLogger(__name__)


@dataclass
class SlackContext:
    """What every Slack handler shares: settings, the service, the Web API client and the worker pools."""

    settings: Settings
    service: Tanya
    client: WebClient
    answer_workers: int = 1
    stream_interval: float = 1.0
    stopping: threading.Event = field(default_factory=threading.Event)
    acks: AckFirst = field(default_factory=AckFirst)
    channels: ChannelKinds = field(init=False)
    admins: AdminCheck = field(init=False)
    answers: ThreadPoolExecutor = field(init=False)
    leases: Leases = field(init=False)

    def __post_init__(self) -> None:
        self.channels = ChannelKinds(self.client)
        self.leases = Leases(
            self.service.database, self.service.outbox, lease_seconds=self.settings.claim_lease_seconds
        )
        self.admins = AdminCheck(self.settings, self.client)
        # Generation is CPU- or GPU-bound: a small, separate pool keeps it from starving the listeners
        # that record votes and acknowledge commands.
        # On a small machine a forward pass takes every core; the OS should still run the acknowledgements
        # first (bot.slack.priority).
        self.answers = ThreadPoolExecutor(
            max_workers=self.answer_workers,
            thread_name_prefix="tanya-answer",
            initializer=lower_thread_priority,
            initargs=(self.settings.answer_niceness,),
        )

    @property
    def database(self) -> Database:
        return self.service.database

    def ephemeral(self, *, channel: str, user: str, text: str, thread_ts: str | None = None) -> bool:
        """A note only ``user`` sees; failures are logged, never raised (it is a courtesy, not the work)."""
        try:
            kwargs: dict[str, Any] = {"channel": channel, "user": user, "text": text}
            if thread_ts:
                kwargs["thread_ts"] = thread_ts
            self.client.chat_postEphemeral(**kwargs)
            return True
        except Exception as exc:
            log.warning("could not send an ephemeral note to %s in %s: %s", user, channel, exc)
            return False

    def start_background(self) -> None:
        """The lease heartbeat (with the scan for orphaned answers) and the spool's drainer."""
        self.leases.start()
        self.service.outbox.start()

    def close(self, *, wait: bool = True) -> None:
        """Stop answering: the answer being written is finished, queued ones are told to ask again."""
        self.stopping.set()
        self.answers.shutdown(wait=wait)
        self.leases.stop()
        self.service.outbox.stop()
