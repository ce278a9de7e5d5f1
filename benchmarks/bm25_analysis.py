"""Keyword search of the embedded store by text analysis, beside the in-memory BM25 it replaced.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bm25_analysis.py

For each of qa-en, qa-id and SciFact (test), every corpus document is written (title, newline, text)
into an `EmbeddedDocumentStore` once per analyzer (`plain`, `stemmed`, `stemmed-stopwords`) and into
Haystack's `InMemoryDocumentStore` with the settings tanya used before (BM25L, k1 2.0, b 0.75).
Questions are split by position: even ones *tune* (pick the analyzer), odd ones *report*, so the
reported number is for questions the choice never saw. Also times the BM25 query and the write.
Writes benchmarks/results/bm25_analysis.json. Takes about five minutes on two cores.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result
from retrieval_quality import DEPTH, corpus_texts, metrics, questions

SETS = (("qa-en", "test"), ("qa-id", "test"), ("beir-scifact", "test"))
ANALYZERS = ("plain", "stemmed", "stemmed-stopwords")
LEGACY = "in-memory BM25L k1=2.0 b=0.75"


def _halves(name: str, split: str) -> dict[str, dict[str, set[str]]]:
    rows = questions(name, split)
    return {
        "tune": {qid: gold for i, (qid, _, gold) in enumerate(rows) if i % 2 == 0},
        "report": {qid: gold for i, (qid, _, gold) in enumerate(rows) if i % 2 == 1},
    }


def _rank(search: Any, name: str, split: str) -> tuple[dict[str, list[tuple[str, float]]], list[float]]:
    rankings, times = {}, []
    for qid, text, _ in questions(name, split):
        started = time.perf_counter()
        documents = search(text)
        times.append((time.perf_counter() - started) * 1000)
        rankings[qid] = [(d.id, float(d.score)) for d in documents]
    return rankings, times


def _variant(name: str, split: str, analyzer: str | None) -> dict[str, Any]:
    from haystack import Document

    ids, texts = corpus_texts(name)
    documents = [Document(id=i, content=t) for i, t in zip(ids, texts, strict=True)]
    with tempfile.TemporaryDirectory() as home:
        started = time.perf_counter()
        if analyzer is None:
            from haystack.document_stores.in_memory import InMemoryDocumentStore

            store: Any = InMemoryDocumentStore(
                bm25_algorithm="BM25L", bm25_parameters={"k1": 2.0, "b": 0.75}, shared=False
            )
            store.write_documents(documents)
        else:
            from retrieval.stores.embedded.document_store import EmbeddedDocumentStore

            store = EmbeddedDocumentStore(path=Path(home) / "store.sqlite3", analyzer=analyzer)
            for start in range(0, len(documents), 256):
                store.write_documents(documents[start : start + 256])
        write_seconds = time.perf_counter() - started
        rankings, times = _rank(lambda q: store.bm25_retrieval(q, top_k=DEPTH), name, split)
    halves = _halves(name, split)
    return {
        "write_docs_per_second": round(len(documents) / write_seconds, 1),
        "query_ms_p50": round(float(np.percentile(times, 50)), 2),
        "query_ms_p95": round(float(np.percentile(times, 95)), 2),
        **{half: metrics(rankings, gold) for half, gold in halves.items()},
    }


def main() -> None:
    results: dict[str, dict[str, Any]] = {}
    for name, split in SETS:
        results[name] = {LEGACY: _variant(name, split, None)}
        for analyzer in ANALYZERS:
            results[name][analyzer] = _variant(name, split, analyzer)
            print(name, analyzer, results[name][analyzer], flush=True)
        print(name, LEGACY, results[name][LEGACY], flush=True)

    def key(name: str) -> str:
        return "recall@5" if name.startswith("qa") else "ndcg@10"

    # The analyzer with the best mean tune-half score over the three sets.
    chosen = max(ANALYZERS, key=lambda a: sum(results[n][a]["tune"][key(n)] for n, _ in SETS))
    summary = {
        name: {
            "metric": key(name),
            "chosen_report": results[name][chosen]["report"][key(name)],
            "legacy_report": results[name][LEGACY]["report"][key(name)],
        }
        for name, _ in SETS
    }
    path = write_result(
        "bm25_analysis",
        {"chosen_on_tune_half": chosen, "summary_on_report_half": summary, "results": results},
    )
    print("chosen:", chosen, summary, f"-> {path}")


if __name__ == "__main__":
    main()
