"""The quoted passage under each source: the sentence a question is about."""

from __future__ import annotations

import pytest

from retrieval.answering.excerpt import best_excerpt

VPN = (
    "The office network is managed by IT. "
    "To connect from home, start the WireGuard client and choose the office profile. "
    "The office profile is renewed every 90 days. "
    "Printers are on the third floor."
)


def test_the_sentence_with_the_rare_question_words_is_quoted() -> None:
    excerpt = best_excerpt("How do I connect from home?", VPN, max_chars=90)
    assert excerpt == "To connect from home, start the WireGuard client and choose the office profile."


def test_a_word_every_sentence_has_does_not_decide() -> None:
    # "office" is in two of three sentences, "renewed" only in one; "the" and "when" count for nothing.
    text = "Office hours are nine to five. The office is closed on holidays. Passwords are renewed yearly."
    assert best_excerpt("When is the office password renewed?", text, max_chars=40) == (
        "Passwords are renewed yearly."
    )


def test_the_sentences_after_the_best_one_fill_the_room() -> None:
    excerpt = best_excerpt("connect from home", VPN, max_chars=130)
    assert excerpt.startswith("To connect from home")
    assert excerpt.endswith("renewed every 90 days.")
    assert "Printers" not in excerpt, "the next sentence would pass 130 characters"


def test_long_sentences_are_cut_at_a_word_with_an_ellipsis() -> None:
    passage = "Vacation requests " + "must be approved by your manager and HR " * 20 + "."
    excerpt = best_excerpt("vacation requests", passage, max_chars=60)
    assert len(excerpt) <= 60 and excerpt.endswith("…")
    assert excerpt.startswith("Vacation requests must be") and not excerpt[:-1].endswith(" ")


def test_markdown_structure_is_not_quoted() -> None:
    passage = "# Leave\n\n- Annual leave is 25 days per year.\n- Sick leave needs a note after 3 days.\n"
    assert best_excerpt("How many days of sick leave?", passage, max_chars=45) == (
        "Sick leave needs a note after 3 days."
    )


def test_indonesian_text_works_without_a_stop_word_list() -> None:
    passage = (
        "Kopi adalah minuman yang populer di Indonesia. "
        "Kopi gayo berasal dari dataran tinggi Gayo di Aceh. "
        "Banyak orang minum kopi setiap pagi."
    )
    assert best_excerpt("Dari mana asal kopi gayo?", passage, max_chars=60) == (
        "Kopi gayo berasal dari dataran tinggi Gayo di Aceh."
    )


def test_a_chunk_that_starts_mid_sentence_is_marked() -> None:
    excerpt = best_excerpt("approval", "needs approval first. Then it is sent.", max_chars=25)
    assert excerpt == "…needs approval first."


def test_no_shared_words_quotes_the_beginning_and_no_words_quote_nothing() -> None:
    assert best_excerpt("zebra", VPN, max_chars=40) == "The office network is managed by IT."
    assert best_excerpt("anything", "  \n|---|---|\n ") == ""
    with pytest.raises(ValueError, match="max_chars"):
        best_excerpt("q", "text", max_chars=0)


def test_a_sentence_already_quoted_for_a_better_source_is_passed_over() -> None:
    # Two overlapping chunks of one file: the second repeats the first one's last sentences.
    first = "Votes are stored with the prompt. An administrator re-trains tanya from this feedback."
    second = "An administrator re-trains tanya from this feedback. Pairs of votes teach preferences."
    question = "Who re-trains tanya from feedback?"
    quote = best_excerpt(question, first, max_chars=60)
    assert quote == "An administrator re-trains tanya from this feedback."
    assert best_excerpt(question, second, max_chars=60) == quote, "alone, the same sentence wins"
    assert best_excerpt(question, second, max_chars=60, quoted=[quote]) == (
        "Pairs of votes teach preferences."
    )
    assert best_excerpt(question, quote, max_chars=60, quoted=[quote]) == quote, "nothing else is left"
