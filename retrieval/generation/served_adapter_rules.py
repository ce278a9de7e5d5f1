"""What vLLM's LoRA loader accepts, checked before an adapter is registered for a served model.

A served deployment learns only if the server will load what the worker trains. vLLM takes plain LoRA
adapters and refuses, at ``POST /v1/load_lora_adapter`` time, those with ``modules_to_save``, DoRA,
trained biases, ranks above ``--max-lora-rank``, or trained copies of the embeddings or LM head (new
tokens included). By then the run's minutes are spent and the bot keeps the old adapter with an
error in its log. These rules read the same two files the server reads and say, in one line each,
what it would refuse, so the worker can refuse it first, at registration, with the reason in the run's
summary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from retrieval.generation.adapters import CONFIG_FILENAME, WEIGHTS_FILENAME

# The values `vllm serve --max-lora-rank` takes (vLLM 0.11); an adapter's rank must be one of them too.
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
VLLM_DEFAULT_MAX_LORA_RANK = 16


def check_max_lora_rank(max_lora_rank: int) -> int:
    """The server's ``--max-lora-rank`` as configured, refused when vLLM itself would not start with it."""
    if max_lora_rank not in VLLM_LORA_RANKS:
        allowed = ", ".join(str(rank) for rank in VLLM_LORA_RANKS)
        raise ValueError(f"vLLM's --max-lora-rank is one of {allowed}, not {max_lora_rank}")
    return max_lora_rank


def served_adapter_refusals(path: Path, *, max_lora_rank: int) -> list[str]:
    """Each reason vLLM would refuse the adapter in ``path``; empty when it would load it."""
    check_max_lora_rank(max_lora_rank)
    try:
        config: dict[str, Any] = json.loads((Path(path) / CONFIG_FILENAME).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return [f"{CONFIG_FILENAME} is unreadable ({error})"]
    reasons: list[str] = []
    if config.get("peft_type") != "LORA":
        reasons.append(f"only LoRA adapters are served (peft_type is {config.get('peft_type')!r})")
    ranks = {int(config.get("r") or 0), *(int(r) for r in (config.get("rank_pattern") or {}).values())}
    for rank in sorted(ranks):
        if rank > max_lora_rank:
            reasons.append(f"rank {rank} is above the server's --max-lora-rank {max_lora_rank}")
        elif rank not in VLLM_LORA_RANKS:
            reasons.append(
                f"rank {rank} is not one of vLLM's LoRA ranks ({', '.join(map(str, VLLM_LORA_RANKS))})"
            )
    if config.get("modules_to_save"):
        reasons.append(f"modules_to_save ({', '.join(config['modules_to_save'])}) is not supported")
    if config.get("use_dora"):
        reasons.append("DoRA adapters are not supported")
    if config.get("bias", "none") != "none" or config.get("lora_bias"):
        reasons.append(f"trained biases are not supported (bias is {config.get('bias')!r})")
    if config.get("trainable_token_indices"):
        reasons.append("trained token embeddings (new tokens) are not supported")
    reasons.extend(_full_weight_refusals(Path(path) / WEIGHTS_FILENAME))
    return reasons


def _full_weight_refusals(weights: Path) -> list[str]:
    """Tensors that are not LoRA factors: copies of the embeddings, the LM head, or other full weights."""
    from safetensors import safe_open  # heavy

    try:
        with safe_open(str(weights), framework="numpy") as handle:
            names = list(handle.keys())
    except Exception as error:  # safetensors raises its own error types for a truncated file
        return [f"{WEIGHTS_FILENAME} is unreadable ({str(error).splitlines()[0] if str(error) else error})"]
    others = sorted(name for name in names if ".lora_A." not in name and ".lora_B." not in name)
    if not others:
        return []
    shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
    if any("embed" in name or "lm_head" in name for name in others):
        return [
            f"it carries trained embeddings or LM head weights ({shown}); resized vocabularies are not served"
        ]
    return [f"it carries weights that are not LoRA factors ({shown})"]
