from __future__ import annotations

import json

import pytest
from haystack import Document
from haystack.dataclasses import ChatMessage

from retrieval.answering.prompt import (
    ANSWER_INSTRUCTION,
    SYSTEM_PROMPT,
    bound_history,
    cited_numbers,
    make_prompt_builder,
    messages_to_json,
    parse_sources,
    strip_citations,
    truncate_question,
)

DOCS = [
    Document(
        content="Hotel nights in Berlin are reimbursed up to 150 euros.\n", meta={"title": "Expense policy"}
    ),
    Document(content="The VPN endpoint is vpn.example.org.", meta={"source": "docs/vpn.html"}),
    Document(content="Pages are acknowledged within 15 minutes."),
]


def _render(**kwargs: object) -> list[ChatMessage]:
    return make_prompt_builder().run(**kwargs)["prompt"]


def test_sources_are_numbered_in_retrieval_order_with_their_titles() -> None:
    system, user = _render(documents=DOCS, question="How much for a hotel in Berlin?")
    assert system.is_from("system") and system.text == SYSTEM_PROMPT
    assert user.text == (
        "Sources:\n"
        "[1] Expense policy: Hotel nights in Berlin are reimbursed up to 150 euros.\n\n"
        "[2] docs/vpn.html: The VPN endpoint is vpn.example.org.\n\n"
        "[3] Untitled: Pages are acknowledged within 15 minutes.\n\n"
        "Question: How much for a hotel in Berlin?\n"
        f"{ANSWER_INSTRUCTION}"
    )
    reordered = _render(documents=DOCS[::-1], question="q")[1].text
    assert reordered.index("[1] Untitled") < reordered.index("[3] Expense policy")


def test_earlier_turns_become_chat_turns_before_the_question() -> None:
    history = bound_history([("first question", "first answer"), ("second question", "second answer")])
    roles_and_texts = [(m.role.value, m.text) for m in _render(documents=DOCS, question="q", history=history)]
    assert roles_and_texts[1:5] == [
        ("user", "first question"),
        ("assistant", "first answer"),
        ("user", "second question"),
        ("assistant", "second answer"),
    ]
    assert roles_and_texts[5][0] == "user" and "Question: q" in roles_and_texts[5][1]


def test_history_is_bounded_to_the_latest_turns_and_clipped() -> None:
    turns = [(f"q{i}", f"a{i}") for i in range(10)] + [("x" * 5000, "y"), ("ok", "")]
    kept = bound_history(turns, max_turns=3, max_chars=100)
    assert [user[:2] for user, _ in kept] == ["q8", "q9", "xx"]
    assert len(kept[-1][0]) == 100 and kept[-1][0].endswith("…")
    assert bound_history(turns, max_turns=0) == []


def test_a_giant_question_is_shortened_with_a_notice() -> None:
    question = "START " + "log line with details\n" * 2000 + " What does this error mean? END"
    assert len(question) > 40_000
    short, cut = truncate_question(question, 4000)
    assert cut and len(short) <= 4000
    assert short.startswith("START ") and short.endswith("What does this error mean? END")
    assert "characters cut" in short
    assert truncate_question("  How do I rate an answer?  ", 4000) == ("How do I rate an answer?", False)


def test_the_stored_prompt_round_trips_exactly() -> None:
    messages = _render(documents=DOCS, question="Ünïcode — fine?", history=[("a", "b")])
    stored = messages_to_json(messages)
    assert "Ünïcode" in stored
    assert json.loads(stored) == [{"role": m.role.value, "content": m.text} for m in messages]


def test_the_source_list_and_the_citations_read_back() -> None:
    user = _render(documents=DOCS, question="Which formats?")[-1].text or ""
    sources = parse_sources(user)
    assert sorted(sources) == list(range(1, len(DOCS) + 1))
    assert all(not text.endswith("Which formats?") for text in sources.values())  # stops at the question
    assert cited_numbers("a [2] b [1, 3] c [2] d [7; 1]") == [2, 1, 3, 7]
    assert cited_numbers("in [2013], or [ 4 ]") == [4]  # a year is not a source number
    assert strip_citations("Yes [1, 2].").split() == ["Yes", "."]


def test_custom_wording_must_be_plain_text() -> None:
    builder = make_prompt_builder(system_prompt="Reply in French.", instruction="Cite like [n].")
    system, user = builder.run(documents=DOCS[:1], question="q")["prompt"]
    assert system.text == "Reply in French." and user.text.endswith("Cite like [n].")
    with pytest.raises(ValueError):
        make_prompt_builder(system_prompt="{{ injected }}")
