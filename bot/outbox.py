"""Acknowledged work that waits out a database outage, and the drainer that applies it afterwards.

The answer path, the reaction listener and the question listener hand work here only when the database
said it is unavailable (``storage.database.is_unavailable``); everything else goes straight to SQL as
before. Each kind of work has one applier, registered by the part of tanya that owns it (the service
saves interactions, the Slack app applies votes and answers deferred questions). The drainer thread
wakes every ``interval`` (or at once when poked), does nothing while the spool is empty, checks the
database with one cheap statement, then applies items strictly in arrival order. An applier that finds
the database unavailable again stops the round, and the item stays first in line; one that fails for
another reason is retried a few times, then set aside as dead (logged at ERROR, kept in the file, shown
by a metric) so that one bad item cannot hold everything behind it. Appliers are idempotent, because a
crash between applying an item and deleting it applies it again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from bot.observability.metrics import SPOOL_APPLIED, SPOOL_DEAD, SPOOL_DEPTH, SPOOLED
from storage import Database
from storage.database import is_unavailable
from storage.spool import Spool, SpooledItem

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5

Applier = Callable[[dict[str, Any]], None]


class Outbox:
    """The spool of one process, with the appliers for each kind of work and the drainer thread."""

    def __init__(self, spool: Spool, database: Database, *, interval: float = 1.0) -> None:
        self.spool = spool
        self.database = database
        self.interval = interval
        self._appliers: dict[str, Applier] = {}
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._drain_lock = threading.Lock()
        SPOOL_DEPTH.set_function(self._depth_or_zero)

    def register(self, kind: str, applier: Applier) -> None:
        self._appliers[kind] = applier

    def put(self, key: str, kind: str, payload: dict[str, Any]) -> bool:
        """Keep the work on disk (fsynced) until the database is back; False if this key already waits."""
        added = self.spool.put(key, kind, payload)
        if added:
            SPOOLED.labels(kind=kind).inc()
            log.warning(
                "the database is unavailable: %s %s kept in the local spool (%d waiting)",
                kind,
                key,
                self.spool.depth(),
            )
        return added

    def waiting(self, key: str) -> bool:
        return self.spool.contains(key)

    def depth(self) -> int:
        return self.spool.depth()

    # -- draining ---------------------------------------------------------------------------------

    def start(self) -> Outbox:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tanya-outbox", daemon=True)
            self._thread.start()
        return self

    def poke(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self.drain()
            except Exception:
                log.exception("the outbox drainer failed; it tries again")
            self._wake.wait(self.interval)
            self._wake.clear()

    def drain(self) -> int:
        """Apply what waits, in order, while the database takes it; returns how many were applied."""
        with self._drain_lock:
            if not self.spool.depth() or not self._database_answers():
                return 0
            applied = 0
            while not self._stopped.is_set():
                items = self.spool.waiting(limit=50)
                if not items:
                    break
                for item in items:
                    if not self._apply(item):
                        return applied
                    applied += 1
            if applied:
                log.info("applied %d spooled item(s); %d waiting", applied, self.spool.depth())
            return applied

    def _apply(self, item: SpooledItem) -> bool:
        """Apply one item; False when the database went away again (stop the round, keep the order)."""
        applier = self._appliers.get(item.kind)
        if applier is None:
            self._set_aside(item, f"no applier for {item.kind!r} in this process")
            return True
        try:
            applier(item.payload)
        except Exception as exc:
            if is_unavailable(exc):
                log.info("the database went away again while applying %s; waiting", item.key)
                return False
            if item.attempts + 1 >= MAX_ATTEMPTS:
                log.exception("gave up applying spooled %s after %d attempts", item.key, item.attempts + 1)
                self._set_aside(item, f"{type(exc).__name__}: {exc}")
            else:
                log.warning("applying spooled %s failed (attempt %d): %s", item.key, item.attempts + 1, exc)
                self.spool.failed(item.id, f"{type(exc).__name__}: {exc}", dead=False)
                return False  # keep the order: try again next round
            return True
        self.spool.done(item.id)
        SPOOL_APPLIED.labels(kind=item.kind).inc()
        return True

    def _set_aside(self, item: SpooledItem, reason: str) -> None:
        log.error("spooled %s (%s) set aside, not applied: %s", item.key, item.kind, reason)
        self.spool.failed(item.id, reason, dead=True)
        SPOOL_DEAD.inc()

    def _database_answers(self) -> bool:
        try:
            with self.database.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def _depth_or_zero(self) -> float:
        try:
            return float(self.spool.depth())
        except Exception:
            return 0.0
