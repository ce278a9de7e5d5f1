"""DPO or KTO with little feedback: held-out preference accuracy after SFT → DPO vs SFT → KTO.

    .venv/bin/python benchmarks/preference_small_data.py [--pairs 4 8 16] [--preference-lr 2e-5 1e-4] [--heldout 24]

The numbers behind ``min_dpo_pairs`` (docs/alignment.md). Feedback is simulated from the English QA set
in ../shared/data/qa-en (SQuAD passages): for a question, the 👍 answer states the gold answer and the 👎
answer states the answer to another question about the same passage, in the same words — so the only
thing to learn is which answer the source supports. With P pairs, three adapters are trained with the
code ``tanya retrain`` runs (alignment.train.train_adapter, CPU defaults except r=8 and max_length=320):

* SFT on the P good answers;
* the same SFT, then DPO on the P pairs;
* the same SFT, then KTO on the same feedback as 2·P unpaired thumbs;

the DPO and KTO runs once per preference learning rate given.

Each is scored on held-out pairs from other passages (alignment.evaluate): preference accuracy (chosen
more likely per token than rejected), DPO reward margin against the base model, and the loss of the good
answers. One seed; steps and seconds are recorded. Writes ``benchmarks/results/preference_small_data.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import write_result

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "qa-en"


def _window(text: str, answer: str, chars: int = 420) -> str:
    at = max(text.find(answer), 0)
    start = max(0, at - chars // 2)
    return text[start : start + chars].strip()


def _module_name(name: str) -> str:
    """peft adapter names become module names, which may not contain dots."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def feedback_items() -> list[dict[str, str]]:
    """(passage, question, good, bad) per question that has a different answer on the same passage."""
    passages = {row["id"]: row for row in map(json.loads, (DATA / "corpus.jsonl").read_text().splitlines())}
    questions = [json.loads(line) for line in (DATA / "questions.jsonl").read_text().splitlines()]
    by_passage: dict[str, list[dict[str, Any]]] = {}
    for question in questions:
        by_passage.setdefault(question["passage_ids"][0], []).append(question)
    items = []
    for passage_id, group in sorted(by_passage.items()):
        for index, question in enumerate(group):
            answer = question["answers"][0].rstrip(".")
            others = (q["answers"][0].rstrip(".") for q in group[index + 1 :] + group[:index])
            other = next((text for text in others if text != answer), None)
            if other is None:
                continue
            passage = passages[passage_id]
            items.append(
                {
                    "key": hashlib.sha256(question["id"].encode()).hexdigest(),
                    "passage_id": passage_id,
                    "title": passage["title"],
                    "context": _window(passage["text"], answer),
                    "question": question["question"],
                    "good": f"According to the source, the answer is {answer} [1].",
                    "bad": f"According to the source, the answer is {other} [1].",
                }
            )
    return sorted(items, key=lambda item: item["key"])


def split(items: list[dict[str, str]], train_size: int, heldout: int) -> tuple[list[dict], list[dict]]:
    """Held-out pairs come from passages no training pair uses."""
    train, used = [], set()
    for item in items:
        if len(train) < train_size and item["passage_id"] not in used:
            train.append(item)
            used.add(item["passage_id"])
    test = [item for item in items if item["passage_id"] not in used][:heldout]
    return train, test


def rows(chat: Any, items: list[dict[str, str]]) -> dict[str, list[dict[str, Any]]]:
    from alignment.regression import grounded_messages

    out: dict[str, list[dict[str, Any]]] = {"sft": [], "dpo": [], "kto": []}
    for item in items:
        prompt = chat.prompt(grounded_messages(item["question"], [(item["title"], item["context"])]))
        good, bad = chat.completion(item["good"]), chat.completion(item["bad"])
        out["sft"].append({"prompt": prompt, "completion": good})
        out["dpo"].append({"prompt": prompt, "chosen": good, "rejected": bad})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--preference-lr", type=float, nargs="+", default=[2e-5, 1e-4])
    parser.add_argument("--heldout", type=int, default=24)
    args = parser.parse_args()

    from alignment.chat_format import ChatFormat
    from alignment.config import AlignmentConfig
    from alignment.datasets import SplitRows
    from alignment.evaluate import BASE, Scorer, evaluate_variant
    from alignment.model import load_base_model, load_tokenizer, resolve_config
    from alignment.progress import RunMonitor, TrainingLog
    from alignment.train import StagePlan, train_adapter
    from retrieval.generation.checkpoint import ensure_checkpoint

    checkpoint = ensure_checkpoint(
        Path(os.environ.get("TANYA_BENCH_MODELS", Path.home() / ".cache/tanya-bench"))
    )
    chat = ChatFormat.from_tokenizer(load_tokenizer(checkpoint))
    config = resolve_config(AlignmentConfig(device="cpu", lora_r=8, max_length=320), checkpoint)
    items = feedback_items()
    runs = []
    for pairs in args.pairs:
        train_items, test_items = split(items, pairs, args.heldout)
        train, test = rows(chat, train_items), rows(chat, test_items)
        plans = {"sft": (StagePlan(True, False, False, "", "benchmark"), None)}
        for lr in args.preference_lr:
            plans[f"sft+dpo@{lr:g}"] = (StagePlan(True, True, False, "", "benchmark"), lr)
            plans[f"sft+kto@{lr:g}"] = (StagePlan(True, False, True, "all", "benchmark"), lr)
        run: dict[str, Any] = {"pairs": pairs, "heldout_pairs": len(test["dpo"]), "methods": {}}
        with tempfile.TemporaryDirectory() as folder:
            adapters = {}
            for name, (plan, lr) in plans.items():
                stage_config = replace(config, preference_learning_rate=lr or config.preference_learning_rate)
                loaded = load_base_model(checkpoint, stage_config)
                started = time.time()
                with RunMonitor(TrainingLog(None), show=False) as monitor:
                    result = train_adapter(
                        loaded,
                        SplitRows(sft=train["sft"], dpo=train["dpo"]),
                        stage_config,
                        plan,
                        Path(folder) / name,
                        monitor,
                    )
                run["methods"][name] = {
                    "steps": result.steps,
                    "train_seconds": round(time.time() - started, 1),
                    "final_train_metrics": {
                        stage: {
                            k: round(v, 4) for k, v in metrics.items() if k.startswith(("rewards/", "loss"))
                        }
                        for stage, metrics in result.final.items()
                    },
                }
                adapters[_module_name(name)] = Path(folder) / name
                del loaded
            scorer = Scorer.load(checkpoint, adapters)
            for name in [BASE, *plans]:
                metrics = evaluate_variant(
                    scorer,
                    name if name == BASE else _module_name(name),
                    answers=test["sft"],
                    pairs=test["dpo"],
                    thumbs=[],
                    regression=[],
                    beta=config.beta,
                )
                run["methods"].setdefault(name, {})["heldout"] = {
                    key: round(value, 4) for key, value in metrics.items()
                }
        runs.append(run)
        print(json.dumps(run))
    path = write_result(
        "preference_small_data",
        {
            "model": "SmolLM2-135M-Instruct (bundled), CPU fp32 LoRA r=8, all linear layers",
            "data": "qa-en (XQuAD en = SQuAD v1.1 dev); good = gold answer, bad = another question's answer "
            "from the same passage; held-out pairs from unseen passages",
            "config": {
                key: config.as_dict()[key]
                for key in (
                    "sft_epochs",
                    "preference_epochs",
                    "batch_size",
                    "sft_learning_rate",
                    "preference_learning_rate",
                    "beta",
                    "torch_threads",
                )
            },
            "load_average_1min_at_end": round(os.getloadavg()[0], 2),
            "runs": runs,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
