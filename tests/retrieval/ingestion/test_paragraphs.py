from __future__ import annotations

from haystack import Document

from retrieval.answering.excerpt import best_excerpt
from retrieval.ingestion.paragraphs import ParagraphWhitespace, normalize_paragraphs


def test_paragraphs_stay_apart_and_hard_wraps_are_joined() -> None:
    text = "Corrections\n\n\n  When an answer is wrong,   write\nthe right one.  \n \nNext   paragraph.\n"
    assert (
        normalize_paragraphs(text)
        == "Corrections\n\nWhen an answer is wrong, write the right one.\n\nNext paragraph."
    )


def test_page_breaks_survive_for_page_numbers() -> None:
    assert normalize_paragraphs("Page one\n\ntext \f\n\nPage  two") == "Page one\n\ntext\fPage two"


def test_the_component_gives_new_ids_and_keeps_meta() -> None:
    document = Document(content="Title\n\n\n\nBody  text.", meta={"source": "a.md"})
    (cleaned,) = ParagraphWhitespace().run(documents=[document])["documents"]
    assert cleaned.content == "Title\n\nBody text." and cleaned.meta == {"source": "a.md"}
    assert cleaned.id != document.id
    assert ParagraphWhitespace().run(documents=[Document(content=None)])["documents"][0].content is None


def test_a_quote_no_longer_starts_with_the_heading_above_it() -> None:
    chunk = normalize_paragraphs("Corrections\n\nWhen an answer is wrong, write the right one with !fix.")
    assert best_excerpt("What do I do when an answer is wrong?", chunk).startswith("When an answer is wrong")
