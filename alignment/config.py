"""What a re-training run does, as one dataclass whose fields explain themselves.

The bot builds it from its settings and a job may override single fields (``TrainingJob.config``), so
a test or an operator can ask for a short run without touching code. Fields left at ``None`` are filled
per model size and device by :meth:`AlignmentConfig.resolved`, because a 135M model on a laptop CPU and
a 1.5B model on a GPU want different ranks, learning rates and sequence lengths.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from alignment.gpu_plan import GpuPlan, learning_rate
from retrieval.generation.served_adapter_rules import check_max_lora_rank

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class AlignmentConfig:
    """Data selection, training and evaluation-gate settings of one re-training run."""

    # --- data -----------------------------------------------------------------------------------
    include_private: bool = field(
        default=False,
        metadata={
            "help": "Use interactions from direct messages and private channels (TANYA_TRAIN_ON_PRIVATE)."
        },
    )
    eval_fraction: float = field(
        default=0.2,
        metadata={
            "help": "Share of distinct questions held out for the evaluation gate (by question, never by row)."
        },
    )
    min_eval_questions: int = field(
        default=2,
        metadata={"help": "Hold out at least this many questions even when the fraction rounds to fewer."},
    )
    split_salt: str = field(
        default="tanya-split-v1",
        metadata={
            "help": "Mixed into the question hash that decides the split; change it to draw a new split."
        },
    )
    max_pairs_per_question: int = field(
        default=4,
        metadata={"help": "Cap on preference pairs per question, so one popular question cannot dominate."},
    )
    max_length: int | None = field(
        default=None,
        metadata={
            "help": "Longest prompt + answer in tokens. A longer row has its prompt fitted (uncited sources, "
            "then earlier turns dropped, then the cited sources cut around the answer; "
            "alignment/prompt_fitting.py) and is left out only when even that fails. None: 2048 on CUDA, 1024 on CPU."
        },
    )

    # --- thresholds -----------------------------------------------------------------------------
    min_sft_rows: int = field(
        default=8,
        metadata={
            "help": "Fewer training answers (👍 or corrections) than this ends the run as 'not enough feedback yet'."
        },
    )
    min_dpo_pairs: int = field(
        default=8,
        metadata={
            "help": "DPO runs with at least this many training pairs; below it KTO uses the thumbs instead "
            "(measured: benchmarks/results/preference_small_data.json, docs/alignment.md)."
        },
    )
    min_kto_rows: int = field(
        default=8,
        metadata={"help": "KTO runs only with at least this many thumbs, of both kinds."},
    )
    kto_after_dpo_ratio: float = field(
        default=0.0,
        metadata={
            "help": "After DPO, also run KTO on the leftover unpaired thumbs when they outnumber the pairs by "
            "this factor. 0 (the default) turns it off: it is unmeasured, and KTO given 16 pairs' worth of "
            "thumbs lowered held-out accuracy where DPO on the pairs did not."
        },
    )

    # --- LoRA / model ---------------------------------------------------------------------------
    device: str = field(default="auto", metadata={"help": "auto (CUDA if present), cpu or cuda."})
    quantize_4bit: bool | None = field(
        default=None, metadata={"help": "QLoRA: load the base model in 4-bit NF4. None: on CUDA only."}
    )
    start_from: str = field(
        default="starter",
        metadata={
            "help": "starter: each retrain continues from the starter adapter shipped for the base model "
            "(when one ships; otherwise a fresh adapter), so the team's feedback refines what the starter "
            "learned; measured better than a fresh adapter (docs/closed-loop.md). base: a fresh LoRA "
            "adapter on the bare base model every time."
        },
    )
    initial_adapter: str | None = field(
        default=None,
        metadata={
            "help": "LoRA adapter folder the SFT stage continues from (the starter adapter), whose rank, "
            "alpha and target modules it keeps. None: a fresh adapter with the settings below."
        },
    )
    lora_r: int | None = field(
        default=None,
        metadata={"help": "LoRA rank. None: by model size, capped at served_max_lora_rank when that is set."},
    )
    served_max_lora_rank: int | None = field(
        default=None,
        metadata={
            "help": "When answers come from vLLM: its --max-lora-rank. A trained adapter that vLLM would "
            "refuse (rank above it, modules_to_save, DoRA, biases, trained embeddings) is not registered. "
            "None: answers come from this machine's own model, which loads any LoRA adapter."
        },
    )
    lora_alpha: int | None = field(
        default=None, metadata={"help": "LoRA scaling numerator. None: twice the rank."}
    )
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA branch."})
    target_modules: str = field(
        default="all-linear",
        metadata={"help": "peft target_modules: 'all-linear' or comma-separated layer names."},
    )
    torch_threads: int | None = field(
        default=None,
        metadata={
            "help": "CPU threads for torch. None: all cores but one on CPU (the bot keeps one; with the cores "
            "oversubscribed a training step was 3-10× slower, see docs/alignment.md), torch's default on CUDA."
        },
    )
    seed: int = field(default=42, metadata={"help": "Seed for LoRA initialisation and data order."})

    # --- optimisation ---------------------------------------------------------------------------
    batch_size: int | None = field(default=None, metadata={"help": "Rows per device step. None: by device."})
    cpu_bf16: bool = field(
        default=False,
        metadata={
            "help": "CPU only: compute the matrix products in bf16 (autocast); the LoRA weights stay fp32. "
            "Faster where the CPU has native bf16 (AVX512-BF16 or AMX; see benchmarks/train_step_cpu.py), "
            "slower where it does not. Off by default: the published closed-loop numbers are fp32."
        },
    )
    gradient_accumulation_steps: int | None = field(
        default=None,
        metadata={
            "help": "Steps accumulated per optimizer update. None: 1 on CPU; on CUDA, 16 rows per update."
        },
    )
    preference_batch_size: int | None = field(
        default=None,
        metadata={
            "help": "Rows per device step for DPO and KTO. None: the SFT batch on CPU; half of it on CUDA "
            "(DPO's step holds chosen and rejected answers)."
        },
    )
    gpu_memory_gib: float | None = field(
        default=None,
        metadata={
            "help": "CUDA: GPU memory (GiB) this run may use; the batch and length are sized to fit it "
            "(alignment/gpu_plan.py) and the process is capped there, so that an estimate gone wrong fails "
            "this run, not a vLLM server on the same card. None: the card's free memory at the start."
        },
    )
    optimizer: str | None = field(
        default=None,
        metadata={
            "help": "transformers optim name. None: paged_adamw_8bit for QLoRA (optimizer states page to CPU "
            "memory under pressure), adamw_torch_fused otherwise (transformers' default)."
        },
    )
    liger_kernels: bool | None = field(
        default=None,
        metadata={
            "help": "CUDA: Liger's Triton kernels for RMSNorm, RoPE and SwiGLU (use_liger_kernel). None: on "
            "when the liger-kernel package is installed (pip install 'tanya[gpu]')."
        },
    )
    sft_packing: bool | None = field(
        default=None,
        metadata={
            "help": "CUDA: pack SFT rows into full-length sequences (TRL's best-fit packing, padding-free), "
            "which needs FlashAttention to keep packed rows apart. None: on when flash-attn is installed."
        },
    )
    sft_epochs: float = field(default=3.0, metadata={"help": "Passes over the SFT rows."})
    sft_learning_rate: float | None = field(
        default=None, metadata={"help": "SFT learning rate. None: by model size."}
    )
    sft_max_steps: int = field(
        default=-1, metadata={"help": "Stop SFT after this many steps (-1: use the epochs)."}
    )
    preference_epochs: float = field(default=2.0, metadata={"help": "Passes over the DPO pairs or KTO rows."})
    preference_learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "DPO/KTO learning rate. None: half the SFT rate (a tenth barely moved the adapter)."
        },
    )
    preference_max_steps: int = field(
        default=-1, metadata={"help": "Stop DPO and KTO after this many steps each (-1: use the epochs)."}
    )
    beta: float = field(
        default=0.1, metadata={"help": "DPO/KTO beta: how far the adapter may move from its SFT start."}
    )
    gradient_checkpointing: bool | None = field(
        default=None, metadata={"help": "Trade compute for memory. None: on CUDA only."}
    )
    checkpoint_steps: int = field(
        default=0,
        metadata={
            "help": "Save a resumable checkpoint every this many optimizer steps (0: none). Training started "
            "again with the same output folder resumes each stage from its last checkpoint: for runs of "
            "hours on a CPU, which an interruption would otherwise restart from zero."
        },
    )

    # --- evaluation gate ------------------------------------------------------------------------
    gate_margin: float = field(
        default=0.02,
        metadata={
            "help": "The candidate must lower the held-out answers' loss by this many nats per token (or, "
            "with pairs only, raise pair accuracy by this fraction) over the active adapter."
        },
    )
    regression_tolerance: float = field(
        default=0.0,
        metadata={
            "help": "How much worse (nats per token) the candidate may do on the fixed regression set."
        },
    )
    max_eval_rows: int = field(
        default=200, metadata={"help": "Cap on held-out rows scored per kind, to bound evaluation time."}
    )
    gate_written_answers: int = field(
        default=32,
        metadata={
            "help": "Held-out corrections whose prompts each variant also answers (greedy) for the gate, "
            "scored by token F1 against the correction; 0 judges by likelihood only. About 1-2 s per answer and variant "
            "on a CPU. Likelihood alone promoted adapters that wrote wrong spans (docs/closed-loop.md)."
        },
    )
    gate_min_written_answers: int = field(
        default=8,
        metadata={
            "help": "With fewer held-out corrections than this, written answers are reported but decide "
            "nothing (neither the F1 guard nor the choice of stages): one or two answers are noise."
        },
    )
    gate_max_new_tokens: int = field(
        default=64, metadata={"help": "Longest answer, in tokens, a variant may write for the gate."}
    )
    gate_f1_tolerance: float = field(
        default=2.0,
        metadata={
            "help": "Points of held-out answer F1 the candidate may lose against the active adapter: the "
            "held-out sets are small, so a point or two is noise."
        },
    )
    keep_best_stage: bool = field(
        default=True,
        metadata={
            "help": "When DPO or KTO ran after SFT, let the SFT-only adapter answer the held-out prompts too "
            "and ship it instead when its answers score a higher F1: a preference stage on a few dozen "
            "pairs can cut answers to fragments. Needs gate_written_answers > 0."
        },
    )

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {self.device!r}")
        if self.start_from not in ("base", "starter"):
            raise ValueError(f"start_from must be 'base' or 'starter', not {self.start_from!r}")
        if not 0.0 < self.eval_fraction < 1.0:
            raise ValueError("eval_fraction must be between 0 and 1")
        if self.kto_after_dpo_ratio < 0:
            raise ValueError("kto_after_dpo_ratio must be 0 (off) or positive")
        if self.gate_written_answers < 0 or self.gate_max_new_tokens < 1 or self.gate_f1_tolerance < 0:
            raise ValueError(
                "gate_written_answers and gate_f1_tolerance must not be negative, gate_max_new_tokens ≥ 1"
            )
        if self.served_max_lora_rank is not None:
            check_max_lora_rank(self.served_max_lora_rank)
        if self.gpu_memory_gib is not None and self.gpu_memory_gib <= 0:
            raise ValueError("gpu_memory_gib must be positive (or None: the card's free memory)")
        if self.checkpoint_steps < 0:
            raise ValueError("checkpoint_steps must be 0 (off) or positive")
        if self.min_sft_rows < 1 or self.min_dpo_pairs < 1 or self.min_kto_rows < 2:
            raise ValueError("min_sft_rows and min_dpo_pairs must be at least 1, min_kto_rows at least 2")

    def with_overrides(self, overrides: dict[str, Any] | None) -> AlignmentConfig:
        """A copy with the named fields replaced; unknown names are an error, not silently ignored."""
        if not overrides:
            return self
        known = {item.name for item in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(unknown)}")
        return replace(self, **overrides)

    def resolved(
        self,
        *,
        num_parameters: int,
        cuda: bool,
        gpu_plan: GpuPlan | None = None,
        installed: frozenset[str] = frozenset(),
    ) -> AlignmentConfig:
        """Fill every ``None`` with the default for this model size and device.

        :param gpu_plan: on CUDA, the batch and length that fit the card (``alignment.gpu_plan``).
        :param installed: which optional packages are importable ("bitsandbytes", "liger_kernel", "flash_attn").
        """
        rank = self.default_rank(num_parameters)
        sft_lr = self.sft_learning_rate or learning_rate(num_parameters)
        quantize = cuda if self.quantize_4bit is None else self.quantize_4bit
        batch = self.batch_size or (gpu_plan.batch_size if gpu_plan else 8 if cuda else 2)
        if cuda:
            optimizer = (
                "paged_adamw_8bit" if quantize and "bitsandbytes" in installed else "adamw_torch_fused"
            )
            pref_batch = (
                gpu_plan.preference_batch_size if gpu_plan and not self.batch_size else max(1, batch // 2)
            )
            accumulation = gpu_plan.gradient_accumulation_steps if gpu_plan else max(1, 16 // batch)
        else:
            optimizer, pref_batch, accumulation = "adamw_torch_fused", batch, 1
        return replace(
            self,
            device="cuda" if cuda else "cpu",
            quantize_4bit=quantize,
            lora_r=rank,
            lora_alpha=self.lora_alpha or 2 * rank,
            sft_learning_rate=sft_lr,
            preference_learning_rate=self.preference_learning_rate or sft_lr / 2,
            batch_size=batch,
            preference_batch_size=self.preference_batch_size or pref_batch,
            gradient_accumulation_steps=self.gradient_accumulation_steps or accumulation,
            max_length=self.max_length or (gpu_plan.max_length if gpu_plan else 2048 if cuda else 1024),
            optimizer=self.optimizer or optimizer,
            liger_kernels=cuda
            and ("liger_kernel" in installed if self.liger_kernels is None else self.liger_kernels),
            sft_packing=cuda
            and ("flash_attn" in installed if self.sft_packing is None else self.sft_packing),
            gradient_checkpointing=cuda
            if self.gradient_checkpointing is None
            else self.gradient_checkpointing,
            torch_threads=self.torch_threads or (None if cuda else max(1, (os.cpu_count() or 2) - 1)),
        )

    def default_rank(self, num_parameters: int) -> int:
        """The LoRA rank: as set, else 16 below 500M parameters and 32 above, within the server's limit."""
        rank = self.lora_r or (16 if num_parameters < 500_000_000 else 32)
        if self.lora_r is None and self.served_max_lora_rank:
            rank = min(rank, self.served_max_lora_rank)
        return rank

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
