from __future__ import annotations

from retrieval.answering.history_copy import copied_from_earlier

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
