"""The text half of ingestion: repair, clean and split one converted document into chunks."""

from __future__ import annotations

from haystack import Pipeline
from haystack.components.preprocessors import DocumentCleaner, DocumentSplitter

from retrieval.config import RetrievalConfig
from retrieval.ingestion.paragraphs import ParagraphWhitespace
from retrieval.ingestion.repair import MojibakeRepairer


def build_preprocessing_pipeline(config: RetrievalConfig) -> Pipeline:
    """
    repair -> cleaner [-> paragraphs] -> splitter: one converted Document in, its chunks out.

    Public so that benchmarks chunk text exactly as ingestion does.
    """
    keep_lines = config.split_by in ("passage", "line")
    pipeline = Pipeline()
    pipeline.add_component("repair", MojibakeRepairer())
    pipeline.add_component(
        "cleaner",
        DocumentCleaner(
            # Blank lines separate passages, and newlines lines; keep them when splitting on them.
            # Otherwise `ParagraphWhitespace` collapses whitespace but keeps the paragraphs apart.
            remove_empty_lines=config.split_by == "line",
            remove_extra_whitespaces=False,
            # HTML comments in Markdown are invisible to readers (often tool metadata).
            remove_regex=r"(?s)<!--.*?-->",
        ),
    )
    pipeline.add_component(
        "splitter",
        DocumentSplitter(
            split_by=config.split_by,  # type: ignore[arg-type]
            split_length=config.split_length,
            split_overlap=config.split_overlap,
        ),
    )
    pipeline.connect("repair.documents", "cleaner.documents")
    if keep_lines:
        pipeline.connect("cleaner.documents", "splitter.documents")
    else:
        pipeline.add_component("paragraphs", ParagraphWhitespace())
        pipeline.connect("cleaner.documents", "paragraphs.documents")
        pipeline.connect("paragraphs.documents", "splitter.documents")
    return pipeline
