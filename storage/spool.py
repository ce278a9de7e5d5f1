"""A durable local spool: acknowledged work kept on this machine while the database is unavailable.

Once Slack's delivery is acknowledged it is never sent again, so a vote or an answer that cannot reach
the database must survive in something other than process memory until it can. The spool is one SQLite
file under the data directory, written through Python's own ``sqlite3`` (no new dependency, and the
most tested embedded store there is): WAL with ``synchronous=FULL``, so every ``put`` has been fsynced
when it returns and survives a crash of the process or of the machine. Items keep their arrival order
(``id``) and a unique ``key`` (the Slack event or message they came from), so the same delivery spooled
twice is one item. Whoever drains the spool applies items in order and deletes each once applied;
appliers must be idempotent, because a crash between applying and deleting applies an item again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    dead INTEGER NOT NULL DEFAULT 0
)
"""


@dataclass(frozen=True)
class SpooledItem:
    """One piece of acknowledged work waiting for the database."""

    id: int
    key: str
    kind: str
    payload: dict[str, Any]
    created_at: float
    attempts: int


class Spool:
    """The spool file; safe to share between threads (one connection behind a lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=FULL")
        self._connection.execute(_SCHEMA)

    def put(self, key: str, kind: str, payload: dict[str, Any]) -> bool:
        """Keep ``payload`` until it is applied; False if an item with this key is already waiting."""
        data = json.dumps(payload, separators=(",", ":"), default=str)
        with self._lock:
            cursor = self._connection.execute(
                "INSERT OR IGNORE INTO spool (key, kind, payload, created_at) VALUES (?, ?, ?, ?)",
                (key, kind, data, time.time()),
            )
            return cursor.rowcount == 1

    def contains(self, key: str) -> bool:
        with self._lock:
            row = self._connection.execute(
                "SELECT 1 FROM spool WHERE key = ? AND dead = 0", (key,)
            ).fetchone()
        return row is not None

    def waiting(self, limit: int = 100) -> list[SpooledItem]:
        """The oldest items still to apply, in arrival order."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT id, key, kind, payload, created_at, attempts FROM spool WHERE dead = 0 "
                "ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            SpooledItem(
                id=row[0],
                key=row[1],
                kind=row[2],
                payload=json.loads(row[3]),
                created_at=row[4],
                attempts=row[5],
            )
            for row in rows
        ]

    def done(self, item_id: int) -> None:
        with self._lock:
            self._connection.execute("DELETE FROM spool WHERE id = ?", (item_id,))

    def failed(self, item_id: int, error: str, *, dead: bool) -> None:
        """Count a failed attempt; a ``dead`` item is kept for an operator but no longer applied."""
        with self._lock:
            self._connection.execute(
                "UPDATE spool SET attempts = attempts + 1, last_error = ?, dead = ? WHERE id = ?",
                (error[:2000], int(dead), item_id),
            )

    def depth(self) -> int:
        """Items still to apply (dead ones excluded)."""
        with self._lock:
            return int(self._connection.execute("SELECT count(*) FROM spool WHERE dead = 0").fetchone()[0])

    def dead(self) -> int:
        with self._lock:
            return int(self._connection.execute("SELECT count(*) FROM spool WHERE dead = 1").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._connection.close()
