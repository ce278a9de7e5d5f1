"""The answer checks: echoed prompt words removed and nothing else, the citation fallback, unknown
citations, and answers copied from earlier in the thread."""

from __future__ import annotations

import pytest

from retrieval.answering.checks import (
    NO_ANSWER_TEXT,
    NOT_IN_DOCUMENTS,
    AnswerChange,
    Change,
    check_answer,
    copied_from_earlier,
    says_not_in_documents,
    strip_prompt_echo,
    unknown_citations,
)
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


# -- copied from earlier in the thread -------------------------------------------------------------

EARLIER = "Tanya's answers and corrections are stored in tanya's database together with the prompt [1]."
SOURCES = (
    "Sources:\n[1] Adding documents: Supported formats are Markdown, PDF and HTML.\nQuestion: Which formats?"
)


def test_a_run_carried_over_from_an_earlier_answer_is_found() -> None:
    # What the bundled model wrote for an unrelated follow-up: the previous answer, slightly changed.
    text = "[6] [1]: Tanya's answers and corrections are stored in tanya.db, so that you can check it."
    assert (
        copied_from_earlier(text, [EARLIER], sources=SOURCES)
        == "tanya s answers and corrections are stored in"
    )


def test_repeating_what_the_current_sources_say_is_not_a_copy() -> None:
    earlier = "Supported formats are Markdown, PDF and HTML [1]."
    assert (
        copied_from_earlier("Supported formats are Markdown, PDF and HTML [2].", [earlier], sources=SOURCES)
        == ""
    )


def test_short_shared_phrases_case_and_citations_do_not_count() -> None:
    earlier = "You can find it in the handbook [2]."
    assert (
        copied_from_earlier("You can find it in [1] the wiki, section 4.", [earlier], sources=SOURCES) == ""
    )
    assert (
        copied_from_earlier(
            "TANYA'S ANSWERS [3] AND CORRECTIONS ARE STORED IN TANYA.DB", [EARLIER], sources=""
        )
        != ""
    )


def test_no_earlier_answers_or_a_short_reply_means_no_copy() -> None:
    assert copied_from_earlier(EARLIER, [], sources="") == ""
    assert copied_from_earlier("Yes [1].", [EARLIER], sources="") == ""


# -- check_answer: the whole list of changes -------------------------------------------------------


def test_a_clean_cited_reply_is_left_as_it_is() -> None:
    checked = check_answer(
        "Type !fix and the better answer [2].", question=QUESTION, prompt="", source_count=3
    )
    assert (checked.text, checked.changes) == ("Type !fix and the better answer [2].", [])


def test_an_echo_with_nothing_else_becomes_the_no_answer_text() -> None:
    reply = f"{SYSTEM_PROMPT}\nQuestion: {QUESTION}"
    checked = check_answer(reply, question=QUESTION, prompt="", source_count=2)
    assert checked.text == NO_ANSWER_TEXT
    assert [change.kind for change in checked.changes] == [Change.ECHO_REMOVED, Change.NO_ANSWER]


def test_the_changes_are_listed_in_the_order_they_were_made() -> None:
    reply = f"Question: {QUESTION}\nType !fix followed by the answer [7]."
    checked = check_answer(reply, question=QUESTION, prompt="", source_count=3)
    assert checked.text == "Type !fix followed by the answer [7]. [1]"
    assert checked.changes == [
        AnswerChange(Change.ECHO_REMOVED),
        AnswerChange(Change.CITATION_ADDED),
        AnswerChange(Change.UNKNOWN_CITATIONS, "[7]"),
    ]


@pytest.mark.parametrize(
    ("reply", "sources", "expected"),
    [
        ("Up to 150 euros.", 2, "Up to 150 euros. [1]"),
        ("See [2] and [1].", 2, "See [2] and [1]."),
        ("See [1, 2].", 2, "See [1, 2]."),  # several sources in one marker cite each of them
        ("Nothing to cite.", 0, "Nothing to cite."),
    ],
)
def test_the_citation_fallback(reply: str, sources: int, expected: str) -> None:
    checked = check_answer(reply, question=QUESTION, prompt="", source_count=sources)
    assert checked.text == expected
    assert (AnswerChange(Change.CITATION_ADDED) in checked.changes) is (expected != reply)


def test_unknown_citations() -> None:
    assert unknown_citations("a [2] b [0] c [7] d [7] e [1]", 3) == [0, 7]
    assert unknown_citations("a [1; 4]", 3) == [4]
    assert unknown_citations("a [1]", 0) == [1] and unknown_citations("none", 2) == []


@pytest.mark.parametrize(
    "reply",
    [*NOT_IN_DOCUMENTS.values(), "dokumen tidak menyebutkan hal ini [2]", "The documents do not say. [1]"],
)
def test_the_honest_not_in_the_documents_reply_gets_no_citation_appended(reply: str) -> None:
    assert says_not_in_documents(reply)
    checked = check_answer(
        reply, question="Kapan?", prompt="Sources:\n[1] a: b\n\nQuestion: Kapan?", source_count=3
    )
    assert checked.text == reply and checked.changes == []


def test_an_answer_that_only_mentions_documents_is_not_an_abstention() -> None:
    assert not says_not_in_documents("The documents say it was 1987 [1].")
    checked = check_answer("The documents say it was 1987.", question="When?", prompt="", source_count=2)
    assert [change.kind for change in checked.changes] == [Change.CITATION_ADDED]
