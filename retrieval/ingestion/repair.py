"""Repairs mis-decoded text (mojibake) before it is cleaned, split and embedded."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import ftfy
from haystack import Document, component, default_from_dict, default_to_dict


def repair_text(text: str) -> str:
    """
    Undoes encoding mix-ups such as UTF-8 read as Windows-1252 ("ğŸ”¥" back to "🔥").

    Quotes and ligatures are left as written: the point is to recover what the author typed, and
    text copied from a chat or a wiki often has deliberate curly quotes.
    """
    return ftfy.fix_text(text, uncurl_quotes=False, fix_latin_ligatures=False, normalization="NFC")


@component
class MojibakeRepairer:
    """
    Runs ftfy over each document's content.

    Exported wiki pages and chat logs are often decoded twice on their way to us; BM25 cannot match
    "ğŸ”¥" or "Ã©" against what people type, and embedders see noise, so repair comes first.
    """

    def __init__(self, *, repair_meta_fields: list[str] | None = None) -> None:
        """
        :param repair_meta_fields: String meta fields repaired too (the title, typically).
        """
        self.repair_meta_fields = list(repair_meta_fields) if repair_meta_fields is not None else ["title"]

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, Any]:
        """
        :param documents: Documents to repair; they are not modified.
        :returns: `documents`: repaired copies, keeping id and meta otherwise unchanged.
        """
        repaired: list[Document] = []
        for doc in documents:
            meta = dict(doc.meta)
            for key in self.repair_meta_fields:
                if isinstance(meta.get(key), str):
                    meta[key] = repair_text(meta[key])
            content = repair_text(doc.content) if doc.content else doc.content
            repaired.append(replace(doc, content=content, meta=meta))
        return {"documents": repaired}

    def to_dict(self) -> dict[str, Any]:
        """Serialises the component for a pipeline definition."""
        return default_to_dict(self, repair_meta_fields=self.repair_meta_fields)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MojibakeRepairer:
        """Rebuilds the component from `to_dict` output."""
        return default_from_dict(cls, data)
