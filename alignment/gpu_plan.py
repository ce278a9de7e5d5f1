"""QLoRA settings sized to the model and the GPU memory the worker may use.

A retrain on a 24 GB card and one on an 80 GB card should not share a batch size, and a worker that
shares its card with vLLM must stay inside what vLLM leaves it: past that, one of the two runs out of
memory. So the batch and the sequence length come from an estimate of what a QLoRA step holds in GPU
memory, for this model's shapes:

* the base weights: 4-bit NF4 with double quantisation (≈ 0.52 bytes per parameter) for the decoder
  layers; bitsandbytes leaves the embeddings and the LM head in bf16;
* the LoRA adapter: bf16 weights and gradients (TRL casts them for quantised models) and paged 8-bit
  AdamW states, 8 bytes per trained parameter, rounded up;
* activations per token, with gradient checkpointing: every layer's input kept (``hidden`` bf16 values),
  one layer recomputed at a time (≈ ``10·hidden + 4·intermediate`` values, and as many gradients), and
  the logits unless the LM head is fused with the loss, as TRL 1.16 does on CUDA (``vocab`` bf16 logits,
  their fp32 copy and gradient: 10 bytes each);
* a fixed 1.5 GiB for the CUDA context and kernels' workspaces, and 10 % of the budget for the allocator.

DPO concatenates chosen and rejected answers, so its batch is half the SFT batch. The largest batch (a
power of two, at most 16) that fits at 2,048 tokens is taken, then 1,024 tokens if even one row does
not fit; gradient accumulation keeps 16 rows per optimizer step. ``python -m alignment.gpu_plan``
prints the plan for Qwen3-8B and Qwen3-14B on 24, 48 and 80 GB cards (docs/alignment.md has it).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

GIB = 1024**3
NF4_BYTES_PER_PARAMETER = 0.52
LORA_BYTES_PER_PARAMETER = 8
FIXED_OVERHEAD_BYTES = 1.5 * GIB
ALLOCATOR_SHARE = 0.10
LENGTHS = (2048, 1024)
MAX_BATCH = 16
ROWS_PER_UPDATE = 16

# Shapes of the dense Qwen3 models compose serves (their config.json), for the printed table.
QWEN3_8B = {
    "hidden_size": 4096,
    "num_hidden_layers": 36,
    "intermediate_size": 12288,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 151936,
    "tie_word_embeddings": False,
}
QWEN3_14B = {
    "hidden_size": 5120,
    "num_hidden_layers": 40,
    "intermediate_size": 17408,
    "num_attention_heads": 40,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 151936,
    "tie_word_embeddings": False,
}


class DoesNotFitError(RuntimeError):
    """Not even one row of 1,024 tokens fits the memory the worker may use."""


@dataclass(frozen=True)
class Shapes:
    """What the memory estimate needs from a decoder's config."""

    hidden: int
    layers: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool

    @classmethod
    def from_config(cls, config: Any) -> Shapes:
        get = (
            config.get
            if isinstance(config, dict)
            else lambda key, default=None: getattr(config, key, default)
        )
        hidden = int(get("hidden_size"))
        heads = int(get("num_attention_heads") or 1)
        return cls(
            hidden=hidden,
            layers=int(get("num_hidden_layers")),
            intermediate=int(get("intermediate_size") or 4 * hidden),
            heads=heads,
            kv_heads=int(get("num_key_value_heads") or heads),
            head_dim=int(get("head_dim") or hidden // heads),
            vocab=int(get("vocab_size")),
            tied=bool(get("tie_word_embeddings", False)),
        )

    def layer_parameters(self) -> int:
        attention = self.hidden * self.head_dim * (2 * self.heads + 2 * self.kv_heads)
        return self.layers * (attention + 3 * self.hidden * self.intermediate)

    def lora_parameters(self, rank: int) -> int:
        """LoRA on every linear layer of the decoder: rank × (in + out) for each."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        sides = [(self.hidden, q), (self.hidden, kv), (self.hidden, kv), (q, self.hidden)]
        sides += [(self.hidden, self.intermediate)] * 2 + [(self.intermediate, self.hidden)]
        return self.layers * rank * sum(i + o for i, o in sides)


@dataclass(frozen=True)
class GpuPlan:
    """Per-device batch, sequence length and accumulation for SFT (and the DPO batch), with the estimate."""

    batch_size: int
    preference_batch_size: int
    max_length: int
    gradient_accumulation_steps: int
    estimated_gib: float
    budget_gib: float

    def describe(self) -> str:
        return (
            f"batch {self.batch_size} (DPO {self.preference_batch_size}) × {self.max_length} tokens, "
            f"accumulation {self.gradient_accumulation_steps}: ≈ {self.estimated_gib:.1f} of {self.budget_gib:.0f} GiB"
        )


def fixed_bytes(shapes: Shapes, rank: int, *, quantized: bool = True) -> float:
    """Memory a run holds whatever the batch: the (4-bit) layer weights, bf16 embeddings, the adapter."""
    embeddings = shapes.vocab * shapes.hidden * (1 if shapes.tied else 2)
    return (
        shapes.layer_parameters() * (NF4_BYTES_PER_PARAMETER if quantized else 2)
        + embeddings * 2
        + shapes.lora_parameters(rank) * LORA_BYTES_PER_PARAMETER
        + FIXED_OVERHEAD_BYTES
    )


def bytes_per_token(shapes: Shapes, *, fused_head: bool) -> float:
    """Activation memory per token of a training step with gradient checkpointing."""
    kept = shapes.layers * shapes.hidden * 2
    recomputed = (10 * shapes.hidden + 4 * shapes.intermediate) * 2 * 2  # the values and their gradients
    logits = 0 if fused_head else shapes.vocab * 10
    return kept + recomputed + logits


def plan_qlora(
    config: Any, budget_gib: float, *, rank: int = 16, fused_head: bool = False, quantized: bool = True
) -> GpuPlan:
    """The largest batch that fits `budget_gib`; `DoesNotFitError` (with the numbers) when none does.

    :param fused_head: the LM head is fused with the loss, so no logits are kept (TRL ≥ 1.16 on CUDA).
    :param quantized: 4-bit base weights (QLoRA); False: bf16 LoRA.
    """
    shapes = Shapes.from_config(config)
    fixed = fixed_bytes(shapes, rank, quantized=quantized)
    usable = budget_gib * GIB * (1 - ALLOCATOR_SHARE) - fixed
    per_token = bytes_per_token(shapes, fused_head=fused_head)
    for length in LENGTHS:
        batch = MAX_BATCH
        while batch >= 1 and batch * length * per_token > usable:
            batch //= 2
        if batch >= 1:
            estimate = (fixed + batch * length * per_token) / GIB
            return GpuPlan(
                batch_size=batch,
                preference_batch_size=max(1, batch // 2),
                max_length=length,
                gradient_accumulation_steps=max(1, ROWS_PER_UPDATE // batch),
                estimated_gib=estimate,
                budget_gib=budget_gib,
            )
    need = (fixed + LENGTHS[-1] * per_token) / GIB / (1 - ALLOCATOR_SHARE)
    raise DoesNotFitError(
        f"a QLoRA step of this model needs about {need:.1f} GiB of GPU memory at {LENGTHS[-1]} tokens, and the "
        f"worker may use {budget_gib:.1f} GiB (TANYA_TRAIN_GPU_MEMORY_GIB, or the card's free memory)"
    )


def learning_rate(num_parameters: int) -> float:
    """LoRA learning rates in the range the QLoRA paper used (2e-4 small, 1e-4 for 7–13B); not measured here."""
    if num_parameters < 500_000_000:
        return 2e-4
    return 1e-4 if num_parameters < 20_000_000_000 else 5e-5


def main() -> None:
    parser = argparse.ArgumentParser(description="Print the QLoRA plan for Qwen3-8B/14B on common cards.")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument(
        "--fused-head", action="store_true", help="Assume the LM head is fused with the loss."
    )
    args = parser.parse_args()
    print("| model | card | plan |\n|---|---|---|")
    for name, shapes in (("Qwen3-8B", QWEN3_8B), ("Qwen3-14B", QWEN3_14B)):
        for card in (24, 48, 80):
            try:
                text = plan_qlora(shapes, card, rank=args.rank, fused_head=not args.unfused_head).describe()
            except DoesNotFitError as exc:
                text = str(exc)
            print(f"| {name} | {card} GB | {text} |")


if __name__ == "__main__":
    main()
