"""Feedback → SFT / DPO / KTO rows, from a seeded database (SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace

from alignment.chat_format import ChatFormat
from alignment.datasets import build_datasets, choose_eval_questions, split_rank
from alignment.feedback import load_feedback, normalize_question
from alignment.pipeline import prepare_data
from alignment.regression import grounded_messages
from alignment.report import data_notes
from alignment.train import plan_stages, split_pairs
from retrieval.answering.prompt import cited_numbers
from storage import ChannelKind, Database, Interaction
from tests.alignment.conftest import tiny_config
from tests.alignment.seed import ask

GOOD = "Run `tanya feedback 12 none` to withdraw your vote."
BAD = "Votes are permanent."


def _rows_for(rows: list[dict], needle: str) -> list[dict]:
    return [row for row in rows if needle in row["prompt"]]


def _all(data, kind: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return getattr(data.train, kind) + getattr(data.eval, kind)


def test_sft_rows_replay_the_stored_context_in_the_chat_template(
    database: Database, chat: ChatFormat
) -> None:
    ask(database, "How do I withdraw my vote?", GOOD, context="Type none to withdraw.", up=2)
    data = prepare_data(database, chat, tiny_config())
    (row,) = _all(data, "sft")
    expected_prompt = chat.tokenizer.apply_chat_template(
        grounded_messages("How do I withdraw my vote?", [("guide", "Type none to withdraw.")]),
        tokenize=False,
        add_generation_prompt=True,
    )
    assert row["prompt"] == expected_prompt
    assert row["completion"] == GOOD + chat.tokenizer.eos_token  # the answer and where it stops
    assert not row["completion"].endswith("\n")


def test_a_stored_prompt_in_this_template_is_used_verbatim(database: Database, chat: ChatFormat) -> None:
    seeded = ask(database, "How do I withdraw my vote?", GOOD, up=1)
    shortened = (
        "<|im_start|>user\nshortened sources … How do I withdraw my vote?<|im_end|>\n<|im_start|>assistant\n"
    )
    with database.session() as session:
        session.get(Interaction, seeded.interaction_id).prompt = shortened  # type: ignore[union-attr]
    data = prepare_data(database, chat, tiny_config())
    assert [row["prompt"] for row in _all(data, "sft")] == [shortened]


def test_pairs_kto_rows_and_majority(database: Database, chat: ChatFormat) -> None:
    # Same question, normalised: a 👍 answer and a 👎 answer pair up.
    ask(database, "How do I withdraw my vote?", GOOD, up=2, down=1)
    ask(database, "how do I WITHDRAW my vote ", BAD, down=2, up=1)
    # A correction pairs with the answer it corrects.
    corrected = ask(
        database,
        "Which files can tanya read?",
        "Only PDF.",
        down=1,
        correction="Markdown, text, HTML and PDF.",
    )
    # Unpartnered thumbs become KTO rows.
    ask(database, "Where is my data kept?", "In TANYA_HOME.", up=1)
    ask(database, "What is the vote limit?", "There is no limit.", down=3)
    # A tie says nothing.
    tie = ask(database, "Is tanya fast?", "Very.", up=1, down=1)

    data = prepare_data(database, chat, tiny_config())
    pairs = _all(data, "dpo")
    assert len(pairs) == 2
    vote_pair = _rows_for(pairs, "withdraw my vote")[0]
    assert vote_pair["chosen"].startswith(GOOD) and vote_pair["rejected"].startswith(BAD)
    correction_pair = _rows_for(pairs, "Which files")[0]
    assert correction_pair["chosen"].startswith("Markdown, text") and correction_pair["rejected"].startswith(
        "Only PDF."
    )

    kto = {(row["completion"].split("<")[0], row["label"]) for row in _all(data, "kto")}
    assert kto == {("In TANYA_HOME.", True), ("There is no limit.", False)}

    sft = {row["completion"].split("<")[0] for row in _all(data, "sft")}
    assert sft == {GOOD, "Markdown, text, HTML and PDF.", "In TANYA_HOME."}
    # Only the answer a person wrote is one the gate may grade written answers against.
    assert [row["completion"].split("<")[0] for row in _all(data, "written")] == [
        "Markdown, text, HTML and PDF."
    ]
    assert data.excluded["tied_votes"] == 1

    lineage = data.lineage_json()
    used_interactions = set(lineage["train"]["interactions"]) | set(lineage["eval"]["interactions"])
    assert tie.interaction_id not in used_interactions
    assert corrected.correction_id in set(lineage["train"]["corrections"]) | set(
        lineage["eval"]["corrections"]
    )
    used_votes = set(lineage["train"]["votes"]) | set(lineage["eval"]["votes"])
    assert set(corrected.vote_ids) <= used_votes and not set(tie.vote_ids) & used_votes


def test_private_interactions_are_excluded_unless_allowed(database: Database, chat: ChatFormat) -> None:
    ask(database, "Public question?", "Public answer.", up=1)
    ask(database, "DM question?", "DM answer.", up=1, origin=ChannelKind.direct_message)
    ask(database, "Private channel question?", "Private answer.", up=1, origin=ChannelKind.private_channel)

    default = prepare_data(database, chat, tiny_config())
    assert {row["completion"].split("<")[0] for row in _all(default, "sft")} == {"Public answer."}
    assert default.excluded["private"] == 2

    allowed = prepare_data(database, chat, tiny_config(include_private=True))
    assert len(_all(allowed, "sft")) == 3 and "private" not in allowed.excluded


def test_duplicates_are_removed_and_too_long_rows_left_out(database: Database, chat: ChatFormat) -> None:
    for _ in range(3):
        ask(database, "How do I withdraw my vote?", GOOD, up=1)
    ask(database, "How do I withdraw my vote??", GOOD.upper(), up=1)  # same question and answer, normalised
    ask(database, "A very long one? " + "word " * 600, "fine", up=1)  # the question alone is over the limit
    data = prepare_data(database, chat, tiny_config(max_length=320))
    assert len(_all(data, "sft")) == 1
    assert data.excluded["duplicate_sft"] == 3
    assert data.excluded["too_long"] == 1
    assert data.stats()["fitted"] == {}


# Five long sources, as over real documents; the answer is in the fourth.
_FILLER = "The archive keeps minutes of every meeting held by the board since the founding year. " * 12
_LONG_SOURCES = [(f"page {n}", f"{_FILLER} Page {n} ends here.") for n in range(1, 4)] + [
    ("page 4", f"{_FILLER} The reactor was commissioned in 1987 by the state utility. {_FILLER}"),
    ("page 5", _FILLER),
]


def test_a_long_prompt_is_fitted_keeping_the_cited_source(database: Database, chat: ChatFormat) -> None:
    ask(database, "When was the reactor commissioned?", "In 1987 [4].", sources=_LONG_SOURCES, up=1)
    ask(
        database,
        "Who commissioned the reactor?",
        "The board.",
        sources=_LONG_SOURCES,
        down=1,
        correction="the state utility",  # no citation: the source stating it is found and cited
    )
    config = tiny_config(max_length=400)
    full = chat.token_count(
        chat.prompt(grounded_messages("When was the reactor commissioned?", _LONG_SOURCES))
    )
    assert full > 3 * config.max_length  # far over the limit before fitting
    data = prepare_data(database, chat, config)
    rows = _all(data, "sft")
    assert len(rows) == 2 and "too_long" not in data.excluded
    for row in rows:
        assert chat.token_count(row["prompt"]) + chat.token_count(row["completion"]) <= config.max_length
        assert "Question: " in row["prompt"] and "Page 5 ends" not in row["prompt"]
        cited = cited_numbers(row["completion"])
        assert len(cited) == 1
        user = row["prompt"].split("Sources:", 1)[1]
        assert f"[{cited[0]}] page 4: " in user  # renumbered, and still pointing at the source that says it
    (commissioned,) = _rows_for(rows, "When was the reactor")
    assert "1987" in commissioned["prompt"] and commissioned["completion"].startswith("In 1987 [")
    stats = data.stats()
    assert stats["fitted"]["sources_dropped"] == 2
    assert stats["fitted"]["sources_shortened"] == 2  # one 1,000-token page alone is over 400


def test_the_summary_says_what_was_left_out_and_why(database: Database, chat: ChatFormat) -> None:
    ask(database, "A very long one? " + "word " * 600, "fine", up=1)
    ask(database, "Tied?", "Maybe.", up=1, down=1)
    config = tiny_config(max_length=320)
    data = prepare_data(database, chat, config)
    notes = data_notes(data.stats(), config.max_length)
    assert "1 answer too long to train on" in notes and "over 320 tokens" in notes
    assert "1 answer with tied votes" in notes


def test_split_is_by_question_deterministic_and_stable(database: Database, chat: ChatFormat) -> None:
    for number in range(30):
        ask(database, f"Question number {number}?", f"Answer {number}.", up=1)
        ask(database, f"question number {number}", f"Wrong {number}.", down=1)  # same key, must stay together
    config = tiny_config()
    first = prepare_data(database, chat, config)
    second = prepare_data(database, chat, config)
    assert first.eval_questions == second.eval_questions and first.eval.dpo == second.eval.dpo
    assert 3 <= len(first.eval_questions) < 30
    assert not set(first.eval_questions) & set(first.train_questions)
    eval_prompts = {row["prompt"] for row in first.eval.sft + first.eval.dpo}
    train_prompts = {row["prompt"] for row in first.train.sft + first.train.dpo}
    assert not eval_prompts & train_prompts

    # New feedback on other questions does not move existing questions across the split.
    ask(database, "A brand new question?", "New.", up=1)
    third = prepare_data(database, chat, config)
    assert set(first.eval_questions) <= set(third.eval_questions) | {
        normalize_question("A brand new question?")
    }
    assert set(first.eval_questions) == set(third.eval_questions) - {
        normalize_question("A brand new question?")
    }

    # A different salt draws a different split.
    other = prepare_data(database, chat, replace(config, split_salt="another"))
    assert other.eval_questions != first.eval_questions


def test_choose_eval_questions_keeps_something_to_train_on() -> None:
    config = tiny_config(min_eval_questions=5)
    assert choose_eval_questions(["only"], config) == set()
    assert len(choose_eval_questions(["a", "b"], config)) == 1
    keys = [f"q{i}" for i in range(200)]
    chosen = choose_eval_questions(keys, tiny_config(eval_fraction=0.2))
    assert all(split_rank(key, "tanya-split-v1") < 0.2 for key in chosen)
    assert 20 < len(chosen) < 60


def test_plan_decides_stages_by_the_numbers(database: Database, chat: ChatFormat) -> None:
    config = tiny_config(
        min_sft_rows=4, min_dpo_pairs=4, min_kto_rows=4, eval_fraction=0.01, min_eval_questions=1
    )
    ask(database, "One?", "Only one answer.", up=1)
    ask(database, "Other?", "Another.", up=1)
    data = prepare_data(database, chat, config)
    plan = plan_stages(data.train, config)
    assert not plan.sft and "need 4" in plan.reason

    for number in range(3):
        ask(database, f"Paired {number}?", f"Good {number}.", up=1)
        ask(database, f"Paired {number}?", f"Bad {number}.", down=1)
    data = prepare_data(database, chat, config)
    plan = plan_stages(data.train, config)
    assert plan.stages == ["sft", "kto"] and plan.kto_rows == "all"  # too few pairs: KTO on every thumb

    for number in range(3, 8):
        ask(database, f"Paired {number}?", f"Good {number}.", up=1)
        ask(database, f"Paired {number}?", f"Bad {number}.", down=1)
    for number in range(4):
        ask(database, f"Liked {number}?", f"Fine {number}.", up=1)
        ask(database, f"Disliked {number}?", f"Poor {number}.", down=1)
    data = prepare_data(database, chat, config)
    plan = plan_stages(data.train, config)
    assert plan.stages == ["sft", "dpo"]  # KTO after DPO is off by default
    assert len(split_pairs(data.train.dpo)) == 2 * len(data.train.dpo)
    after = replace(config, kto_after_dpo_ratio=0.5)
    assert plan_stages(data.train, after).stages == ["sft", "dpo", "kto"]
    assert plan_stages(data.train, after).kto_rows == "unpaired"


def test_load_feedback_reads_haystack_messages_or_the_json_prompt(database: Database) -> None:
    with_messages = ask(database, "Q?", "A.", up=1)
    json_only = ask(database, "R?", "B.", up=1)
    with database.session() as session:
        session.get(Interaction, json_only.interaction_id).messages = []  # type: ignore[union-attr]
    with database.session() as session:
        answers = {a.interaction_id: a for a in load_feedback(session, include_private=False).answers}
    for seeded, question in ((with_messages, "Q?"), (json_only, "R?")):
        messages = answers[seeded.interaction_id].messages
        assert [message["role"] for message in messages] == ["system", "user"]
        assert f"Question: {question}" in messages[1]["content"]


def test_build_datasets_accepts_an_empty_snapshot(chat: ChatFormat) -> None:
    from alignment.feedback import FeedbackSnapshot

    data = build_datasets(FeedbackSnapshot(), chat, tiny_config())
    assert data.stats()["train"] == {"sft": 0, "dpo": 0, "kto": 0}
