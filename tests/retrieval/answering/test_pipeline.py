"""RagPipeline on a small search pipeline built from real Haystack components, with a scripted generator
and with the bundled model; then on the real hybrid search pipeline."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from haystack import Document, Pipeline, component
from haystack.components.generators.chat import MockChatGenerator
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
from haystack.dataclasses import StreamingChunk
from haystack.document_stores.in_memory import InMemoryDocumentStore

from retrieval.answering.checks import Change
from retrieval.answering.pipeline import NOT_FOUND_TEXT, RagPipeline
from retrieval.answering.prompt import cited_numbers
from retrieval.generation.local import LocalChatGenerator

TEAM_DOCS = [
    Document(
        id="expenses",
        content="A hotel night in Berlin is reimbursed up to 150 euros. Upload hotel receipts within 30 days.",
        meta={"title": "Expense policy"},
    ),
    Document(
        id="travel",
        content="Book the hotel for a trip to Berlin through the Travelwise portal.",
        meta={"title": "Travel booking"},
    ),
    Document(
        id="oncall",
        content="The on-call engineer acknowledges pages within 15 minutes and swaps shifts in #oncall.",
        meta={"title": "On-call rotation"},
    ),
]
HOTEL_QUESTION = "How much is a hotel night in Berlin reimbursed?"


@component
class MinimumScore:
    """Stands in for the relevance gate: keeps documents whose BM25 score reaches a floor."""

    def __init__(self, *, minimum: float) -> None:
        self.minimum = minimum

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        return {"documents": [doc for doc in documents if (doc.score or 0.0) >= self.minimum]}


def search_pipeline() -> Pipeline:
    store = InMemoryDocumentStore()
    store.write_documents(TEAM_DOCS)
    pipeline = Pipeline()
    pipeline.add_component("bm25_retriever", InMemoryBM25Retriever(document_store=store, top_k=3))
    pipeline.add_component("relevance", MinimumScore(minimum=1.0))
    pipeline.connect("bm25_retriever.documents", "relevance.documents")
    return pipeline


def search_inputs(question: str, top_k: int | None) -> dict[str, dict[str, Any]]:
    return {"bm25_retriever": {"query": question, **({"top_k": top_k} if top_k else {})}}


def scripted(reply: str) -> tuple[RagPipeline, MockChatGenerator]:
    generator = MockChatGenerator(responses=reply)
    rag = RagPipeline(search_pipeline=search_pipeline(), search_inputs=search_inputs, generator=generator)
    rag.warm_up()
    return rag, generator


def test_one_pipeline_runs_search_routing_prompt_and_generation() -> None:
    rag, _ = scripted("150 euros [1].")
    names = {name for name, _ in rag.pipeline.walk()}
    assert names == {"bm25_retriever", "relevance", "clock", "router", "prompt_builder", "llm"}


def test_an_answer_keeps_sources_in_retrieval_order_and_records_the_exact_prompt() -> None:
    rag, generator = scripted("Up to 150 euros per night [1].")
    expected = search_pipeline().run(search_inputs(HOTEL_QUESTION, None))["relevance"]["documents"]
    answer = rag.answer(HOTEL_QUESTION)
    assert answer.found and answer.text == "Up to 150 euros per night [1]." and not answer.changes
    assert [doc.id for doc in answer.documents] == [doc.id for doc in expected]
    assert answer.documents[0].id == "expenses"
    user = answer.messages[-1].text
    assert user.index("[1] Expense policy:") < user.index("[2] ")
    assert f"Question: {HOTEL_QUESTION}" in user
    assert json.loads(answer.prompt_text) == [
        {"role": m.role.value, "content": m.text} for m in answer.messages
    ]
    assert (answer.generator, answer.adapter, answer.question_truncated) == ("mock-model", None, False)
    assert set(answer.timings) == {"retrieval", "generation", "total"}
    assert all(value >= 0 for value in answer.timings.values())
    assert answer.timings["retrieval"] + answer.timings["generation"] == pytest.approx(
        answer.timings["total"]
    )
    assert generator._call_count == 1


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Up to 150 euros per night.", "Up to 150 euros per night. [1]"),
        ("Up to 150 euros [9].", "Up to 150 euros [9]. [1]"),  # [9] names no source that was given
        ("See [2] and [1].", "See [2] and [1]."),
    ],
)
def test_a_reply_without_a_valid_citation_gets_the_top_source(reply: str, expected: str) -> None:
    answer = scripted(reply)[0].answer(HOTEL_QUESTION)
    assert answer.text == expected
    assert answer.changed(Change.CITATION_ADDED) is (expected != reply)


def test_nothing_relevant_skips_generation() -> None:
    rag, generator = scripted("should never be said")
    chunks: list[StreamingChunk] = []
    answer = rag.answer("zebra migration patterns?", streaming_callback=chunks.append)
    assert not answer.found and answer.text == NOT_FOUND_TEXT
    assert (answer.documents, answer.messages, answer.prompt_text) == ([], [], "")
    assert generator._call_count == 0 and chunks == []
    assert answer.timings["generation"] == 0.0


def test_history_streaming_and_top_k_reach_the_components() -> None:
    rag, _ = scripted("Within 15 minutes [1].")
    chunks: list[StreamingChunk] = []
    answer = rag.answer(
        "And how fast must the on-call engineer acknowledge pages?",
        history=[("Who is on call?", "Ana this week [1].")],
        streaming_callback=chunks.append,
        top_k=1,
    )
    assert [m.text for m in answer.messages[1:3]] == ["Who is on call?", "Ana this week [1]."]
    assert len(answer.documents) == 1 and answer.documents[0].id == "oncall"
    assert "".join(chunk.content for chunk in chunks) == "Within 15 minutes [1]."


def test_a_giant_question_is_shortened_not_fatal() -> None:
    rag, _ = scripted("150 euros [1].")
    answer = rag.answer(HOTEL_QUESTION + " " + "x" * 40_000)
    assert answer.question_truncated and answer.found
    question_line = answer.messages[-1].text.split("Question: ", 1)[1]
    assert len(question_line) < 4200


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="relevance"):
        RagPipeline(search_pipeline=Pipeline(), search_inputs=search_inputs, generator=MockChatGenerator())
    with pytest.raises(ValueError, match="empty"):
        scripted("x")[0].answer("   ")


@pytest.fixture
def model_rag(local_generator: LocalChatGenerator) -> Iterator[RagPipeline]:
    rag = RagPipeline(
        search_pipeline=search_pipeline(), search_inputs=search_inputs, generator=local_generator
    )
    rag.warm_up()
    yield rag
    rag.pipeline.remove_component("llm")  # frees the shared generator for another pipeline


@pytest.mark.model
def test_the_bundled_model_answers_with_a_citation_while_streaming(model_rag: RagPipeline) -> None:
    chunks: list[StreamingChunk] = []
    answer = model_rag.answer(HOTEL_QUESTION, streaming_callback=chunks.append)
    assert answer.found and answer.documents[0].id == "expenses"
    assert any(1 <= n <= len(answer.documents) for n in cited_numbers(answer.text))
    streamed = "".join(chunk.content for chunk in chunks).strip()
    assert streamed and answer.text.startswith(streamed)
    assert answer.generator == "smollm2-135m-instruct" and answer.adapter is None
    assert answer.reply_meta["usage"]["prompt_tokens"] > 50
    assert answer.timings["generation"] > 0


@pytest.mark.model
def test_the_real_hybrid_search_pipeline_feeds_the_generator(
    local_generator: LocalChatGenerator, docs_dir: Path, config: Any
) -> None:
    from retrieval.ingestion.ingest import Ingestor
    from retrieval.search.hybrid import build_search_pipeline
    from retrieval.search.hybrid import search_inputs as real_search_inputs
    from retrieval.stores.document_store import open_document_store

    store = open_document_store(config)
    Ingestor(store=store, config=config).run([docs_dir])
    rag = RagPipeline(
        search_pipeline=build_search_pipeline(store=store, config=config),
        search_inputs=real_search_inputs,
        generator=local_generator,
    )
    try:
        rag.warm_up()
        answer = rag.answer(HOTEL_QUESTION)
        assert answer.found and Path(answer.documents[0].meta["source"]).name == "expenses.md"
        assert any(1 <= n <= len(answer.documents) for n in cited_numbers(answer.text))
        assert json.loads(answer.prompt_text)[-1]["content"].startswith("Sources:\n[1] ")

        nothing = rag.answer("What is the capital of Mongolia?")
        assert not nothing.found and nothing.text == NOT_FOUND_TEXT and nothing.reply_meta == {}
    finally:
        rag.pipeline.remove_component("llm")
