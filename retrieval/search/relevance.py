"""Decides whether a search found anything worth answering from."""

from __future__ import annotations

from typing import Any, Literal

from haystack import Document, component, default_from_dict, default_to_dict

DenseScoreScale = Literal["cosine", "unit_interval"]


@component
class RelevanceFilter:
    """
    Passes the fused documents through, or nothing when the question is off-topic.

    Fusion always returns *something*; a generator handed unrelated passages invents an answer.
    The best dense similarity is the most reliable "is this about our documents at all" signal
    measured on the benchmark sets (BM25 scores are unbounded and fused scores are rank-based),
    so it decides, against a threshold calibrated per embedder (see docs/retrieval.md). One
    second signal may rescue a question just under the threshold: keyword and vector search
    ranking each other's best chunk near the top, which off-topic questions rarely do (measured
    beside the threshold). It compares ids, not scores, so it holds on every store.
    """

    def __init__(
        self,
        *,
        min_similarity: float,
        dense_score_scale: DenseScoreScale = "cosine",
        top_k: int | None = None,
        agreement_margin: float = 0.0,
        agreement_depth: int = 1,
    ) -> None:
        """
        :param min_similarity: Lowest acceptable cosine similarity of the best dense match.
        :param dense_score_scale: How the embedding retriever reports similarity: `cosine` (in-memory
            store, -1..1) or `unit_interval` (Elasticsearch, which reports (1 + cosine) / 2).
        :param top_k: Keep at most this many documents; None keeps all it receives.
        :param agreement_margin: A question up to this much under `min_similarity` still passes
            when keyword and vector search agree (see `agreement_depth`); 0 turns the rule off.
        :param agreement_depth: They agree when BM25's best document is among the `agreement_depth`
            closest vectors, or the closest vector among BM25's best `agreement_depth`; 1: the same best.
        """
        if dense_score_scale not in ("cosine", "unit_interval"):
            raise ValueError("dense_score_scale must be 'cosine' or 'unit_interval'.")
        if agreement_margin < 0:
            raise ValueError("agreement_margin must not be negative.")
        if agreement_depth < 1:
            raise ValueError("agreement_depth must be at least 1.")
        self.min_similarity = min_similarity
        self.dense_score_scale = dense_score_scale
        self.top_k = top_k
        self.agreement_margin = agreement_margin
        self.agreement_depth = agreement_depth

    def best_similarity(self, dense_documents: list[Document]) -> float | None:
        """Cosine similarity of the closest dense match, or None when there was none."""
        scores = [doc.score for doc in dense_documents if doc.score is not None]
        if not scores:
            return None
        best = max(scores)
        return 2.0 * best - 1.0 if self.dense_score_scale == "unit_interval" else best

    def relevant(
        self, best: float | None, threshold: float, dense: list[Document], keyword: list[Document]
    ) -> bool:
        """The decision: close enough, or nearly so with both retrievers agreeing on the best one."""
        if best is None:
            return False
        if best >= threshold:
            return True
        if best < threshold - self.agreement_margin or not dense or not keyword:
            return False
        depth = self.agreement_depth
        closest = sorted(
            dense, key=lambda doc: doc.score if doc.score is not None else float("-inf"), reverse=True
        )
        return keyword[0].id in {doc.id for doc in closest[:depth]} or closest[0].id in {
            doc.id for doc in keyword[:depth]
        }

    @component.output_types(documents=list[Document], best_similarity=float | None)
    def run(
        self,
        documents: list[Document],
        dense_documents: list[Document] | None = None,
        keyword_documents: list[Document] | None = None,
        min_similarity: float | None = None,
    ) -> dict[str, Any]:
        """
        :param documents: The fused documents, best first.
        :param dense_documents: What the embedding retriever returned for the same question.
        :param keyword_documents: What the BM25 retriever returned, best first (for the agreement rule).
        :param min_similarity: Overrides the threshold for this call.
        :returns: `documents`: the fused documents unchanged (up to `top_k`), or an empty list when the
            question is judged off-topic; `best_similarity`: the best dense similarity.
        """
        threshold = self.min_similarity if min_similarity is None else min_similarity
        dense = dense_documents or []
        best = self.best_similarity(dense)
        if not self.relevant(best, threshold, dense, keyword_documents or []):
            return {"documents": [], "best_similarity": best}
        kept = documents if self.top_k is None else documents[: self.top_k]
        return {"documents": kept, "best_similarity": best}

    def to_dict(self) -> dict[str, Any]:
        """Serialises the component for a pipeline definition."""
        return default_to_dict(
            self,
            min_similarity=self.min_similarity,
            dense_score_scale=self.dense_score_scale,
            top_k=self.top_k,
            agreement_margin=self.agreement_margin,
            agreement_depth=self.agreement_depth,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RelevanceFilter:
        """Rebuilds the component from `to_dict` output."""
        return default_from_dict(cls, data)
