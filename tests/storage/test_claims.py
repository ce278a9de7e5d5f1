"""Leased claims: held, renewed, finished, and taken over only when the owner's lease ran out."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from storage import Database
from storage.claims import finish_claim, orphaned_claims, renew_claims, take_claim, take_over, update_payload
from storage.models import utcnow


def _take(database: Database, owner: str, seconds: float = 30.0, key: str = "answer:C1:1.0"):  # type: ignore[no-untyped-def]
    with database.session() as session:
        return take_claim(
            session, key, kind="answer", owner=owner, lease_until=utcnow() + timedelta(seconds=seconds)
        )


def test_a_held_claim_is_not_taken_and_a_finished_one_never(database: Database) -> None:
    first = _take(database, "a")
    assert first is not None and not first.resumed
    assert _take(database, "b") is None, "held by a"
    with database.session() as session:
        assert finish_claim(session, "answer:C1:1.0")
    assert _take(database, "b") is None, "finished: never again"


def test_an_expired_claim_is_taken_over_with_its_payload(database: Database) -> None:
    _take(database, "dead", seconds=-1)
    with database.session() as session:
        assert update_payload(session, "answer:C1:1.0", owner="dead", payload={"placeholder_ts": "9.9"})
        assert orphaned_claims(session, "answer") == ["answer:C1:1.0"]
    taken = _take(database, "next")
    assert taken is not None and taken.resumed and taken.payload == {"placeholder_ts": "9.9"}
    with database.session() as session:
        assert not update_payload(session, "answer:C1:1.0", owner="dead", payload={"x": 1}), "not dead's now"
        assert renew_claims(
            session, ["answer:C1:1.0"], owner="next", lease_until=utcnow() + timedelta(seconds=30)
        ) == {"answer:C1:1.0"}
        assert orphaned_claims(session, "answer") == []


def test_replicas_racing_for_an_orphan_pick_one(database_url: str) -> None:
    replicas = [Database.open(database_url), Database.open(database_url)]
    _take(replicas[0], "dead", seconds=-1)

    def grab(i: int) -> bool:
        with replicas[i % 2].session() as session:
            taken = take_over(
                session, "answer:C1:1.0", owner=f"r{i}", lease_until=utcnow() + timedelta(seconds=30)
            )
        return taken is not None

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(grab, range(16))).count(True) == 1
    for replica in replicas:
        replica.dispose()
