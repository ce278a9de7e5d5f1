"""Answer quality through the product path: ``tanya ask --json -`` on the qa-en and qa-id dev questions.

    .venv/bin/python benchmarks/answer_quality.py                      # 30 + 10 questions a language
    .venv/bin/python benchmarks/answer_quality.py --answerable 60 --unanswerable 20 --variants gemma+starter
    .venv/bin/python benchmarks/answer_quality.py --variants gemma+starter --starter-from DIR   # a candidate

What a new user gets, measured as they would get it: a fresh ``TANYA_HOME`` per language, the dev
passages written as files and ingested with ``tanya ingest`` (the real chunking, embedder and store), then
every question put through one ``tanya ask --json -`` process per variant, with default settings but
for the model:

* ``smollm2`` — the bundled SmolLM2-135M-Instruct, bare;
* ``gemma`` — the bundled Gemma 3 270M, bare (``TANYA_STARTER_ADAPTER=false``);
* ``gemma+starter`` — Gemma 3 270M with the starter adapter shipped in the package
  (``alignment/starters/gemma3-270m``), as a fresh install answers;
* ``gemma+<name>`` for each ``--starter-from DIR`` — a candidate starter laid out as the package's
  (``DIR/gemma3-270m/starter.json`` and the adapter beside it, as ``build_starter.py --package-to DIR``
  writes it), installed into that variant's fresh database before the shipped one, so it is the one
  that answers: candidates and the shipped starter side by side in one run.

The questions come from the closed loop's held-out split (``closed_loop_users.split_questions``, 25 %
of passages): neither the starter (trained on ``qa-train-*``) nor any closed-loop round trained on them.
Each language's index holds the answerable questions' passages plus as many other passages as
distractors. For ``--unanswerable`` more questions the passage is left out of the index (and so is any
other passage that contains their answer): the right reply is "the documents do not say".

Scores (percent): EM and token F1 (SQuAD normalisation, citation markers stripped), ``contains_gold``,
``cites_gold`` (a citation of a source that is the gold passage) on the answerable questions; the share
of unanswerable ones answered "not in the documents" (or "nothing found" by the relevance gate), and
of answerable ones wrongly answered so. Latency p50/p95 per stage from the answers' own timings
(retrieval, reading the prompt up to the first token, writing the rest); the peak RSS of each
``tanya ask`` process (``wait4``), with the model converted beforehand: the first answer after an
install also de-quantizes the bundled model once, which for Gemma peaks at about 3.4 GB. Writes ``benchmarks/results/answer_quality.json`` and ``.png``;
answers per variant and language are kept under ``--work`` so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS_DIR, write_result
from closed_loop_users import _rank, load_set, split_questions, write_corpus
from qa_metrics import AnswerScore, normalize_answer, score_answer

from retrieval.answering.checks import says_not_in_documents

TANYA = str(Path(sys.executable).with_name("tanya"))
VARIANTS: dict[str, dict[str, str]] = {
    "smollm2": {"TANYA_GENERATOR": "smollm2-135m-instruct", "TANYA_STARTER_ADAPTER": "false"},
    "gemma": {"TANYA_GENERATOR": "gemma3-270m", "TANYA_STARTER_ADAPTER": "false"},
    "gemma+starter": {"TANYA_GENERATOR": "gemma3-270m", "TANYA_STARTER_ADAPTER": "true"},
}


def plan(language: str, answerable: int, unanswerable: int) -> dict[str, Any]:
    """Which held-out questions are asked, and which passages the index holds."""
    corpus, questions = load_set(language)
    _, held_out = split_questions(questions, 0.25)
    by_passage: dict[str, dict[str, Any]] = {}
    for question in sorted(held_out, key=lambda q: _rank(f"quality:{q['id']}")):
        by_passage.setdefault(question["passage_ids"][0], question)  # one question per passage
    chosen = list(by_passage.values())
    asked, missing = chosen[:answerable], chosen[answerable : answerable + unanswerable]
    missing_answers = [f" {normalize_answer(a)} " for q in missing for a in q["answers"]]
    gold = {q["passage_ids"][0] for q in asked}
    excluded = {q["passage_ids"][0] for q in missing}

    def states_a_missing_answer(passage_id: str) -> bool:
        text = f" {normalize_answer(corpus[passage_id]['text'])} "
        return any(answer in text for answer in missing_answers)

    others = [
        pid
        for pid in sorted(corpus, key=lambda pid: _rank(f"quality-distractor:{pid}"))
        if pid not in gold and pid not in excluded and not states_a_missing_answer(pid)
    ]
    passages = sorted(gold) + others[: len(gold)]
    return {
        "corpus": {pid: corpus[pid] for pid in passages},
        "questions": [{**q, "answerable": True} for q in asked]
        + [{**q, "answerable": False} for q in missing],
    }


def candidate_variants(folders: list[Path]) -> dict[str, Path]:
    """``gemma+<starter name>`` → the folder laid out like ``alignment/starters`` that holds it."""
    from alignment.starter import packaged_starter

    variants: dict[str, Path] = {}
    for folder in folders:
        starter = packaged_starter("gemma3-270m", folder.resolve())
        if starter is None:
            raise SystemExit(f"{folder} holds no gemma3-270m/starter.json")
        variants[f"gemma+{starter.name}"] = folder.resolve()
        VARIANTS[f"gemma+{starter.name}"] = VARIANTS["gemma+starter"]
    return variants


def install_candidate(env: dict[str, str], starters_dir: Path) -> None:
    """Register and activate a candidate starter in the variant's database before ``tanya ask`` opens it."""
    from alignment.starter import install_starter
    from storage import Database

    database = Database.open(env["TANYA_DATABASE_URL"])
    with database.session() as session:
        if (
            install_starter(
                session, Path(env["TANYA_HOME"]) / "adapters", "gemma3-270m", starters_dir=starters_dir
            )
            is None
        ):
            raise SystemExit(f"the candidate starter in {starters_dir} was refused")
        session.commit()
    database.dispose()


def convert_once(models: Path, model: str) -> None:
    """De-quantize the bundled model before measuring: a first answer's one-off conversion (about 3.4 GB
    for Gemma) is not the memory an answer needs. In a child process, because Linux hands a parent's
    peak RSS down to the children it starts afterwards, and ``wait4`` would report it for every variant."""
    code = "import sys; from retrieval.generation.checkpoint import ensure_checkpoint as e; e(*sys.argv[1:])"
    subprocess.run([sys.executable, "-c", code, str(models), model], cwd=REPO, check=True)


def environment(home: Path, variant: str) -> dict[str, str]:
    env = {
        **os.environ,
        "TANYA_HOME": str(home),
        "TANYA_DATABASE_URL": f"sqlite:///{home / f'{variant}.db'}",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HAYSTACK_TELEMETRY_ENABLED": "False",
        "TOKENIZERS_PARALLELISM": "false",
        **VARIANTS[variant],
    }
    for name in ("TANYA_EMBEDDER", "TANYA_TOP_K", "TANYA_MAX_NEW_TOKENS"):
        env.pop(name, None)  # default settings
    return env


def ask_all(questions: list[dict[str, Any]], env: dict[str, str], answers_file: Path) -> dict[str, Any]:
    """One ``tanya ask --json -`` process for all questions; its answers and its peak RSS."""
    if answers_file.exists():
        saved = json.loads(answers_file.read_text(encoding="utf-8"))
        if len(saved["answers"]) == len(questions):
            return saved
    started = time.time()
    process = subprocess.Popen(
        [TANYA, "ask", "--json", "-"],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write("".join(q["question"].replace("\n", " ") + "\n" for q in questions))
    process.stdin.close()
    answers = [json.loads(line) for line in process.stdout]
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    saved = {
        "answers": answers,
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "exit_code": process.returncode,
        "seconds": round(time.time() - started, 1),
    }
    answers_file.write_text(json.dumps(saved, ensure_ascii=False, indent=1), encoding="utf-8")
    return saved


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def summarize(questions: list[dict[str, Any]], run: dict[str, Any]) -> dict[str, Any]:
    scores: list[AnswerScore] = []
    abstained = {True: 0, False: 0}
    stages: dict[str, list[float]] = {}
    examples = []
    for question, answer in zip(questions, run["answers"], strict=True):
        text = answer.get("answer") or ""
        declined = (not answer.get("found", True)) or says_not_in_documents(text)
        abstained[question["answerable"]] += int(declined)
        for stage, seconds in (answer.get("timings") or {}).items():
            stages.setdefault(stage, []).append(float(seconds))
        if question["answerable"]:
            source_ids = [Path(s.get("source", "")).stem for s in answer.get("sources", [])]
            score = score_answer(
                text, question["answers"], source_ids, question["passage_ids"], citation_added=False
            )
            scores.append(score)
            if len(examples) < 5:
                examples.append(
                    {"question": question["question"], "gold": question["answers"][0], "answer": text}
                )
    answerable = sum(q["answerable"] for q in questions)
    unanswerable = len(questions) - answerable
    means = AnswerScore.mean(scores)
    return {
        "answerable": answerable,
        "exact_match": means.get("exact_match"),
        "f1": means.get("f1"),
        "contains_gold": means.get("contains_gold"),
        "cites_gold": means.get("cites_gold"),
        "unanswerable": unanswerable,
        "says_not_in_documents": round(100 * abstained[False] / unanswerable, 1) if unanswerable else None,
        "answerable_declined": round(100 * abstained[True] / answerable, 1) if answerable else None,
        "latency_s": {
            stage: {"p50": percentile(values, 0.5), "p95": percentile(values, 0.95)}
            for stage, values in stages.items()
        },
        "completion_tokens_mean": round(
            statistics.fmean([a.get("usage", {}).get("completion_tokens", 0) for a in run["answers"]]), 1
        ),
        "peak_rss_mib": run["peak_rss_mib"],
        "errors": sum(1 for a in run["answers"] if "error" in a),
        "examples": examples,
    }


def plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    languages = sorted({language for row in results.values() for language in row})
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    width = 0.8 / max(1, len(results))
    for offset, (variant, rows) in enumerate(results.items()):
        for axis, metric in zip(axes, ("f1", "says_not_in_documents"), strict=True):
            values = [rows.get(language, {}).get(metric) or 0 for language in languages]
            positions = [i + offset * width for i in range(len(languages))]
            axis.bar(positions, values, width, label=variant)
    for axis, title in zip(
        axes, ("token F1, answerable", "'not in the documents', unanswerable"), strict=True
    ):
        axis.set_xticks([i + width * (len(results) - 1) / 2 for i in range(len(languages))], languages)
        axis.set_ylim(0, 100)
        axis.set_title(title)
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answerable", type=int, default=30, help="answerable questions per language")
    parser.add_argument("--unanswerable", type=int, default=10, help="questions whose passage is left out")
    parser.add_argument("--languages", nargs="+", default=["en", "id"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument(
        "--starter-from",
        nargs="*",
        type=Path,
        default=[],
        help="folders laid out like alignment/starters, each a candidate starter measured as its own variant",
    )
    parser.add_argument("--work", type=Path, default=RESULTS_DIR / "tmp" / "answer_quality")
    parser.add_argument("--name", default="answer_quality")
    args = parser.parse_args()

    candidates = candidate_variants(args.starter_from)
    variants = [*args.variants, *candidates]
    results: dict[str, dict[str, Any]] = {variant: {} for variant in variants}
    for language in args.languages:
        item = plan(language, args.answerable, args.unanswerable)
        home = (args.work / language).resolve()
        marker = home / "ingested"
        if not marker.exists():
            home.mkdir(parents=True, exist_ok=True)
            files = write_corpus(item["corpus"], home / "corpus")
            env = environment(home, "smollm2")
            subprocess.run([TANYA, "ingest", str(home / "corpus")], env=env, cwd=REPO, check=True)
            marker.write_text(str(len(files)))
        for variant in variants:
            env = environment(home, variant)
            convert_once(home / "models", env["TANYA_GENERATOR"])
            if (
                variant in candidates
                and not Path(env["TANYA_DATABASE_URL"].removeprefix("sqlite:///")).exists()
            ):
                install_candidate(env, candidates[variant])
            run = ask_all(item["questions"], env, home / f"{variant}.answers.json")
            results[variant][language] = summarize(item["questions"], run)
            print(
                f"[{language}] {variant}: "
                + json.dumps(
                    {
                        k: v
                        for k, v in results[variant][language].items()
                        if k not in ("examples", "latency_s")
                    }
                ),
                flush=True,
            )
    path = write_result(
        args.name,
        {
            "setup": {
                "path": "tanya ask --json - (one process per variant and language), default settings",
                "questions": "closed-loop held-out split of qa-en / qa-id, one question per passage",
                "answerable": args.answerable,
                "unanswerable": args.unanswerable,
                "distractors": "one other passage per answerable question",
            },
            "results": results,
        },
    )
    plot(results, path.with_suffix(".png"))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
