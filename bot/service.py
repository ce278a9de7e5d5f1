"""The application service: one object the CLI and the Slack app share.

It is the only place that wires storage, retrieval and generation together, so the CLI and Slack
record interactions, votes and corrections identically (the training data depends on that).
Components are built lazily: ``tanya status`` should not load a language model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from bot.adapter_sync import AdapterSync
from bot.base_model import ServedBaseGuard, base_model, base_model_spec, is_served, served_prompt_budget
from bot.errors import InputError
from bot.observability import metrics
from bot.outbox import Outbox
from bot.settings import Settings
from retrieval.answering.checks import AnswerChange, Change
from retrieval.answering.excerpt import best_excerpt
from retrieval.config import RetrievalConfig
from storage import ChannelKind, Database
from storage.database import is_unavailable
from storage.feedback import add_correction, set_vote, withdraw_vote
from storage.interactions import NewInteraction, find_by_slack_message, record_interaction
from storage.spool import Spool
from storage.stats import active_adapter, counts

log = logging.getLogger(__name__)

NOT_SAVED_YET = (
    "My database is unavailable just now: this answer will be saved, and 👍/👎 on it counted, "
    "as soon as it is back."
)


@dataclass(frozen=True)
class Source:
    """One numbered source of an answer, with the passage quoted under it."""

    number: int
    id: str
    title: str
    source: str
    score: float | None
    excerpt: str = ""

    def as_dict(self) -> dict[str, Any]:
        """As stored with the interaction: the excerpt is left out, the document holds it."""
        return {"id": self.id, "title": self.title, "source": self.source, "score": self.score}

    def as_json(self) -> dict[str, Any]:
        return {**self.as_dict(), "excerpt": self.excerpt}


@dataclass(frozen=True)
class Answer:
    """An answer as the CLI and Slack show it: text, sources, notices, and the stored interaction's id
    (None while the database is unavailable and the interaction waits in the local spool)."""

    interaction_id: int | None
    question: str
    text: str
    sources: list[Source]
    adapter: str | None
    generator: str
    found: bool
    question_truncated: bool
    seconds: float
    notices: list[str] = field(default_factory=list)
    # What the answer checks changed in the model's reply (``retrieval.answering.checks``).
    changes: list[AnswerChange] = field(default_factory=list)
    # Seconds by stage (retrieval, prompt: reading it up to the first token, completion, total) and the
    # model's token counts, where the generator reports them.
    timings: dict[str, float] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)

    def changed(self, kind: Change) -> bool:
        """Whether a check made a change of this kind (the terminal explains some of them)."""
        return any(change.kind == kind for change in self.changes)

    def as_json(self) -> dict[str, Any]:
        return {
            "answer": self.text,
            "sources": [source.as_json() for source in self.sources],
            "interaction_id": self.interaction_id,
            "adapter": self.adapter,
            "found": self.found,
            "question_truncated": self.question_truncated,
            "notices": list(self.notices),
            "timings": dict(self.timings),
            "usage": dict(self.usage),
        }


def _sources(documents: Sequence[Any], question: str) -> list[Source]:
    sources: list[Source] = []
    for number, document in enumerate(documents, start=1):
        meta = document.meta or {}
        sources.append(
            Source(
                number=number,
                id=document.id,
                title=str(meta.get("title") or Path(str(meta.get("source", document.id))).stem),
                source=str(meta.get("source", "")),
                score=None if document.score is None else round(float(document.score), 6),
                excerpt=best_excerpt(
                    question, document.content or "", quoted=[source.excerpt for source in sources]
                ),
            )
        )
    return sources


class Tanya:
    """The application service: answers, votes, corrections and status, the same for the CLI and Slack.

    It owns the database and builds retrieval and the generator from the settings on first use, and
    keeps the generator on the adapter the registry marks active."""

    def __init__(self, settings: Settings, *, database: Database | None = None) -> None:
        self.settings = settings
        self._database = database
        self._adapters = AdapterSync(server_adapters_dir=settings.server_adapters_dir)
        self._served_base = ServedBaseGuard(settings)
        self._following_server = False  # set once the generator follows the server's own base entry
        self._starter_checked = False

    # -- components -------------------------------------------------------------------------------

    @property
    def database(self) -> Database:
        if self._database is None:
            self.settings.home.mkdir(parents=True, exist_ok=True)
            self._database = Database.open(self.settings.resolved_database_url)
        return self._database

    @cached_property
    def retrieval_config(self):  # type: ignore[no-untyped-def]
        config = RetrievalConfig(
            location=self.settings.document_store, data_dir=self.settings.index_dir, index=self.settings.index
        )
        chosen = {
            "embedder": self.settings.embedder,
            "embedding_engine": self.settings.embedding_engine,
            "top_k": self.settings.top_k,
            "join_mode": self.settings.fusion,
            "weights": self.settings.fusion_weights,
            "candidates": self.settings.candidates,
            "text_analyzer": self.settings.text_analyzer,
            "languages": self.settings.languages,
            "split_length": self.settings.chunk_words,
            "split_overlap": self.settings.chunk_overlap,
            "min_similarity": self.settings.min_similarity,
        }
        overrides = {name: value for name, value in chosen.items() if value is not None}
        try:
            return replace(config, **overrides) if overrides else config
        except ValueError as exc:  # the dataclass explains which value is wrong
            raise InputError(f"retrieval settings: {exc}") from None

    @cached_property
    def document_store(self):  # type: ignore[no-untyped-def]
        from retrieval.stores.document_store import open_document_store  # heavy

        return open_document_store(self.retrieval_config)

    @cached_property
    def generator(self):  # type: ignore[no-untyped-def]
        from retrieval.generation.factory import make_chat_generator  # heavy

        key = self.settings.generator_api_key
        options: dict[str, Any] = {"max_new_tokens": self.settings.max_new_tokens}
        served = is_served(self.settings)
        if served:
            spec = self.settings.generator.strip()
            named = self._served_base.verdict().served_name
            options["model_name"] = self.settings.generator_model or named or base_model(self.settings).label
            options["api_key"] = key.get_secret_value() if key else None
        else:
            spec = base_model_spec(self.settings)
            options["repetition_penalty"] = self.settings.repetition_penalty
        try:
            generator = make_chat_generator(spec, model_cache_dir=self.settings.models_dir, **options)
        except ValueError as exc:  # an unknown model name: the message says what is accepted
            raise InputError(str(exc)) from None
        if served:
            self._follow_server(generator)
        return generator

    @cached_property
    def rag(self):  # type: ignore[no-untyped-def]
        from retrieval.answering.pipeline import RagPipeline  # heavy
        from retrieval.search.hybrid import build_search_pipeline, search_inputs  # heavy

        pipeline = RagPipeline(
            search_pipeline=build_search_pipeline(store=self.document_store, config=self.retrieval_config),
            search_inputs=search_inputs,
            generator=self.generator,
            max_question_chars=self.settings.max_question_chars,
        )
        pipeline.warm_up()
        return pipeline

    @cached_property
    def searcher(self):  # type: ignore[no-untyped-def]
        from retrieval.search.hybrid import HybridSearcher  # heavy

        searcher = HybridSearcher(store=self.document_store, config=self.retrieval_config)
        searcher.warm_up()
        return searcher

    @cached_property
    def outbox(self) -> Outbox:
        """Work the database could not take, kept on disk under the data directory (``bot.outbox``)."""
        outbox = Outbox(Spool(self.settings.resolved_spool_path), self.database)
        outbox.register("interaction", self._apply_spooled_interaction)
        return outbox

    # -- use cases --------------------------------------------------------------------------------

    def ingest(self, paths: Sequence[Path], progress: Callable[[Any], None] | None = None):  # type: ignore[no-untyped-def]
        from retrieval.ingestion.ingest import Ingestor  # heavy

        return Ingestor(store=self.document_store, config=self.retrieval_config, progress=progress).run(
            list(paths)
        )

    def search(self, question: str, top_k: int | None = None) -> list[Source]:
        question = self._validate(question)
        return _sources(
            self.searcher.search(question[: self.settings.max_question_chars], top_k=top_k), question
        )

    def ask(
        self,
        question: str,
        *,
        origin: ChannelKind = ChannelKind.cli,
        user_id: str | None = None,
        team_id: str | None = None,
        channel_id: str | None = None,
        thread_ts: str | None = None,
        message_ts: str | None = None,
        history: Sequence[tuple[str, str]] = (),
        streaming_callback: Callable[[Any], None] | None = None,
    ) -> Answer:
        """Answer, and record the interaction before returning so a vote can never miss its row.

        Every call is counted by outcome and its stages timed (``bot.observability.metrics``) here, where the CLI and
        Slack meet, so both are measured alike without retrieval knowing about Prometheus.
        """
        with metrics.counting_failures(invalid=(InputError,)):
            question = self._validate(question)
            rag = self.rag  # built first: it warms the generator, and an adapter loads only into a warm one
            self._sync_adapter()
            started = time.perf_counter()
            result = rag.answer(question, history=list(history), streaming_callback=streaming_callback)
            seconds = time.perf_counter() - started
            sources = _sources(result.documents, question)
            interaction_id = self._record(
                NewInteraction(
                    question=question,
                    answer=result.text,
                    prompt=result.prompt_text,
                    messages=[message.to_dict() for message in result.messages],
                    documents=[source.as_dict() for source in sources],
                    found=result.found,
                    generator=result.generator,
                    adapter=result.adapter,
                    latency_ms=int(seconds * 1000),
                    retrieval_ms=int(result.timings.get("retrieval", 0.0) * 1000),
                    origin=origin,
                    user_id=user_id,
                    team_id=team_id,
                    channel_id=channel_id,
                    thread_ts=thread_ts,
                    message_ts=message_ts,
                )
            )
        metrics.observe_answer("answered" if result.found else "not_found", result.timings, seconds)
        metrics.set_active_adapter(result.adapter)
        notices = [] if interaction_id is not None else [NOT_SAVED_YET]
        if result.question_truncated:
            notices.append(
                f"Your question was {len(question):,} characters long, so its middle was cut: "
                f"the model read its first and last parts, {self.settings.max_question_chars:,} characters in all."
            )
        for change in result.changes:
            if change.kind != Change.UNKNOWN_CITATIONS:
                continue
            notices.append(
                f"The answer cites {change.detail}, but there {'is' if len(sources) == 1 else 'are'} only "
                f"{len(sources)} source{'' if len(sources) == 1 else 's'}: that part is made up. "
                "Check it against the quotes under the sources."
            )
        return Answer(
            interaction_id=interaction_id,
            question=question,
            text=result.text,
            sources=sources,
            adapter=result.adapter,
            generator=result.generator,
            found=result.found,
            question_truncated=result.question_truncated,
            seconds=seconds,
            notices=notices,
            changes=list(result.changes),
            timings={
                "retrieval": round(result.timings.get("retrieval", 0.0), 4),
                **(result.reply_meta.get("timings") or {}),
                "total": round(seconds, 4),
            },
            usage=dict(result.reply_meta.get("usage") or {}),
        )

    def rate(self, interaction_id: int, *, user_id: str, up: bool, source: str) -> None:
        with self.database.session() as session:
            set_vote(
                session, interaction_id=interaction_id, user_id=user_id, value=1 if up else -1, source=source
            )
        metrics.VOTES.labels(direction="up" if up else "down", source=metrics.label(source)).inc()

    def unrate(self, interaction_id: int, *, user_id: str, up: bool | None = None) -> bool:
        value = None if up is None else (1 if up else -1)
        with self.database.session() as session:
            removed = withdraw_vote(session, interaction_id=interaction_id, user_id=user_id, value=value)
        if removed:
            metrics.VOTES_WITHDRAWN.inc()
        return removed

    def correct(self, interaction_id: int, *, user_id: str, text: str, source: str) -> int:
        with self.database.session() as session:
            correction_id = add_correction(
                session, interaction_id=interaction_id, user_id=user_id, text=text, source=source
            ).id
        metrics.CORRECTIONS.labels(source=metrics.label(source)).inc()
        return correction_id

    def status(self) -> dict[str, Any]:
        from retrieval.stores.document_store import count_documents  # heavy

        with self.database.session() as session:
            self._install_starter(session)
            stats = counts(session).as_dict()
            adapter = active_adapter(session)
            if adapter is not None and (adapter.lineage or {}).get("starter"):
                stats["active_adapter"] = f"{adapter.name} (the starter adapter shipped with tanya)"
        stats["documents"] = count_documents(self.document_store)
        stats["database"] = self.database.description
        stats["document_store"] = self.settings.document_store or str(self.settings.index_dir)
        base = base_model(self.settings)
        stats["base_model"] = base.label
        if is_served(self.settings):
            stats["generator"] = self.settings.generator
            stats["served_base"] = self._served_base.describe()
        else:
            stats["generator"] = f"bundled {base.aliases[-1]}" if base.aliases else str(base.folder)
        return stats

    # -- internals --------------------------------------------------------------------------------

    def _record(self, new: NewInteraction) -> int | None:
        """Save the interaction; when the database is unavailable, spool it and return None.

        The answer was written (seconds to minutes of generation) and is about to be shown: losing it
        because the database blinked would throw away both the answer and the votes people give it.
        """
        try:
            with self.database.session() as session:
                return record_interaction(session, new).id
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            payload = {**asdict(new), "origin": new.origin.value}
            payload.pop("extra", None)
            where = f"{new.channel_id}:{new.message_ts}" if new.message_ts else f"local:{time.time_ns()}"
            self.outbox.put(f"interaction:{where}", "interaction", payload)
            return None

    def _apply_spooled_interaction(self, payload: dict[str, Any]) -> None:
        """Save a spooled interaction, once: a Slack answer already saved (by an earlier drain) is skipped."""
        new = NewInteraction(**{**payload, "origin": ChannelKind(payload.get("origin", "cli"))})
        with self.database.session() as session:
            if new.channel_id and new.message_ts:
                if find_by_slack_message(session, new.channel_id, new.message_ts) is not None:
                    return
            record_interaction(session, new)

    @staticmethod
    def _validate(question: str) -> str:
        question = (question or "").strip()
        if not question:
            raise InputError("The question is empty: type what you want to know.")
        return question

    def _install_starter(self, session: Any) -> None:
        """Once per process: register the starter adapter shipped for the bundled model (``alignment.starter``)."""
        if self._starter_checked or not self.settings.starter_adapter:
            return
        from alignment.starter import install_starter  # heavy
        from retrieval.generation.bundled_models import BUNDLED_MODELS, bundled_model  # heavy

        spec = base_model_spec(self.settings)
        if not is_served(self.settings) and (spec in BUNDLED_MODELS or not spec):
            try:
                with session.begin_nested():
                    install_starter(session, self.settings.adapters_dir, bundled_model(spec).name)
            except Exception as exc:
                if is_unavailable(exc):
                    raise  # tried again with the next answer
                # A disk that cannot take the copy must not cost anyone an answer: the bare model answers.
                log.warning("could not install the starter adapter (%s): the bare model answers", exc)
        self._starter_checked = True

    def _follow_server(self, generator: Any) -> bool:
        """Once the server has said it serves the base: ask for that entry by name, and keep prompts within
        its context (``served_prompt_budget``). Whether it has; until then no adapter goes near it."""
        verdict = self._served_base.verdict()
        if verdict.model is None or self._following_server:
            return verdict.model is not None
        if self.settings.generator_model is None:
            generator.model = verdict.model.id
        budget = served_prompt_budget(self.settings, verdict.model)
        if budget is not None:
            generator.max_prompt_tokens, generator.tokenizer_path = budget
        self._following_server = True
        return True

    def _sync_adapter(self) -> None:
        """Hot-swap: bring the generator onto the adapter the registry marks active (``bot.adapter_sync``)."""
        generator = self.generator
        if not hasattr(generator, "load_adapter"):
            return
        if is_served(self.settings) and not self._follow_server(generator):
            return  # another base, or not known yet: no adapter is loaded or activated on it
        try:
            with self.database.session() as session:
                self._install_starter(session)
                adapter = active_adapter(session)
                wanted = (adapter.name, adapter.path, adapter.sha256) if adapter else None
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            log.warning("the database is unavailable: answering with the adapter already loaded")
            return
        self._adapters.sync(generator, wanted)
