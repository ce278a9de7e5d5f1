"""Question in, grounded answer out: the search pipeline extended into one Haystack pipeline.

```
search components ─▶ relevance ─▶ clock ─▶ router ──documents──▶ prompt_builder ─▶ llm
                                            └──not_found──▶ (the not-found text, no generation)
```

When retrieval finds nothing relevant the router skips generation: a small model asked to answer without
sources invents an answer, and an honest "not found" is what the user can act on (rephrase, or add the
document). The clock stamps the moment retrieval finished so that retrieval and generation times can be
reported separately from a single pipeline run.

What the model wrote then goes through the answer checks (``retrieval.answering.checks``): words copied
from the prompt removed, a ``[1]`` appended when it cites nothing, unknown citations noted. Each answer
carries the list of what they changed. In a thread, an answer that repeats an earlier answer instead of
answering the new question is written again without the thread's earlier turns: an answer that ignores
the thread is better than one that ignores the question.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from haystack import Document, Pipeline, component
from haystack.components.routers import ConditionalRouter
from haystack.dataclasses import ChatMessage, StreamingChunk

from retrieval.answering.checks import (
    NO_ANSWER_TEXT,
    AnswerChange,
    Change,
    check_answer,
    copied_from_earlier,
)
from retrieval.answering.prompt import bound_history, make_prompt_builder, messages_to_json, truncate_question

NOT_FOUND_TEXT = (
    "I couldn't find anything about that in the documents I have. "
    "Try rephrasing the question, or name the document, project or term you mean."
)
SEARCH_OUTPUT = "relevance"


@dataclass
class RagAnswer:
    """One answer and everything needed to store it, show its sources and learn from votes on it."""

    text: str
    documents: list[Document]
    messages: list[ChatMessage]
    prompt_text: str
    generator: str
    adapter: str | None
    found: bool
    question_truncated: bool
    timings: dict[str, float]
    # What the answer checks changed in the model's reply, in order (``retrieval.answering.checks``).
    changes: list[AnswerChange] = field(default_factory=list)
    reply_meta: dict[str, Any] = field(default_factory=dict)

    def changed(self, kind: Change) -> bool:
        """Whether a check made a change of this kind."""
        return any(change.kind == kind for change in self.changes)


@component
class Clock:
    """Passes documents through and notes when they arrived (the end of retrieval)."""

    @component.output_types(documents=list[Document], at=float)
    def run(self, documents: list[Document]) -> dict[str, Any]:
        """Returns the documents unchanged and a `time.perf_counter()` stamp."""
        return {"documents": documents, "at": time.perf_counter()}


def _describe(generator: Any) -> str:
    return str(
        getattr(generator, "model_name", None)
        or getattr(generator, "model", None)
        or type(generator).__name__
    )


class RagPipeline:
    """Answers a question from the documents the search pipeline finds, or says that it found nothing."""

    def __init__(
        self,
        *,
        search_pipeline: Pipeline,
        search_inputs: Callable[[str, int | None], dict[str, dict[str, Any]]],
        generator: Any,
        max_question_chars: int = 4000,
        not_found_text: str = NOT_FOUND_TEXT,
        max_history_turns: int = 3,
    ) -> None:
        """
        :param search_pipeline: the query-side pipeline; its `relevance` component outputs the documents
            to answer from, best first, and an empty list when nothing relevant was found. It is extended
            in place with `clock`, `router`, `prompt_builder` and `llm`.
        :param search_inputs: builds the search components' run inputs from (question, top_k).
        :param generator: a chat generator component (`LocalChatGenerator`, `ServedChatGenerator`, ...).
        :param max_question_chars: longer questions are shortened (with a notice) before search and prompt.
        :param not_found_text: the answer when nothing relevant was found.
        :param max_history_turns: how many earlier (user, assistant) turns of a thread the prompt includes.
        """
        if SEARCH_OUTPUT not in search_pipeline.graph.nodes:
            raise ValueError(f"the search pipeline has no component named {SEARCH_OUTPUT!r}")
        self.search_inputs = search_inputs
        self.generator = generator
        self.max_question_chars = max_question_chars
        self.not_found_text = not_found_text
        self.max_history_turns = max_history_turns
        routes = [
            {
                "condition": "{{ documents | length > 0 }}",
                "output": "documents",
                "output_passthrough": True,
                "output_name": "documents",
                "output_type": list[Document],
            },
            {
                "condition": "{{ documents | length == 0 }}",
                "output": "not_found_text",
                "output_passthrough": True,
                "output_name": "not_found",
                "output_type": str,
            },
        ]
        pipeline = search_pipeline
        pipeline.add_component("clock", Clock())
        pipeline.add_component("router", ConditionalRouter(routes=routes))
        pipeline.add_component("prompt_builder", make_prompt_builder())
        pipeline.add_component("llm", generator)
        pipeline.connect(f"{SEARCH_OUTPUT}.documents", "clock.documents")
        pipeline.connect("clock.documents", "router.documents")
        pipeline.connect("router.documents", "prompt_builder.documents")
        pipeline.connect("prompt_builder.prompt", "llm.messages")
        self.pipeline = pipeline

    def warm_up(self) -> None:
        """Loads the models of every component (embedder, generator) ahead of the first question."""
        self.pipeline.warm_up()

    def answer(
        self,
        question: str,
        *,
        history: Sequence[tuple[str, str]] = (),
        streaming_callback: Callable[[StreamingChunk], None] | None = None,
        top_k: int | None = None,
    ) -> RagAnswer:
        """Answers `question`; `history` is the thread so far as (user, assistant) pairs, oldest first."""
        if not question or not question.strip():
            raise ValueError("question must not be empty")
        turns = bound_history(history, max_turns=self.max_history_turns)
        result = self._answer_once(question, turns, streaming_callback, top_k)
        # tanya's own fixed texts repeat by design; only what the model wrote counts.
        earlier = [answer for _, answer in turns if answer not in (self.not_found_text, NO_ANSWER_TEXT)]
        copied = ""
        if earlier and result.found and result.messages:
            copied = copied_from_earlier(result.text, earlier, sources=result.messages[-1].text or "")
        if copied:
            # Not streamed: what streamed already is replaced by the final text (Slack) or shown again
            # under a note (the CLI).
            again = self._answer_once(question, [], None, top_k)
            timings = {
                key: result.timings.get(key, 0.0) + again.timings.get(key, 0.0) for key in again.timings
            }
            changes = [AnswerChange(Change.HISTORY_DROPPED, copied), *again.changes]
            return replace(again, changes=changes, timings=timings)
        return result

    def _answer_once(
        self,
        question: str,
        history: list[tuple[str, str]],
        streaming_callback: Callable[[StreamingChunk], None] | None,
        top_k: int | None,
    ) -> RagAnswer:
        started = time.perf_counter()
        question, truncated = truncate_question(question, self.max_question_chars)
        data: dict[str, dict[str, Any]] = {
            name: dict(inputs) for name, inputs in self.search_inputs(question, top_k).items()
        }
        data["router"] = {"not_found_text": self.not_found_text}
        data["prompt_builder"] = {"question": question, "history": history}
        if streaming_callback is not None:
            data["llm"] = {"streaming_callback": streaming_callback}
        result = self.pipeline.run(data, include_outputs_from={"clock", "router", "prompt_builder", "llm"})
        finished = time.perf_counter()
        retrieved_at = result.get("clock", {}).get("at", finished)
        timings = {
            "retrieval": retrieved_at - started,
            "generation": finished - retrieved_at,
            "total": finished - started,
        }
        documents = list(result.get("clock", {}).get("documents", []))
        replies = result.get("llm", {}).get("replies", [])
        if not replies:
            return RagAnswer(
                text=self.not_found_text,
                documents=documents,
                messages=[],
                prompt_text="",
                generator=_describe(self.generator),
                adapter=None,
                found=False,
                question_truncated=truncated,
                timings={**timings, "generation": 0.0},
            )
        reply = replies[0]
        messages = list(result["prompt_builder"]["prompt"])
        checked = check_answer(
            reply.text or "",
            question=question,
            prompt=(messages[-1].text or "") if messages else "",
            source_count=len(documents),
        )
        return RagAnswer(
            text=checked.text,
            documents=documents,
            messages=messages,
            prompt_text=messages_to_json(messages),
            generator=str(reply.meta.get("model") or _describe(self.generator)),
            adapter=reply.meta.get("adapter"),
            found=True,
            question_truncated=truncated,
            timings=timings,
            changes=checked.changes,
            reply_meta=dict(reply.meta),
        )
