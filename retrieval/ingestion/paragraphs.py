"""Collapses whitespace inside paragraphs and keeps the blank line between them.

Haystack's `DocumentCleaner` collapses every run of whitespace, blank lines included, into one space. A
Markdown heading then runs into the paragraph under it ("Corrections When an answer is wrong, …"), and
so does a list into the sentence before it; the quote tanya shows under a source (`retrieval/answering/excerpt.py`,
which ends a sentence at a line break) started with the heading. Only the blank lines are kept: a single
line break inside a paragraph is usually a hard wrap in the middle of a sentence, and is joined.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from haystack import Document, component

_BLANK_LINES = re.compile(r"\n[^\S\n\f]*\n\s*")
PARAGRAPH_BREAK = "\n\n"


def normalize_paragraphs(text: str) -> str:
    """`text` with single spaces inside each paragraph and one blank line between paragraphs.

    Form feeds (page breaks from PDFs) are kept: the splitter counts them for page numbers.
    """
    pages = []
    for page in text.split("\f"):
        paragraphs = (" ".join(block.split()) for block in _BLANK_LINES.split(page))
        pages.append(PARAGRAPH_BREAK.join(paragraph for paragraph in paragraphs if paragraph))
    return "\f".join(pages)


@component
class ParagraphWhitespace:
    """Normalizes whitespace in each document's text, paragraph by paragraph (see the module docstring)."""

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, Any]:
        """The documents with their text normalized; documents without text pass unchanged."""
        cleaned = [
            # An empty id makes Haystack derive it again from the new content, as its cleaner does.
            replace(document, content=normalize_paragraphs(document.content), id="")
            if document.content is not None
            else document
            for document in documents
        ]
        return {"documents": cleaned}
