"""Reaction votes applied by ``event_ts``: any arrival order, any concurrency, the same final vote."""

from __future__ import annotations

import itertools
import random
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from storage import Database, Interaction, Vote
from storage.reactions import ReactionResult, apply_reaction, slack_ts_micros
from storage.stats import counts
from tests.storage.helpers import make_interaction

Event = tuple[int, bool, bool]  # (event_us, up, added)


def expected_vote(events: list[Event]) -> int | None:
    """What Slack shows, replayed in event_ts order: the newest of 👍/👎 still on the message."""
    added_at: dict[bool, int] = {}
    for at, up, added in sorted(events):
        if added:
            added_at[up] = at
        else:
            added_at.pop(up, None)
    if not added_at:
        return None
    return 1 if max(added_at, key=added_at.__getitem__) else -1


def apply(db: Database, interaction_id: int, user: str, event: Event) -> ReactionResult:
    at, up, added = event
    with db.session() as session:
        return apply_reaction(
            session, interaction_id=interaction_id, user_id=user, up=up, added=added, event_us=at
        )


def stored_vote(db: Database, interaction_id: int, user: str) -> int | None:
    with db.session() as session:
        return session.scalar(
            select(Vote.value).where(Vote.interaction_id == interaction_id, Vote.user_id == user)
        )


def test_slack_ts_is_read_exactly() -> None:
    assert slack_ts_micros("1700000001.000002") == 1_700_000_001_000_002
    assert slack_ts_micros("1700000001.5") == 1_700_000_001_500_000
    assert slack_ts_micros("1700000001") == 1_700_000_001_000_000
    for bad in (None, "", "abc", "1.2.3", "-1.0", "1.1234567", True, "１２.3"):
        assert slack_ts_micros(bad) is None, bad


SEQUENCES: list[list[Event]] = [
    [(1, True, True), (2, False, True), (3, True, False)],  # 👍, switch to 👎, remove the stale 👍
    [(1, True, True), (2, False, True), (3, False, False)],  # 👍, 👎, remove 👎: the 👍 is still there
    [(1, True, True), (2, True, False)],  # added and withdrawn
    [(1, True, True), (2, True, False), (3, False, True), (4, False, False), (5, True, True)],
]


@pytest.mark.parametrize("events", SEQUENCES)
def test_every_arrival_order_ends_in_the_same_vote(database: Database, events: list[Event]) -> None:
    want = expected_vote(events)
    for number, order in enumerate(itertools.permutations(events)):
        interaction_id = make_interaction(database, question=f"order {number}")
        for event in order:
            apply(database, interaction_id, "U1", event)
        assert stored_vote(database, interaction_id, "U1") == want, order


def test_a_removal_is_a_tombstone_an_older_add_cannot_undo(database: Database) -> None:
    interaction_id = make_interaction(database)
    assert apply(database, interaction_id, "U1", (20, True, False)).applied  # the removal arrives first
    late = apply(database, interaction_id, "U1", (10, True, True))
    assert late == ReactionResult(applied=False, vote=None, changed=False)
    assert stored_vote(database, interaction_id, "U1") is None
    with database.session() as session:
        assert counts(session).votes_up == 0
        # Training reads an interaction's votes: the tombstone is not one of them.
        assert session.get(Interaction, interaction_id).votes == []


def test_the_same_event_twice_counts_once(database: Database) -> None:
    interaction_id = make_interaction(database)
    assert apply(database, interaction_id, "U1", (5, False, True)).changed
    again = apply(database, interaction_id, "U1", (5, False, True))
    assert not again.applied and again.vote == -1


def test_a_button_vote_is_kept_until_a_newer_reaction(database: Database) -> None:
    from storage.feedback import set_vote

    interaction_id = make_interaction(database)
    with database.session() as session:
        set_vote(session, interaction_id=interaction_id, user_id="U1", value=1, source="button")
    assert stored_vote(database, interaction_id, "U1") == 1
    apply(database, interaction_id, "U1", (7, False, True))
    assert stored_vote(database, interaction_id, "U1") == -1


def test_concurrent_events_of_many_people_end_as_slack_shows(database: Database) -> None:
    """Threads apply every person's events in a shuffled order at once; each final vote is exact."""
    interaction_id = make_interaction(database)
    rng = random.Random(19)
    people: dict[str, list[Event]] = {}
    clock = itertools.count(1_700_000_000_000_000, 1000)
    for number in range(30):
        present: set[bool] = set()
        events: list[Event] = []
        for _ in range(6):
            options = [(up, True) for up in (True, False) if up not in present]
            options += [(up, False) for up in present]
            up, added = rng.choice(options)
            (present.add if added else present.discard)(up)
            events.append((next(clock), up, added))
        people[f"U{number:03d}"] = events
    work = [(user, event) for user, events in people.items() for event in events]
    rng.shuffle(work)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda job: apply(database, interaction_id, *job), work))
    got = {user: stored_vote(database, interaction_id, user) for user in people}
    assert got == {user: expected_vote(events) for user, events in people.items()}
    with database.session() as session:
        totals = counts(session)
    assert totals.votes_up == sum(1 for vote in got.values() if vote == 1)
    assert totals.votes_down == sum(1 for vote in got.values() if vote == -1)
