"""Retrieval quality through the product: `tanya ingest` of a corpus, then `tanya search --json -`.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/product_search.py [--sets beir-scifact qa-en qa-id]

``benchmarks/retrieval_quality.py`` indexes each corpus document whole; a user's documents go through
``tanya ingest`` instead: converted, split into 200-word chunks with 40 words of overlap, embedded and
indexed with every default. This runs exactly that, as a new user would, in a fresh ``TANYA_HOME`` per
set: each corpus document is written as a Markdown file (``# title``, then the text), the folder is
ingested (resumable: an interrupted run picks up where it stopped), and the questions are searched in
one ``tanya search --json -`` process. A document's rank is that of its first chunk among the results;
``--top-k`` (default 20) chunks are asked for, so that ten distinct documents are usually there for
nDCG@10.

Questions are the ones no setting was chosen on: SciFact's 300 test queries, and the odd-numbered half
of qa-en / qa-id. Writes ``benchmarks/results/product_search.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result
from retrieval_quality import DATA, load_jsonl, metrics, questions

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "benchmarks" / "results" / "tmp" / "product_search"
SPLITS = {"beir-scifact": "test", "qa-en": "report", "qa-id": "report"}
TUNE_SPLITS = {"beir-scifact": "train", "qa-en": "tune", "qa-id": "tune"}


def write_corpus(name: str, folder: Path) -> int:
    """One Markdown file per corpus document, named by its id; files already there are kept."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = load_jsonl(DATA / name / "corpus.jsonl")
    for row in rows:
        doc_id = str(row.get("_id", row.get("id")))
        path = folder / f"{doc_id}.md"
        if not path.exists():
            title = (row.get("title") or doc_id).strip()
            path.write_text(f"# {title}\n\n{row['text'].strip()}\n", encoding="utf-8")
    return len(rows)


def tanya(
    home: Path, *args: str, stdin: str | None = None, settings: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "TANYA_HOME": str(home), "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    for name in ("TANYA_DATABASE_URL", "TANYA_DOCUMENT_STORE", "TANYA_TOP_K"):
        environment.pop(name, None)
    environment.update(settings or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO,
        check=False,
    )


def measure(name: str, top_k: int, split: str, settings: dict[str, str]) -> dict[str, Any]:
    home, docs = WORK / name / "home", WORK / name / "docs"
    documents = write_corpus(name, docs)
    started = time.time()
    ingest = tanya(home, "ingest", str(docs))
    if ingest.returncode != 0:
        raise SystemExit(f"tanya ingest failed for {name}: {ingest.stderr.strip()[-2000:]}")
    ingest_seconds = time.time() - started
    asked = questions(name, split)
    started = time.time()
    found = tanya(
        home,
        "search",
        "--json",
        "--top-k",
        str(top_k),
        "-",
        stdin="\n".join(q for _, q, _ in asked) + "\n",
        settings=settings,
    )
    if found.returncode != 0:
        raise SystemExit(f"tanya search failed for {name}: {found.stderr.strip()[-2000:]}")
    search_seconds = time.time() - started
    replies = [json.loads(line) for line in found.stdout.splitlines() if line.strip()]
    if len(replies) != len(asked):
        raise SystemExit(f"{name}: {len(asked)} questions, {len(replies)} answers")
    rankings: dict[str, list[tuple[str, float]]] = {}
    gated = 0
    for (qid, _, _), reply in zip(asked, replies, strict=True):
        ranked: list[tuple[str, float]] = []
        for source in reply.get("sources", []):
            doc_id = Path(source["source"]).stem
            if doc_id not in {seen for seen, _ in ranked}:
                ranked.append((doc_id, source.get("score") or 0.0))
        gated += not ranked
        rankings[qid] = ranked
    scores = metrics(rankings, {qid: gold for qid, _, gold in asked})
    return {
        **scores,
        "split": split,
        "documents": documents,
        "questions_with_no_result": gated,
        "ingest_seconds": round(ingest_seconds, 1),
        "ingest_summary": ingest.stdout.strip().splitlines()[-1:] if ingest.stdout.strip() else [],
        "search_seconds_per_question": round(search_seconds / len(asked), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SPLITS), choices=list(SPLITS))
    parser.add_argument("--top-k", type=int, default=20, help="chunks asked for per question")
    parser.add_argument(
        "--tune",
        action="store_true",
        help="search the questions settings may be chosen on (SciFact train, the qa sets' even half)",
    )
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="TANYA_X=VALUE",
        help="a search-time setting for `tanya search` (e.g. TANYA_FUSION_WEIGHTS=0.5,0.5); repeatable",
    )
    parser.add_argument("--name", default="product_search", help="result file name")
    args = parser.parse_args()
    settings = dict(item.split("=", 1) for item in args.settings)
    results = {}
    for name in args.sets:
        split = (TUNE_SPLITS if args.tune else SPLITS)[name]
        results[name] = measure(name, args.top_k, split, settings)
        print(name, json.dumps(results[name]), flush=True)
    described = ", ".join(f"{key}={value}" for key, value in settings.items()) or "tanya's defaults"
    path = write_result(
        args.name,
        {"settings": f"{described} (fresh TANYA_HOME), --top-k {args.top_k}", "results": results},
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
