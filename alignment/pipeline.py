"""One re-training run from feedback to a registered adapter: the function a worker job executes.

Order matters for safety: the active adapter is read at the start and compared against, the candidate
is written to a staging folder, evaluated, reported, published (renamed into place) and registered,
and only the very last step, one transaction, may make it active. A run killed anywhere before that
leaves the active adapter exactly as it was.
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from alignment import registry
from alignment.answer_quality import AnswerWriter, written_answer_metrics
from alignment.chat_format import ChatFormat
from alignment.config import AlignmentConfig
from alignment.datasets import FeedbackDatasets, build_datasets
from alignment.distributed import SINGLE, Processes
from alignment.evaluate import BASE, Scorer, evaluate_variant
from alignment.feedback import load_feedback
from alignment.gate import GateResult, choose_stages, decide
from alignment.model import load_base_model, load_tokenizer, resolve_config
from alignment.progress import RunMonitor, StageHook, TrainingLog
from alignment.regression import regression_rows
from alignment.report import data_notes, write_report
from alignment.starter import starting_adapter
from alignment.train import StagePlan, plan_stages, train_adapter
from retrieval.generation.base_identity import identify_checkpoint, write_identity
from retrieval.generation.served_adapter_rules import served_adapter_refusals
from storage import Database
from storage.models import utcnow
from storage.stats import active_adapter

log = logging.getLogger(__name__)

NOT_ENOUGH_FEEDBACK = "not_enough_feedback"
PROMOTED = "promoted"
REJECTED = "rejected"
REFUSED = "refused"  # trained, but the model server (vLLM) would not load it: not registered
TRAINED_ONLY = "trained_only"  # a non-main process of a launched run: it trained, the main one registers


@dataclass
class RunOutcome:
    """What a run ended with; ``status`` is one of the constants above."""

    status: str
    message: str
    adapter_id: int | None = None
    adapter_name: str | None = None
    adapter_path: Path | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "message": self.message,
            "adapter_id": self.adapter_id,
            "adapter_name": self.adapter_name,
            "adapter_path": str(self.adapter_path) if self.adapter_path else None,
            "metrics": self.metrics,
        }


@dataclass(frozen=True)
class RunPaths:
    """Where a run reads its base model and writes its adapter."""

    base_model: Path  # the converted checkpoint (retrieval.generation.checkpoint.ensure_checkpoint)
    adapters_dir: Path


def prepare_data(database: Database, chat: ChatFormat, config: AlignmentConfig) -> FeedbackDatasets:
    with database.session() as session:
        snapshot = load_feedback(session, include_private=config.include_private)
    return build_datasets(snapshot, chat, config)


def _adapter_name(job_id: int | None) -> str:
    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    return f"tanya-{stamp}-job{job_id}" if job_id is not None else f"tanya-{stamp}-{uuid.uuid4().hex[:4]}"


def retrain(
    database: Database | None,
    config: AlignmentConfig,
    paths: RunPaths,
    *,
    job_id: int | None = None,
    hook: StageHook | None = None,
    show_progress: bool = True,
    console: Console | None = None,
    processes: Processes = SINGLE,
) -> RunOutcome:
    """
    Build datasets, train, gate, report, register; activate only when the gate says so.

    Under `accelerate launch` every process calls this with its `processes`. Only the main one reads
    and writes the database and the registry (the others may pass `database=None`) and broadcasts the
    rows, the baseline and the staging folder; all of them train; the main one alone evaluates,
    publishes and registers. The other processes return a `TRAINED_ONLY` outcome.
    """
    started = time.time()
    main = processes.is_main
    config = starting_adapter(resolve_config(config, paths.base_model), paths.base_model)
    chat = ChatFormat.from_tokenizer(load_tokenizer(paths.base_model))
    data = processes.share(prepare_data(_db(database), chat, config) if main else None)
    plan = plan_stages(data.train, config)
    lineage = {**data.lineage_json(), "job_id": job_id}
    if not plan.sft:
        notes = data_notes(data.stats(), config.max_length)
        return RunOutcome(
            NOT_ENOUGH_FEEDBACK,
            f"Not enough feedback yet: {plan.reason} (👍 answers and corrections count)."
            + (f" {notes}" if notes else ""),
            metrics={"data": data.stats()},
            lineage=lineage,
        )
    baseline = staging = None
    if main:
        with _db(database).session() as session:
            active = active_adapter(session)
            baseline = (active.id, active.name, Path(active.path), active.sha256) if active else None
        if baseline is not None:
            registry.verify_adapter(baseline[2], baseline[3])
        paths.adapters_dir.mkdir(parents=True, exist_ok=True)
        registry.clean_stale_staging(paths.adapters_dir)
        staging = registry.staging_dir(paths.adapters_dir)
    baseline, staging, name = processes.share((baseline, staging, _adapter_name(job_id)) if main else None)
    try:
        training_log = TrainingLog(staging / "training_log.jsonl" if main else None)
        show = show_progress and main
        with RunMonitor(training_log, show=show, hook=hook if main else None, console=console) as monitor:
            monitor.event("data", **data.stats(), plan=plan.stages, reason=plan.reason)
            trained, sft_adapter = _train(paths.base_model, data, config, plan, staging, monitor, processes)
            if not main:
                return RunOutcome(
                    TRAINED_ONLY, f"process {processes.index} trained; the main process registers"
                )
            refusals = _server_refusals(staging, config)
            if refusals:
                monitor.event("refused", reasons=refusals)
            else:
                gate = _evaluate(paths.base_model, data, chat, config, staging, baseline, sft_adapter)
                monitor.event("gate", **gate.as_dict())
        if refusals:
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(staging.parent / f"{staging.name}.trainer", ignore_errors=True)
            return RunOutcome(
                REFUSED,
                f"Adapter {name} was not registered: the model server would refuse it ("
                + "; ".join(refusals)
                + "). Change the training options (tanya retrain --set …) or the server's limits.",
                metrics={"data": data.stats(), "training": trained, "refused": refusals},
                lineage=lineage,
            )
        summary = {
            "adapter": name,
            "outcome": "passed the gate" if gate.promote else "rejected by the gate",
            "base_model": paths.base_model.name,
            "job_id": job_id,
            "config": config.as_dict(),
            "plan": {"stages": plan.stages, "reason": plan.reason},
            "data": data.stats(),
            "training": trained,
            "gate": gate.as_dict(),
            "lineage": lineage,
            "seconds": round(time.time() - started, 1),
        }
        identity = identify_checkpoint(paths.base_model, chat.tokenizer)  # the tokenizer loaded above
        write_identity(staging, identity)
        summary["base"] = identity.to_json()
        lineage = {**lineage, "base": identity.to_json()}
        write_report(staging, summary, training_log)
        (staging / "README.md").unlink(missing_ok=True)  # peft's blank model card; summary.md says more
        shutil.rmtree(staging.parent / f"{staging.name}.trainer", ignore_errors=True)
        path, digest = registry.publish(staging, paths.adapters_dir, name)
    except BaseException:
        if main:  # the staging folder is the main process's to remove
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(staging.parent / f"{staging.name}.trainer", ignore_errors=True)
        raise

    metrics = {"gate": gate.as_dict(), "data": data.stats(), "training": trained, "plan": plan.stages}
    database = _db(database)
    with database.session() as session:
        version = registry.register(
            session,
            name=name,
            path=path,
            sha256=digest,
            base_model=paths.base_model.name,
            metrics=metrics,
            lineage=lineage,
            parent_id=baseline[0] if baseline else None,
        )
        version_id = version.id
    with database.session() as session:
        if gate.promote:
            registry.activate_version(session, version_id)
        else:
            registry.reject_version(session, version_id, reason=gate.reason)
    status = PROMOTED if gate.promote else REJECTED
    verb = "is now active" if gate.promote else "was rejected"
    return RunOutcome(
        status,
        f"Adapter {name} {verb}: {gate.reason}.",
        adapter_id=version_id,
        adapter_name=name,
        adapter_path=path,
        metrics=metrics,
        lineage=lineage,
    )


def _server_refusals(adapter: Path, config: AlignmentConfig) -> list[str]:
    """Why the model server would refuse the trained adapter (none when answers are generated here)."""
    if config.served_max_lora_rank is None:
        return []
    return served_adapter_refusals(adapter, max_lora_rank=config.served_max_lora_rank)


def _db(database: Database | None) -> Database:
    if database is None:
        raise ValueError("the main process of a run needs the database")
    return database


def _train(
    base_model: Path,
    data: FeedbackDatasets,
    config: AlignmentConfig,
    plan: StagePlan,
    staging: Path,
    monitor: RunMonitor,
    processes: Processes = SINGLE,
) -> tuple[dict[str, Any], Path | None]:
    """The training summary, and the SFT-only adapter when one was kept for the gate to compare."""
    loaded = load_base_model(base_model, config, processes)
    result = train_adapter(
        loaded,
        data.train,
        config,
        plan,
        staging,
        monitor,
        processes,
        reload=lambda: load_base_model(base_model, config, processes),
    )
    del loaded
    return {"steps": result.steps, "seconds": result.seconds, "final": result.final}, result.sft_adapter


def _evaluate(
    base_model: Path,
    data: FeedbackDatasets,
    chat: ChatFormat,
    config: AlignmentConfig,
    staging: Path,
    baseline: tuple[int, str, Path, str | None] | None,
    sft_adapter: Path | None = None,
) -> GateResult:
    """Score the active adapter (or the base model) and the candidate; maybe ship SFT alone instead."""
    adapters = {"candidate": staging}
    if baseline is not None:
        adapters["active"] = baseline[2]
    if sft_adapter is not None and (sft_adapter / "adapter_model.safetensors").is_file():
        adapters["sft_only"] = sft_adapter
    scorer = Scorer.load(base_model, adapters, device=config.device)
    writer = AnswerWriter(scorer, max_new_tokens=config.gate_max_new_tokens)
    limit = config.max_eval_rows
    rows = {
        "answers": data.eval.sft[:limit],
        "pairs": data.eval.dpo[:limit],
        "thumbs": data.eval.kto[:limit],
        "regression": regression_rows(chat),
    }
    written = data.eval.written[: config.gate_written_answers]  # held-out corrections

    def measure(variant: str) -> dict[str, float]:
        metrics = evaluate_variant(scorer, variant, beta=config.beta, **rows)
        return {**metrics, **written_answer_metrics(writer, variant, written)}

    label = baseline[1] if baseline else "base model"
    old = measure("active" if baseline is not None else BASE)
    result = decide(old, measure("candidate"), config, baseline=label)
    if "sft_only" in adapters and len(written) >= config.gate_min_written_answers:
        sft_result = decide(old, measure("sft_only"), config, baseline=label)
        choice = choose_stages(result, sft_result)
        if choice["shipped"] == "sft":  # the preference stage hurt: leave it out
            for name in ("adapter_config.json", "adapter_model.safetensors"):
                (staging / name).write_bytes((sft_adapter / name).read_bytes())  # type: ignore[operator]
            result = sft_result
        result.stage_choice = choice
    return result
