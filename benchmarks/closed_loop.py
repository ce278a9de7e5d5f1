"""Closed loop: simulated users' 👍/👎 and corrections re-train tanya, and held-out answers get better.

    .venv/bin/python benchmarks/closed_loop.py --quick --language en       # ~50 min on 2 CPU cores
    .venv/bin/python benchmarks/closed_loop.py --quick --language id
    .venv/bin/python benchmarks/closed_loop.py --quick --language id --generator gemma3-270m \
        --feedback 200 --few-shot 0 --variant gemma-f200-E2 --train-set sft_epochs=2   # ~90 min
    .venv/bin/python benchmarks/closed_loop.py --quick --language en --generator gemma3-270m \
        --feedback 200 --few-shot 0 --variant gemma-f200-E2 --train-set sft_epochs=2   # ~110 min
    .venv/bin/python benchmarks/closed_loop.py --quick --language en --scenario poisoned
    .venv/bin/python benchmarks/closed_loop.py --language en --rounds 3     # full mode, meant for a GPU
    # the same feedback, re-trained with other settings (docs/closed-loop.md):
    .venv/bin/python benchmarks/closed_loop.py --quick --language en --variant f300 --feedback 300 \
        --few-shot 0 --stop-after-feedback
    .venv/bin/python benchmarks/closed_loop.py --quick --language en --variant f300-A --from-feedback 1 \
        --resume benchmarks/results/closed_loop/closed_loop_en_f300.json --train-set sft_epochs=1

Everything goes through the product, in a fresh TANYA_HOME under ``--out``:

1. the QA set's passages (``../shared/data/qa-<language>``) are written as files and ingested with
   ``Tanya.ingest`` (the embedded default store and embedder);
2. questions are split by passage (a deterministic hash): held-out questions come from passages no
   feedback question is about;
3. round 0 answers the held-out questions with the base model (``Tanya.ask``) and scores them;
4. each round, simulated users ask a new slice of the feedback questions, vote 👍 when the answer states
   the gold answer and 👎 otherwise (``Tanya.rate``), and a fraction of the 👎 voters write the gold
   answer as a correction (``Tanya.correct``); then ``tanya retrain --wait`` runs in a subprocess, exactly
   as an admin would, and the held-out questions are answered again by whatever the gate left active;
5. once, the base model with a few-shot prompt (worked examples as earlier chat turns) answers the
   held-out questions, to show what prompting alone achieves.

Scenario ``poisoned``: after the normal rounds, one more batch in which users 👍 wrong answers and 👎
right ones; the gate must reject it and the held-out score must not drop.

Scores (percent, ``benchmarks/qa_metrics.py``): SQuAD exact match and token F1, ``contains_gold`` (the
gold string is in the answer), ``cites_gold`` (a cited [n] is the gold passage), ``cites_any``, and
``model_cited`` (the model wrote a citation itself; otherwise tanya appends [1]). Writes
``<out>/closed_loop_<language>[_poisoned].json`` and a PNG plot beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine
from closed_loop_plot import plot_rounds
from closed_loop_users import (
    answer_held_out,
    few_shot_history,
    give_feedback,
    load_set,
    split_questions,
    write_corpus,
)


def retrain_as_admin(env: dict[str, str], overrides: list[str]) -> dict[str, Any]:
    """``tanya retrain --wait [--set …]`` in a subprocess; the job row says what happened."""
    started = time.time()
    command = [sys.executable, "-m", "bot", "retrain", "--wait"]
    for item in overrides:
        command += ["--set", item]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    from storage import Database
    from storage.jobs import recent_jobs

    database = Database.open(env["TANYA_DATABASE_URL"])
    with database.session() as session:
        job = recent_jobs(session, limit=1)[0]
        outcome = {"job": job.id, "status": str(job.status), "metrics": job.metrics or {}, "error": job.error}
    database.dispose()
    outcome["exit_status"] = result.returncode
    outcome["seconds"] = round(time.time() - started, 1)
    if result.returncode != 0:
        outcome["stderr_tail"] = result.stderr[-2000:]
    return outcome


def first_round(
    args: argparse.Namespace,
    language: str,
    service: Any,
    env: dict[str, str],
    corpus: dict[str, dict[str, Any]],
    feedback: list[dict[str, Any]],
    held_out: list[dict[str, Any]],
    home: Path,
) -> dict[str, Any]:
    """Ingest, then round 0 (the base model) and the prompting baseline."""
    started = time.time()
    report = service.ingest(write_corpus(corpus, home / "corpus"))
    result: dict[str, Any] = {
        "language": language,
        "scenario": args.scenario,
        "mode": "quick" if args.quick else "full",
        "home": str(home),
        "settings": {k: v for k, v in env.items() if k.startswith("TANYA_") and "URL" not in k},
        "retrain_overrides": args.train_set,
        "questions": {"held_out": len(held_out), "feedback_pool": len(feedback)},
        "ingest_seconds": round(time.time() - started, 1),
        "ingest": str(getattr(report, "summary", "")) or None,
        "rounds": [],
    }
    print(f"[{language}] round 0: {len(held_out)} held-out questions", flush=True)
    result["rounds"].append({"round": 0, **answer_held_out(service, held_out)})
    print(json.dumps(result["rounds"][-1])[:400], flush=True)
    if args.few_shot:
        history = few_shot_history(feedback[::-1], corpus, args.few_shot)
        baseline = answer_held_out(service, held_out, history=history)
        result["baseline_few_shot"] = {"shots": len(history), **baseline}
        print("few-shot:", json.dumps(baseline)[:400], flush=True)
    return result


def run(args: argparse.Namespace, language: str) -> dict[str, Any]:
    out = Path(args.out).resolve()
    suffix = "_poisoned" if args.scenario == "poisoned" else ""
    home = out / f"home_{language}{suffix}"
    if args.variant:
        suffix += f"_{args.variant}"
        home = out / f"home_{language}{suffix}"
    previous = json.loads(Path(args.resume).read_text()) if args.resume else None
    start = None if previous is None else Path(previous.get("home") or out / f"home_{language}")
    if previous is not None and args.from_feedback:
        # Re-train the same feedback with other settings: start from the copy taken before training.
        start = Path(previous["feedback_homes"][str(args.from_feedback)])
        previous = {**previous, "rounds": previous["rounds"][: args.from_feedback]}
    if home.exists():
        shutil.rmtree(home)
    if start is not None:  # carry on from where that run stopped: same database, index and adapters
        shutil.copytree(start, home, symlinks=True)
    env = configure_environment(home, args)
    from bot.service import Tanya
    from bot.settings import Settings

    corpus, questions = load_set(language)
    feedback, held_out = split_questions(questions, args.held_out_fraction)
    held_out = held_out[: args.held_out]
    service = Tanya(Settings())
    started = time.time()
    if previous is None:
        result = first_round(args, language, service, env, corpus, feedback, held_out, home)
        plan = [(r, False) for r in range(1, args.rounds + 1)]
    else:
        result = {**previous, "scenario": args.scenario, "resumed_from": args.resume, "home": str(home)}
        result["retrain_overrides"] = args.train_set
        plan = [(args.from_feedback, False)] if args.from_feedback else []
    result["variant"] = args.variant
    last = plan[-1][0] if plan else result["rounds"][-1]["round"]
    if args.scenario == "poisoned":
        plan.append((last + 1, True))
    batches = [feedback[i * args.feedback : (i + 1) * args.feedback] for i in range(last + 1)]
    for number, poisoned in plan:
        if number == args.from_feedback:
            counts = (previous or {}).get("feedback_counts", {}).get(str(number), {})
        else:
            counts = give_feedback(
                service, batches[number - 1], correction_fraction=args.correction_fraction, poisoned=poisoned
            )
            snapshot = out / f"home_{language}{suffix}_feedback{number}"
            if snapshot.exists():
                shutil.rmtree(snapshot)
            shutil.copytree(home, snapshot, symlinks=True)
            result.setdefault("feedback_homes", {})[str(number)] = str(snapshot)
            result.setdefault("feedback_counts", {})[str(number)] = counts
        print(f"[{language}] round {number} feedback: {counts}", flush=True)
        if args.stop_after_feedback:
            break
        training = retrain_as_admin(env, args.train_set)
        gate = (training["metrics"].get("gate") or {}) if isinstance(training["metrics"], dict) else {}
        print(
            f"[{language}] round {number} retrain: {training['status']} {gate.get('reason', '')}", flush=True
        )
        scores = answer_held_out(service, held_out)
        result["rounds"].append(
            {
                "round": number,
                "poisoned": poisoned,
                "feedback": counts,
                "training": summarize(training),
                **scores,
            }
        )
        print(json.dumps(result["rounds"][-1], default=str)[:600], flush=True)
    result["seconds"] = round(time.time() - started, 1) + (previous or {}).get("seconds", 0.0)
    result["machine"] = machine()
    result["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    name = f"closed_loop_{language}{suffix}"
    (out / f"{name}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n")
    plot_rounds(result, out / f"{name}.png")
    return result


def summarize(training: dict[str, Any]) -> dict[str, Any]:
    metrics = training.get("metrics") or {}
    keep = ("status", "message", "adapter_name", "plan", "data", "gate", "seconds", "train")
    return {
        "job": training["job"],
        "status": training["status"],
        "exit_status": training["exit_status"],
        "seconds": training["seconds"],
        "error": training.get("error"),
        **{key: metrics[key] for key in keep if key in metrics},
        **({"stderr_tail": training["stderr_tail"]} if "stderr_tail" in training else {}),
    }


def configure_environment(home: Path, args: argparse.Namespace) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        {
            "TANYA_HOME": str(home),
            "TANYA_DATABASE_URL": f"sqlite:///{home / 'tanya.db'}",
            "TANYA_TOP_K": str(args.top_k),
            "TANYA_MAX_NEW_TOKENS": str(args.max_new_tokens),
            "TANYA_TRAIN_DEVICE": "auto",
            "TANYA_GENERATOR": args.generator,
            # Round 0 is the bare base model unless the run is about learning on top of the starter.
            "TANYA_STARTER_ADAPTER": "true" if args.starter else "false",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HAYSTACK_TELEMETRY_ENABLED": "False",
            "TOKENIZERS_PARALLELISM": "false",
        }
    )
    # The converted base checkpoint is shared between runs (it is the same file every time).
    shared_models = REPO / "benchmarks" / "results" / "tmp" / "models"
    shared_models.mkdir(parents=True, exist_ok=True)
    if not (home / "models").exists():
        (home / "models").symlink_to(shared_models, target_is_directory=True)
    return dict(os.environ)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--language", choices=["en", "id", "both"], default="both")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small slices, one round: about 50 min per language on 2 CPU cores",
    )
    parser.add_argument("--scenario", choices=["normal", "poisoned"], default="normal")
    parser.add_argument("--rounds", type=int, default=None, help="re-training rounds (quick: 1, full: 3)")
    parser.add_argument("--held-out", type=int, default=None, help="held-out questions scored per round")
    parser.add_argument("--feedback", type=int, default=None, help="feedback questions asked per round")
    parser.add_argument("--held-out-fraction", type=float, default=0.25)
    parser.add_argument(
        "--correction-fraction", type=float, default=0.5, help="share of 👎 voters who correct"
    )
    parser.add_argument(
        "--few-shot", type=int, default=2, help="worked examples in the prompting baseline (0: skip)"
    )
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument(
        "--generator",
        default="smollm2-135m-instruct",
        help="TANYA_GENERATOR for the run: a bundled model's name (smollm2-135m-instruct, or gemma3-270m, "
        "tanya's multilingual default)",
    )
    parser.add_argument(
        "--starter",
        action="store_true",
        help="start from the starter adapter shipped for the model (gemma3-270m) instead of the bare model",
    )
    parser.add_argument(
        "--train-set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="passed to `tanya retrain --set`",
    )
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument(
        "--resume",
        metavar="RESULT_JSON",
        help="continue a finished run (its home is copied), e.g. with --scenario poisoned",
    )
    parser.add_argument(
        "--from-feedback",
        type=int,
        metavar="ROUND",
        help="with --resume: re-train that run's ROUND feedback (saved before its training) instead",
    )
    parser.add_argument("--variant", default="", help="name added to the result files (for --from-feedback)")
    parser.add_argument(
        "--stop-after-feedback", action="store_true", help="save the first round's feedback, then stop"
    )
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "closed_loop"))
    args = parser.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.held_out = args.held_out or (50 if args.quick else 200)
    args.feedback = args.feedback or 300  # 150 per round gave half the gain (docs/closed-loop.md)
    args.max_new_tokens = args.max_new_tokens or (48 if args.quick else 96)
    if args.quick:
        # What fits the CPU budget: one SFT epoch and a short preference stage, on every core (the
        # benchmark has the machine to itself; the product default leaves one core to the bot).
        # --train-set options given on the command line replace these field by field.
        quick = ["sft_epochs=1", "preference_max_steps=10", f"torch_threads={os.cpu_count() or 1}"]
        given = {item.split("=", 1)[0] for item in args.train_set}
        args.train_set = [item for item in quick if item.split("=", 1)[0] not in given] + args.train_set
    languages = ["en", "id"] if args.language == "both" else [args.language]
    for language in languages:
        run(args, language)


if __name__ == "__main__":
    main()
