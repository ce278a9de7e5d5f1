from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from storage import Database
from storage.events import claim_event, forget_events_before
from storage.models import utcnow


def test_an_event_is_claimed_once(database: Database) -> None:
    with database.session() as session:
        assert claim_event(session, "Ev001", "app_mention")
    with database.session() as session:
        assert not claim_event(session, "Ev001", "app_mention")
        assert claim_event(session, "Ev002", "app_mention")


def test_concurrent_claims_from_separate_processes_pick_one_winner(database_url: str) -> None:
    """Two bot replicas (two engines) receiving the same delivery: exactly one wins."""
    replicas = [Database.open(database_url), Database.open(database_url)]

    def claim(i: int) -> bool:
        with replicas[i % 2].session() as session:
            return claim_event(session, "EvRace", "message")

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(claim, range(16)))
    assert results.count(True) == 1
    for replica in replicas:
        replica.dispose()


def test_old_claims_are_forgotten(database: Database) -> None:
    with database.session() as session:
        claim_event(session, "EvOld")
    with database.session() as session:
        assert forget_events_before(session, utcnow() + timedelta(seconds=1)) == 1
        assert claim_event(session, "EvOld")
