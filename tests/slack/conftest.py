"""Fixtures for the Slack scenarios: the Web API emulator, a knowledge base, and running bots.

A bot here is the real thing: ``build_runtime`` + ``start_http`` (what ``tanya serve`` runs) on a free
loopback port, talking to the emulator through ``SLACK_API_URL``. Each test gets fresh databases;
the language model and the document index are loaded once per session and shared, because loading
them is what takes time.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from slack_bolt.adapter.socket_mode import SocketModeHandler
from sqlalchemy import select

from bot.service import Tanya
from bot.settings import Settings
from bot.slack.serve import SlackRuntime, build_runtime, start_http
from bot.slack.server import HttpServer
from bot.slack.socket_mode import connect_socket_mode
from storage import Database, Interaction, Vote
from tests.slack import slack_requests as slack
from tests.slack.emulator import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, SlackEmulator

ADMIN = "UADMIN0001"
HEAVY_COMPONENTS = ("retrieval_config", "document_store", "generator", "rag", "searcher")

KNOWLEDGE = {
    "vpn.md": (
        "# Connecting to the VPN\n\n"
        "To work from home, connect to the office VPN. Open the portal at vpn.example.com, sign in with "
        "your staff account and install the WireGuard profile it offers. The VPN must be on to reach the "
        "wiki and the build servers. If the connection drops, restart WireGuard and sign in again.\n"
    ),
    "leave.md": (
        "# Annual leave\n\n"
        "Every employee has 24 days of annual leave per year. Request leave in the HR portal at least two "
        "weeks ahead; your manager approves it. Unused days carry over until the end of March.\n"
    ),
}


class TrackingExecutor(ThreadPoolExecutor):
    """A thread pool that knows whether it still has work, so tests can wait for quiet, not sleep."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending = 0
        self._pending_lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._pending_lock:
            self._pending += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _: Future[Any]) -> None:
        with self._pending_lock:
            self._pending -= 1

    @property
    def idle(self) -> bool:
        with self._pending_lock:
            return self._pending == 0


class NoModel:
    """Stands in for the pipeline in bots that must not answer: any question fails loudly (and the bot
    must turn that into an apology in the thread)."""

    def answer(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("this test bot has no language model")


class EmptyStore:
    """Stands in for the document store of bots without a model: reachable, and empty."""

    def count_documents(self) -> int:
        return 0


@pytest.fixture(scope="session")
def knowledge_home(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Path:
    home = tmp_path_factory.mktemp("slack-home")
    (home / "models").symlink_to(model_cache, target_is_directory=True)
    docs = home / "docs"
    docs.mkdir()
    for name, text in KNOWLEDGE.items():
        (docs / name).write_text(text, encoding="utf-8")
    return home


@pytest.fixture(scope="session")
def answering_service(knowledge_home: Path) -> Tanya:
    """The real service with a tiny knowledge base, its index and the bundled model loaded once."""
    settings = Settings(home=knowledge_home, max_new_tokens=24, database_url=None)
    service = Tanya(settings)
    service.ingest([knowledge_home / "docs"])
    _ = service.rag
    return service


@pytest.fixture
def emulator() -> Iterator[SlackEmulator]:
    with SlackEmulator() as running:
        yield running


@dataclass
class Bot:
    runtime: SlackRuntime
    server: HttpServer | None
    emulator: SlackEmulator
    listeners: TrackingExecutor
    answers: TrackingExecutor
    socket: SocketModeHandler | None = None
    events_url: str = field(init=False)

    def __post_init__(self) -> None:
        self.events_url = f"{self.server.url}/slack/events" if self.server else ""

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.socket is not None:
            self.socket.close()

    @property
    def database(self) -> Database:
        return self.runtime.ctx.database

    @property
    def service(self) -> Tanya:
        return self.runtime.service

    # -- sending --------------------------------------------------------------------------------

    def send_event(
        self, event: dict[str, Any], *, event_id: str | None = None, retry_num: int | None = None
    ) -> slack.Reply:
        body = slack.event_callback(event, event_id=event_id)
        return self.send_body(body, retry_num=retry_num)

    def send_body(self, body: dict[str, Any], *, retry_num: int | None = None) -> slack.Reply:
        headers = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        return slack.post(self.events_url, json.dumps(body), headers=headers)

    def command(self, text: str, *, user: str, channel: str = "CGENERAL01", name: str | None = None) -> str:
        """Run ``/tanya <text>``; returns the response-URL name to look the answer up with."""
        name = name or slack.unique("cmd")
        body = slack.slash_command(
            text, user=user, channel=channel, response_url=self.emulator.response_url(name)
        )
        reply = slack.post(self.events_url, body, content_type="application/x-www-form-urlencoded")
        assert reply.status == 200, reply
        self.last_command_reply = reply
        return name

    def interact(self, form_body: str) -> slack.Reply:
        return slack.post(self.events_url, form_body, content_type="application/x-www-form-urlencoded")

    # -- waiting --------------------------------------------------------------------------------

    def idle(self) -> bool:
        return self.listeners.idle and self.answers.idle

    def settle(self, timeout: float = 120.0) -> None:
        slack.wait_until(self.idle, timeout=timeout, what="the bot to finish its work")

    def wait_for_answer(self, channel: str, thread_ts: str, timeout: float = 120.0) -> dict[str, Any]:
        def final() -> dict[str, Any] | None:
            for message in self.emulator.thread(channel, thread_ts):
                if any(block.get("type") == "actions" for block in message.get("blocks", [])):
                    return message
            return None

        return slack.wait_until(final, timeout=timeout, what=f"an answer in {channel}/{thread_ts}")

    # -- storage --------------------------------------------------------------------------------

    def interactions(self, **where: Any) -> list[Interaction]:
        query = select(Interaction).order_by(Interaction.id)
        for name, value in where.items():
            query = query.where(getattr(Interaction, name) == value)
        with self.database.session() as session:
            return list(session.scalars(query))

    def votes(self, interaction_id: int) -> list[tuple[str, int, str]]:
        query = select(Vote).where(Vote.interaction_id == interaction_id).order_by(Vote.id)
        with self.database.session() as session:
            return [(vote.user_id, vote.value, vote.source) for vote in session.scalars(query)]


def bot_settings(home: Path, emulator: SlackEmulator, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "home": home,
        "database_url": database_url,
        "max_new_tokens": 24,
        "admins": [ADMIN],
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_app_token": None,
        "slack_api_url": emulator.api_url,
        "slack_workspace_admins": False,
        "answer_direct_messages": True,
        "answer_private_channels": True,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def make_bot(
    request: pytest.FixtureRequest, emulator: SlackEmulator, tmp_path: Path
) -> Iterator[Callable[..., Bot]]:
    """Start bots: ``make_bot(model=True)`` shares the session's loaded model; others never touch it."""
    started: list[tuple[Bot, Database]] = []

    def start(
        *,
        model: bool = False,
        database_url: str | None = None,
        job_poll_seconds: float = 3600.0,
        socket_mode: bool = False,
        **overrides: Any,
    ) -> Bot:
        if model:
            shared: Tanya = request.getfixturevalue("answering_service")
            home = shared.settings.home
        else:
            shared = None  # type: ignore[assignment]
            home = tmp_path / "home"
            home.mkdir(exist_ok=True)
        url = database_url or f"sqlite:///{tmp_path / slack.unique('bot-db-')}.db"
        if socket_mode:
            overrides.setdefault("slack_app_token", APP_TOKEN)
        overrides.setdefault("spool_path", tmp_path / f"{slack.unique('spool-')}.sqlite3")
        settings = bot_settings(home, emulator, url, **overrides)
        database = Database.open(url)
        service = Tanya(settings, database=database)
        if shared is not None:
            for name in HEAVY_COMPONENTS:
                if name in shared.__dict__:
                    service.__dict__[name] = shared.__dict__[name]
        else:
            service.__dict__["generator"] = object()  # no adapters to sync
            service.__dict__["rag"] = NoModel()
            service.__dict__["document_store"] = EmptyStore()  # ready, as far as /readyz can tell
        listeners = TrackingExecutor(max_workers=16, thread_name_prefix="test-slack")
        runtime = build_runtime(
            settings,
            service,
            job_poll_seconds=job_poll_seconds,
            warm_up=False,
            listener_executor=listeners,
        )
        answers = TrackingExecutor(max_workers=runtime.ctx.answer_workers, thread_name_prefix="test-answer")
        runtime.ctx.answers = answers
        if runtime.socket_mode:
            token = settings.slack_app_token.get_secret_value()  # type: ignore[union-attr]
            handler = connect_socket_mode(runtime.app, token)
            runtime.poller.start()
            runtime.ctx.start_background()
            bot = Bot(
                runtime=runtime,
                server=None,
                emulator=emulator,
                listeners=listeners,
                answers=answers,
                socket=handler,
            )
        else:
            server = start_http(runtime, "127.0.0.1", 0)
            bot = Bot(runtime=runtime, server=server, emulator=emulator, listeners=listeners, answers=answers)
        started.append((bot, database))
        return bot

    yield start
    for bot, database in reversed(started):
        bot.stop()
        slack.wait_until(bot.idle, timeout=120, what="the bot to finish before shutdown")
        bot.runtime.close()
        database.dispose()


__all__ = ["ADMIN", "Bot", "TrackingExecutor"]
