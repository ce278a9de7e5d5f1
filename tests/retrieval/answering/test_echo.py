"""Echoed prompt words are removed from a reply, and nothing else is."""

from __future__ import annotations

import pytest

from retrieval.answering.echo import strip_prompt_echo
from retrieval.answering.prompt import ANSWER_INSTRUCTION, SYSTEM_PROMPT

QUESTION = "How do I correct a wrong answer?"


def _strip(text: str) -> tuple[str, bool]:
    return strip_prompt_echo(text, question=QUESTION, prompt_texts=(SYSTEM_PROMPT, ANSWER_INSTRUCTION))


def test_the_echo_seen_in_the_demo_leaves_nothing() -> None:
    reply = (
        "Question: How do I correct a wrong answer? "
        "Answer in one sentence from the sources and cite the source number like [1]."
    )
    assert _strip(reply) == ("", True)


def test_the_answer_after_an_echo_is_kept() -> None:
    reply = (
        "Question: how do I correct a  wrong answer?\n"
        "answer in one sentence from the sources and cite the source number like [1]\n"
        "Answer: Type !fix followed by the better answer [2]."
    )
    assert _strip(reply) == ("Type !fix followed by the better answer [2].", True)


def test_an_instruction_in_the_middle_is_removed_and_the_sentences_joined() -> None:
    reply = (
        "Use !fix [1]. Answer in one sentence from the sources and cite the source number like [1]. "
        "Votes count too [2]."
    )
    assert _strip(reply) == ("Use !fix [1]. Votes count too [2].", True)


def test_a_bare_question_is_removed_only_at_the_start() -> None:
    assert _strip("How do I correct a wrong answer? With !fix [1].") == ("With !fix [1].", True)
    mention = "You asked how do I correct a wrong answer? With !fix [1]."
    assert _strip(mention) == (mention, False)


def test_a_line_that_is_only_the_question_is_removed_anywhere() -> None:
    # What the bundled model wrote for `make demo` once chunks kept their paragraphs.
    reply = "Use the chat.\n[1] How do I correct a wrong answer?\nThe answer is: type !fix [2]."
    assert _strip(reply) == ("Use the chat.\nThe answer is: type !fix [2].", True)


@pytest.mark.parametrize(
    "reply",
    [
        "Type !fix followed by the better answer [1].",
        "To correct a wrong answer, type !fix [1].",
        "The answer is in the sources:\n\n- first [1]\n- second [2]",
    ],
)
def test_an_answer_without_an_echo_is_left_exactly_as_written(reply: str) -> None:
    assert _strip(reply) == (reply, False)


def test_an_indonesian_label_is_removed() -> None:
    question = "Kapan Jakarta didirikan?"
    reply = "Pertanyaan: Kapan Jakarta didirikan?\nJawaban: Pada tahun 1527 [1]."
    assert strip_prompt_echo(reply, question=question, prompt_texts=(ANSWER_INSTRUCTION,)) == (
        "Pada tahun 1527 [1].",
        True,
    )


def test_the_base_gemma_echo_of_the_system_prompt_leaves_nothing() -> None:
    # What the untrained Gemma 3 270M wrote for every question of the Indonesian closed-loop run.
    reply = f"{SYSTEM_PROMPT}\n\nSources:\n[1]"
    assert _strip(reply) == ("", True)


def test_citation_markers_stay_with_words_after_an_echo() -> None:
    assert _strip(f"{SYSTEM_PROMPT}\nSources:\nNektar adalah cairan manis [1].") == (
        "Nektar adalah cairan manis [1].",
        True,
    )


PROMPT = (
    "Sources:\n"
    "[1] Rating answers: Rating answers and correcting them Feedback is how tanya learns what your team\n"
    "considers a good answer.\n\n"
    "[2] Leave: Every employee gets 24 days of annual leave a year. Unused days expire in March.\n\n"
    f"Question: {QUESTION}\n{ANSWER_INSTRUCTION}"
)


def _strip_with_sources(text: str) -> tuple[str, bool]:
    return strip_prompt_echo(
        text, question=QUESTION, prompt_texts=(SYSTEM_PROMPT, ANSWER_INSTRUCTION), prompt=PROMPT
    )


def test_a_copied_source_entry_is_an_echo_with_or_without_its_title_and_cut_off() -> None:
    # What the base Gemma wrote after the system prompt, cut by the token limit mid-sentence.
    gemma = f"{SYSTEM_PROMPT}\n\nSources:\n[1] Rating answers and correcting them Feedback is how tanya learns what"
    assert _strip_with_sources(gemma) == ("", True)
    with_title = "[2] Leave: Every employee gets 24 days of annual leave a year.\nUse !fix [1]."
    assert _strip_with_sources(with_title) == ("Use !fix [1].", True)


def test_a_sentence_quoted_from_a_source_is_an_answer_not_an_echo() -> None:
    for answer in (
        "Unused days expire in March [2].",
        "[2] Unused days expire in March.",
        "[2] Every employee gets",  # too short to tell
    ):
        assert _strip_with_sources(answer) == (answer, False)
