"""This process's leased claims (``storage.claims``): taken, renewed while the work runs, finished.

A claim on an answer names this process as its owner and holds for ``lease_seconds``. A heartbeat
thread renews every claim still held a few times per lease, so a live process never loses one, and a
killed one loses all of them within a lease: the next delivery of the question (Slack's retry, in any
replica) or the periodic scan for orphans (``bot.slack.recovery``, run on the same thread) takes the
work over. A claim is finished when the user has been given an outcome (the answer, an apology, an
"ask again"); finishing while the database is unavailable is spooled, so it happens when it is back.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from bot.outbox import Outbox
from storage import Database
from storage.claims import (
    TakenClaim,
    finish_claim,
    orphaned_claims,
    renew_claims,
    take_claim,
    take_over,
    update_payload,
)
from storage.database import is_unavailable
from storage.models import utcnow

log = logging.getLogger(__name__)


def process_owner() -> str:
    """Who holds a claim: the host, the process id, and a random part (pids are reused)."""
    return f"{socket.gethostname()[:120]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Leases:
    """Takes, renews and finishes this process's claims; runs ``on_beat`` callbacks on its thread."""

    def __init__(self, database: Database, outbox: Outbox, *, lease_seconds: float = 30.0) -> None:
        self.database = database
        self.outbox = outbox
        self.lease_seconds = lease_seconds
        self.owner = process_owner()
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_beat: list[Callable[[], None]] = []
        outbox.register("finish", lambda payload: self._finish_now(str(payload["key"])))

    def _until(self):  # type: ignore[no-untyped-def]
        return utcnow() + timedelta(seconds=self.lease_seconds)

    def take(self, key: str, kind: str, payload: dict[str, Any] | None = None) -> TakenClaim | None:
        """The claim on ``key``, new or taken over from a dead owner; None if held or done. Raises on
        database errors (the caller decides whether to spool)."""
        with self.database.session() as session:
            taken = take_claim(
                session,
                key[:128],
                kind=kind[:64],
                owner=self.owner,
                lease_until=self._until(),
                payload=payload,
            )
        if taken is not None:
            with self._lock:
                self._held.add(taken.key)
        return taken

    def take_over(self, key: str) -> TakenClaim | None:
        """Only an orphan: an unfinished claim whose lease ran out."""
        with self.database.session() as session:
            taken = take_over(session, key, owner=self.owner, lease_until=self._until())
        if taken is not None:
            with self._lock:
                self._held.add(taken.key)
        return taken

    def note(self, key: str, payload: dict[str, Any]) -> None:
        """Leave what a successor needs to resume; a courtesy (logged when the database is away)."""
        try:
            with self.database.session() as session:
                update_payload(session, key[:128], owner=self.owner, payload=payload)
        except Exception as exc:
            log.warning("could not note progress on %s: %s", key, exc)

    def finish(self, key: str) -> None:
        """The work is done: never take it again. Spooled when the database is unavailable."""
        key = key[:128]
        with self._lock:
            self._held.discard(key)
        try:
            self._finish_now(key)
        except Exception as exc:
            if not is_unavailable(exc):
                log.exception("could not finish the claim on %s", key)
                return
            self.outbox.put(f"finish:{key}", "finish", {"key": key})

    def _finish_now(self, key: str) -> None:
        with self.database.session() as session:
            finish_claim(session, key)

    def orphans(self, kind: str) -> list[str]:
        with self.database.session() as session:
            return orphaned_claims(session, kind)

    def held(self) -> set[str]:
        with self._lock:
            return set(self._held)

    # -- heartbeat --------------------------------------------------------------------------------

    def on_beat(self, callback: Callable[[], None]) -> None:
        self._on_beat.append(callback)

    def start(self) -> Leases:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tanya-leases", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def beat(self) -> None:
        """Renew what this process holds, then run the callbacks (the scan for orphans)."""
        held = self.held()
        if held:
            try:
                with self.database.session() as session:
                    still = renew_claims(session, held, owner=self.owner, lease_until=self._until())
                lost = held - still
                if lost:  # finished meanwhile, or taken over after an outage longer than the lease
                    with self._lock:
                        self._held -= lost
            except Exception as exc:
                log.warning("could not renew %d claim(s): %s", len(held), exc)
                return
        for callback in self._on_beat:
            try:
                callback()
            except Exception as exc:
                log.warning("claim scan failed: %s", exc)

    def _run(self) -> None:
        # The first beat at once: a process that starts after a crash resumes what was left at start-up.
        while True:
            self.beat()
            if self._stopped.wait(max(0.2, self.lease_seconds / 3)):
                return
