"""SFT, then DPO and/or KTO, on one LoRA adapter, with TRL.

SFT teaches the answers people approved of or wrote themselves (loss on the answer only). The
preference stage then pushes the adapter away from the answers people rejected. DPO needs pairs (a
good and a bad answer to the same question); when the feedback has too few of them, KTO learns from
the single thumbs instead. The numbers behind ``plan_stages`` are in docs/alignment.md.

Both preference trainers get the SFT ``PeftModel`` with ``ref_model=None``: TRL then copies the SFT
adapter into a frozen "ref" adapter and uses it as the reference, so no second model is loaded. That
copy is deleted after each stage and only the "default" adapter is saved.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import PrinterCallback
from transformers.trainer_utils import get_last_checkpoint

from alignment.completion_loss import compact_fused_head, completion_sft_trainer_class
from alignment.config import AlignmentConfig
from alignment.datasets import SplitRows
from alignment.distributed import SINGLE, Processes
from alignment.model import LoadedModel, lora_config
from alignment.progress import RunMonitor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StagePlan:
    """Which stages run, and the reason, recorded in the summary."""

    sft: bool
    dpo: bool
    kto: bool
    kto_rows: str  # "unpaired" (leftover thumbs) or "all" (pairs split into thumbs as well)
    reason: str

    @property
    def stages(self) -> list[str]:
        return [name for name, wanted in (("sft", self.sft), ("dpo", self.dpo), ("kto", self.kto)) if wanted]


def _kto_usable(rows: list[dict[str, Any]], minimum: int) -> bool:
    labels = {bool(row["label"]) for row in rows}
    return len(rows) >= minimum and labels == {True, False}


def plan_stages(train: SplitRows, config: AlignmentConfig) -> StagePlan:
    """Decide SFT / DPO / KTO from the row counts (thresholds in ``AlignmentConfig``)."""
    pairs, unpaired = len(train.dpo), train.kto
    if len(train.sft) < config.min_sft_rows:
        return StagePlan(
            False, False, False, "", f"{len(train.sft)} training answers, need {config.min_sft_rows}"
        )
    if pairs >= config.min_dpo_pairs:
        after = (
            config.kto_after_dpo_ratio > 0
            and _kto_usable(unpaired, config.min_kto_rows)
            and len(unpaired) >= config.kto_after_dpo_ratio * pairs
        )
        reason = f"{pairs} pairs ≥ {config.min_dpo_pairs}: DPO"
        if after:
            reason += (
                f"; {len(unpaired)} unpaired thumbs ≥ {config.kto_after_dpo_ratio:g}× pairs: KTO after DPO"
            )
        return StagePlan(True, True, after, "unpaired", reason)
    thumbs = unpaired + split_pairs(train.dpo)
    if _kto_usable(thumbs, config.min_kto_rows):
        return StagePlan(
            True, False, True, "all", f"{pairs} pairs < {config.min_dpo_pairs}: KTO on {len(thumbs)} thumbs"
        )
    return StagePlan(
        True,
        False,
        False,
        "",
        f"{pairs} pairs < {config.min_dpo_pairs} and {len(thumbs)} thumbs (KTO needs {config.min_kto_rows}, "
        "both 👍 and 👎): SFT only",
    )


def split_pairs(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A DPO pair as two KTO rows: its chosen answer desirable, its rejected one not."""
    rows = []
    for pair in pairs:
        rows.append({"prompt": pair["prompt"], "completion": pair["chosen"], "label": True})
        rows.append({"prompt": pair["prompt"], "completion": pair["rejected"], "label": False})
    return rows


@dataclass
class TrainResult:
    """What training did: the plan, steps and seconds per stage, the last logged values."""

    plan: StagePlan
    steps: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    final: dict[str, dict[str, float]] = field(default_factory=dict)
    # The SFT-only adapter, kept when a preference stage followed, so the gate can compare the two.
    sft_adapter: Path | None = None


def _common_args(
    config: AlignmentConfig, output_dir: Path, epochs: float, max_steps: int, lr: float
) -> dict[str, Any]:
    cuda = config.device == "cuda"
    return {
        "output_dir": str(output_dir),
        "num_train_epochs": epochs,
        "max_steps": max_steps,
        "learning_rate": lr,
        "per_device_train_batch_size": int(config.batch_size or 2),
        "gradient_accumulation_steps": int(config.gradient_accumulation_steps or 1),
        "optim": config.optimizer or "adamw_torch_fused",
        **({"use_liger_kernel": True} if config.liger_kernels else {}),
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0,
        "logging_steps": 1,
        **(
            {"save_strategy": "steps", "save_steps": config.checkpoint_steps, "save_total_limit": 2}
            if config.checkpoint_steps
            else {"save_strategy": "no"}
        ),
        "report_to": [],
        "disable_tqdm": True,
        "seed": config.seed,
        "data_seed": config.seed,
        "use_cpu": not cuda,
        "bf16": cuda or config.cpu_bf16,
        "dataloader_num_workers": 0,
        "max_length": config.max_length,
        # Every LoRA weight takes part in every step, so DDP need not search for unused ones (the search
        # also breaks with gradient checkpointing); ignored by a single process.
        "ddp_find_unused_parameters": False,
        # Only named when wanted: transformers warns about the old name even when it is False.
        **(
            {"gradient_checkpointing": True, "gradient_checkpointing_kwargs": {"use_reentrant": False}}
            if config.gradient_checkpointing
            else {}
        ),
    }


def _final_metrics(trainer: Any) -> dict[str, float]:
    """The last logged value of each metric of a stage (loss, reward margin, accuracy …)."""
    final: dict[str, float] = {}
    for record in trainer.state.log_history:
        for key, value in record.items():
            if isinstance(value, int | float) and math.isfinite(value) and key not in ("epoch", "step"):
                final[key] = float(value)
    return final


def _drop_reference_copy(model: Any) -> None:
    if "ref" in getattr(model, "peft_config", {}):
        model.delete_adapter("ref")
    model.set_adapter("default")


def train_adapter(
    loaded: LoadedModel,
    train: SplitRows,
    config: AlignmentConfig,
    plan: StagePlan,
    output_dir: Path,
    monitor: RunMonitor,
    processes: Processes = SINGLE,
    reload: Callable[[], LoadedModel] | None = None,
) -> TrainResult:
    """
    Run the planned stages and save the adapter (``adapter_model.safetensors`` + config) to ``output_dir``.

    Launched on several processes, every one trains and only the main one writes the adapter. Under FSDP
    a stage's model is wrapped in place and cannot be handed to the next trainer, so each stage's adapter
    is saved and loaded again onto a fresh base model from ``reload``.
    """
    from datasets import Dataset  # heavy
    from datasets.utils.logging import disable_progress_bar  # heavy
    from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer, SFTConfig  # heavy

    disable_progress_bar()  # tokenising a few hundred rows needs no bar of its own next to the monitor's
    result = TrainResult(plan=plan)
    scratch = output_dir.parent / f"{output_dir.name}.trainer"
    pref_lr = float(config.preference_learning_rate or 1e-4)
    pref = (config.preference_epochs, config.preference_max_steps, pref_lr)

    sft_args = SFTConfig(
        **_common_args(
            config, scratch, config.sft_epochs, config.sft_max_steps, float(config.sft_learning_rate or 2e-4)
        ),
        completion_only_loss=True,
        **({"packing": True, "packing_strategy": "bfd"} if config.sft_packing else {}),
    )
    model, peft_config = _sft_starting_point(loaded.model, config)
    trainer: Any = completion_sft_trainer_class()(
        model=model,
        args=sft_args,
        train_dataset=Dataset.from_list(train.sft),
        processing_class=loaded.tokenizer,
        peft_config=peft_config,
        callbacks=[monitor.callback("sft")],
    )
    _run(trainer, "sft", result, scratch if config.checkpoint_steps else None)
    model = _hand_over(trainer, "sft", scratch, processes, reload)
    if (plan.dpo or plan.kto) and config.keep_best_stage and config.gate_written_answers > 0:
        result.sft_adapter = scratch / "sft-adapter"
        if processes.sharding != "fsdp" and processes.is_main:  # under FSDP _hand_over saved it there
            model.save_pretrained(str(result.sft_adapter), selected_adapters=["default"])

    if plan.dpo:
        dpo_args = DPOConfig(**_common_args(config, scratch, *pref), beta=config.beta)
        dpo_args.per_device_train_batch_size = int(
            config.preference_batch_size or dpo_args.per_device_train_batch_size
        )
        trainer = DPOTrainer(
            model=model,
            ref_model=None,
            args=dpo_args,
            train_dataset=Dataset.from_list(train.dpo),
            processing_class=loaded.tokenizer,
            callbacks=[monitor.callback("dpo")],
        )
        with compact_fused_head(config.device):
            _run(trainer, "dpo", result, scratch if config.checkpoint_steps else None)
        model = _hand_over(trainer, "dpo", scratch, processes, reload)

    if plan.kto:
        rows = train.kto if plan.kto_rows == "unpaired" else train.kto + split_pairs(train.dpo)
        kto_args = KTOConfig(**_common_args(config, scratch, *pref), beta=config.beta)
        kto_args.per_device_train_batch_size = max(  # the KL term needs ≥ 2
            2, int(config.preference_batch_size or kto_args.per_device_train_batch_size)
        )
        trainer = KTOTrainer(
            model=model,
            ref_model=None,
            args=kto_args,
            train_dataset=Dataset.from_list(rows),
            processing_class=loaded.tokenizer,
            callbacks=[monitor.callback("kto")],
        )
        with compact_fused_head(config.device):
            _run(trainer, "kto", result, scratch if config.checkpoint_steps else None)
        model = _hand_over(trainer, "kto", scratch, processes, reload)

    output_dir.mkdir(parents=True, exist_ok=True)
    if processes.sharding == "fsdp":
        gathered = _save_sharded(trainer, scratch / "final-adapter", processes)
        if processes.is_main:  # only the adapter: the trainer also writes the tokenizer next to it
            for name in ("adapter_config.json", "adapter_model.safetensors"):
                (output_dir / name).write_bytes((gathered / name).read_bytes())
    elif processes.is_main:
        model.save_pretrained(str(output_dir), selected_adapters=["default"])
    processes.wait()
    loaded.model = model
    return result


def _hand_over(
    trainer: Any,
    stage: str,
    scratch: Path,
    processes: Processes,
    reload: Callable[[], LoadedModel] | None,
) -> Any:
    """The model the next stage starts from: the trained one, or under FSDP a reloaded copy of it."""
    if processes.sharding != "fsdp":
        model = trainer.model
        _drop_reference_copy(model)
        return model
    if reload is None:
        raise ValueError("training under FSDP needs `reload` to start each stage from a fresh base model")
    from peft import PeftModel  # heavy

    folder = scratch / f"{stage}-adapter"
    _save_sharded(trainer, folder, processes)
    processes.wait()  # the main process has written the files the others read next
    return PeftModel.from_pretrained(reload().model, str(folder), is_trainable=True)


def _save_sharded(trainer: Any, folder: Path, processes: Processes) -> Path:
    """Gathers the FSDP-sharded adapter (every process takes part) and lets the main process write it."""
    trainer.save_model(str(folder))
    if processes.is_main and not (folder / "adapter_model.safetensors").is_file():
        # With a sharded state dict the Trainer writes no adapter file at all.
        raise RuntimeError(
            "FSDP saved no adapter_model.safetensors: set fsdp_state_dict_type: FULL_STATE_DICT in the "
            "accelerate config (deploy/accelerate/fsdp.yaml does)"
        )
    return folder


def _sft_starting_point(model: Any, config: AlignmentConfig) -> tuple[Any, Any]:
    """The model SFT trains and the LoRA config TRL should add: a fresh adapter, or the initial one made trainable."""
    if not config.initial_adapter:
        return model, lora_config(config)
    from peft import PeftModel  # heavy

    with warnings.catch_warnings():  # peft 0.21 reads transformers 5's deprecated attribute
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
        return PeftModel.from_pretrained(model, config.initial_adapter, is_trainable=True), None


def _run(trainer: Any, stage: str, result: TrainResult, checkpoints: Path | None = None) -> None:
    """Train one stage; with ``checkpoints``, save under ``checkpoints/<stage>`` and resume from there."""
    trainer.remove_callback(PrinterCallback)  # the monitor shows and logs every step already
    resume = None
    if checkpoints is not None:
        folder = checkpoints / f"{stage}-checkpoints"
        trainer.args.output_dir = str(folder)  # each stage its own, so DPO never resumes SFT's steps
        resume = get_last_checkpoint(str(folder)) if folder.is_dir() else None
        if resume:
            log.info("%s: resuming from %s", stage, resume)
    output = trainer.train(resume_from_checkpoint=resume)
    result.steps[stage] = int(trainer.state.global_step)
    result.seconds[stage] = float(output.metrics.get("train_runtime", 0.0))
    result.final[stage] = _final_metrics(trainer)
    log.info("%s: %d steps in %.1fs", stage, result.steps[stage], result.seconds[stage])
