from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from storage import Database, Vote
from storage.feedback import (
    DOWN,
    UP,
    UnknownInteractionError,
    add_correction,
    get_vote,
    set_vote,
    withdraw_vote,
)
from storage.stats import counts
from tests.storage.helpers import make_interaction


def _vote_rows(db: Database, interaction_id: int) -> int:
    with db.session() as session:
        return session.scalar(
            select(func.count()).select_from(Vote).where(Vote.interaction_id == interaction_id)
        )


def test_changing_a_vote_updates_the_single_row(database: Database) -> None:
    interaction_id = make_interaction(database)
    with database.session() as session:
        first = set_vote(session, interaction_id=interaction_id, user_id="U1", value=UP, source="reaction")
        first_id, created = first.id, first.created_at
    with database.session() as session:
        changed = set_vote(session, interaction_id=interaction_id, user_id="U1", value=DOWN, source="button")
        assert changed.id == first_id
        assert changed.created_at == created
        assert changed.updated_at >= created
    assert _vote_rows(database, interaction_id) == 1
    with database.session() as session:
        vote = get_vote(session, interaction_id=interaction_id, user_id="U1")
        assert vote is not None and vote.value == DOWN and vote.source == "button"
        assert counts(session).votes_down == 1


def test_votes_of_different_users_are_counted_separately(database: Database) -> None:
    interaction_id = make_interaction(database)
    with database.session() as session:
        set_vote(session, interaction_id=interaction_id, user_id="U1", value=UP, source="cli")
        set_vote(session, interaction_id=interaction_id, user_id="U2", value=UP, source="cli")
        set_vote(session, interaction_id=interaction_id, user_id="U3", value=DOWN, source="cli")
    with database.session() as session:
        totals = counts(session)
    assert (totals.votes_up, totals.votes_down) == (2, 1)


def test_withdrawing_deletes_only_a_matching_vote(database: Database) -> None:
    interaction_id = make_interaction(database)
    with database.session() as session:
        set_vote(session, interaction_id=interaction_id, user_id="U1", value=DOWN, source="reaction")
    with database.session() as session:
        # Removing a stale 👍 reaction must not remove the 👎 that replaced it.
        assert not withdraw_vote(session, interaction_id=interaction_id, user_id="U1", value=UP)
    assert _vote_rows(database, interaction_id) == 1
    with database.session() as session:
        assert withdraw_vote(session, interaction_id=interaction_id, user_id="U1", value=DOWN)
    assert _vote_rows(database, interaction_id) == 0


def test_invalid_votes_are_refused(database: Database) -> None:
    interaction_id = make_interaction(database)
    with database.session() as session, pytest.raises(ValueError):
        set_vote(session, interaction_id=interaction_id, user_id="U1", value=5, source="cli")
    with database.session() as session, pytest.raises(UnknownInteractionError):
        set_vote(session, interaction_id=interaction_id + 100, user_id="U1", value=UP, source="cli")


def test_concurrent_votes_from_one_user_leave_one_row(database: Database) -> None:
    """Two deliveries of the same reaction arriving together must not create two votes."""
    interaction_id = make_interaction(database)

    def vote(value: int) -> None:
        with database.session() as session:
            set_vote(session, interaction_id=interaction_id, user_id="U9", value=value, source="reaction")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(vote, [UP, DOWN] * 8))
    assert _vote_rows(database, interaction_id) == 1


def test_corrections_are_linked_and_need_text(database: Database) -> None:
    interaction_id = make_interaction(database)
    with database.session() as session:
        correction = add_correction(
            session, interaction_id=interaction_id, user_id="U1", text="  Use vpn.example.com  ", source="cli"
        )
        assert correction.text == "Use vpn.example.com"
    with database.session() as session, pytest.raises(ValueError):
        add_correction(session, interaction_id=interaction_id, user_id="U1", text="   ", source="cli")
