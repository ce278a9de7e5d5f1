"""Helpers for outage scenarios: a database that can be cut and restored, and a generator to hold.

SQLite has no server to stop, so its outage is a failing engine: every statement fails the way a file
that cannot be opened does. PostgreSQL's is real but bounded to the test's own database (never the
shared server): new connections are refused (``ALLOW_CONNECTIONS false``) and open ones terminated.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from retrieval.answering.pipeline import RagAnswer
from storage import Database

ANSWER_TEXT = "Open vpn.example.com and sign in [1]."


class Outage:
    """Cut and restore one test database."""

    def __init__(self, database: Database, admin_url: str | None = None) -> None:
        self.database = database
        self.admin_url = admin_url
        self.down = False
        if database.is_sqlite:
            event.listen(database.engine, "before_cursor_execute", self._fail_while_down)

    def _fail_while_down(self, *args: Any) -> None:
        if self.down:
            raise sqlite3.OperationalError("unable to open database file")

    def _admin(self, statement: str) -> None:
        assert self.admin_url is not None, "a PostgreSQL outage needs the admin URL"
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(text(statement))
        finally:
            engine.dispose()

    def cut(self) -> None:
        self.down = True
        if self.database.is_postgresql:
            name = make_url(self.database.url).database
            self._admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            self._admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")

    def restore(self) -> None:
        if self.database.is_postgresql:
            name = make_url(self.database.url).database
            self._admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        self.down = False


class HeldRag:
    """Stands in for the RAG pipeline: answers at once, or holds an answer mid-generation on request."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.generating = threading.Event()

    def hold(self) -> None:
        self.gate.clear()
        self.generating.clear()

    def release(self) -> None:
        self.gate.set()

    def answer(self, question: str, *, history: Any = (), streaming_callback: Any = None) -> RagAnswer:
        self.generating.set()
        if streaming_callback is not None:
            streaming_callback("Open vpn")
        assert self.gate.wait(60), "the held answer was never released"
        return RagAnswer(
            text=ANSWER_TEXT,
            documents=[],
            messages=[],
            prompt_text=f"<prompt>{question}</prompt>",
            generator="held",
            adapter=None,
            found=True,
            question_truncated=False,
            timings={},
        )
