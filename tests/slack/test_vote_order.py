"""A storm of reactions through the real endpoint: every person ends with the vote Slack shows.

50 people react 200 times on one answer (adds, removals, 👍↔👎 switches), up to 20 requests in flight,
each person's next event sent only once the previous one was acknowledged — as Slack sends them. The
bot works through them on its listener pool in whatever order they finish; the final votes must equal
what the events say in ``event_ts`` order, exactly, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bot.observability.metrics import REGISTRY
from tests.slack import slack_requests as slack
from tests.slack.test_feedback import CHANNEL, record_answer
from tests.storage.test_reactions import expected_vote

PEOPLE = 50
EVENTS = 200
IN_FLIGHT = 20


def storm(rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    """Each person's reaction events in the order they happen, as Slack would allow them."""
    people: dict[str, list[dict[str, Any]]] = {f"USTORM{n:04d}": [] for n in range(PEOPLE)}
    present: dict[str, set[str]] = {user: set() for user in people}
    for number in range(EVENTS):
        user = f"USTORM{number % PEOPLE:04d}"
        options = [("reaction_added", name) for name in ("+1", "-1") if name not in present[user]]
        options += [("reaction_removed", name) for name in present[user]]
        kind, name = rng.choice(sorted(options))
        (present[user].add if kind == "reaction_added" else present[user].discard)(name)
        people[user].append({"kind": kind, "name": name})
    return people


def stale_count() -> float:
    return REGISTRY.get_sample_value("tanya_slack_stale_reactions_total") or 0.0


def test_reaction_storm_ends_with_each_persons_last_vote(make_bot, database_url: str) -> None:
    bot = make_bot(database_url=database_url)
    answer_id, answer_ts, _ = record_answer(bot)
    people = storm(random.Random(1919))
    sent: dict[str, list[tuple[int, bool, bool]]] = {user: [] for user in people}

    def one_person(user: str) -> None:
        for step in people[user]:
            event = slack.reaction(step["kind"], step["name"], user=user, channel=CHANNEL, ts=answer_ts)
            at = int(event["event_ts"].replace(".", ""))
            sent[user].append((at, step["name"] == "+1", step["kind"] == "reaction_added"))
            reply = bot.send_event(event)  # returns once acknowledged
            assert reply.status == 200, reply

    before = stale_count()
    with ThreadPoolExecutor(max_workers=IN_FLIGHT) as senders:
        list(senders.map(one_person, people))
    bot.settle()

    want = {user: expected_vote(events) for user, events in sent.items()}
    got = {user: value for user, value, _ in bot.votes(answer_id)}
    stored = {user: got.get(user) for user in people}
    correct = sum(1 for user in people if stored[user] == want[user])
    print(f"{bot.database.engine.dialect.name}: {correct}/{PEOPLE} people end with the right vote")
    assert stored == want
    assert sum(len(events) for events in sent.values()) == EVENTS
    # Evidence the order was really mixed up: some events arrived after a newer one had been applied.
    print(f"stale events ignored: {stale_count() - before:.0f}")
