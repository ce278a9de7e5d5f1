"""QLoRA batch and length sized to the model and the GPU memory the worker may use (no GPU needed)."""

from __future__ import annotations

import pytest

from alignment.config import AlignmentConfig
from alignment.gpu_plan import QWEN3_8B, QWEN3_14B, ROWS_PER_UPDATE, DoesNotFitError, plan_qlora

EXTRAS = frozenset({"bitsandbytes", "liger_kernel", "flash_attn"})


@pytest.mark.parametrize("shapes", [QWEN3_8B, QWEN3_14B], ids=["8b", "14b"])
def test_bigger_cards_get_bigger_batches_each_inside_its_budget(shapes: dict[str, object]) -> None:
    plans = [plan_qlora(shapes, card, fused_head=True) for card in (24, 48, 80)]
    assert [plan.max_length for plan in plans] == [2048] * 3
    assert plans[0].batch_size <= plans[1].batch_size <= plans[2].batch_size
    for plan, card in zip(plans, (24, 48, 80), strict=True):
        assert plan.estimated_gib <= 0.9 * card
        assert plan.batch_size * plan.gradient_accumulation_steps == ROWS_PER_UPDATE
        assert plan.preference_batch_size == max(1, plan.batch_size // 2)


def test_unfused_logits_and_bf16_weights_cost_batch() -> None:
    fused = plan_qlora(QWEN3_8B, 24, fused_head=True)
    assert plan_qlora(QWEN3_8B, 24, fused_head=False).batch_size < fused.batch_size
    assert plan_qlora(QWEN3_8B, 48, fused_head=True, quantized=False).estimated_gib > fused.estimated_gib


def test_a_model_too_big_for_the_budget_says_how_much_it_needs() -> None:
    seventy_b = {**QWEN3_8B, "hidden_size": 8192, "num_hidden_layers": 80, "intermediate_size": 28672}
    with pytest.raises(DoesNotFitError, match=r"needs about \d+\.\d GiB .* may use 24\.0 GiB"):
        plan_qlora(seventy_b, 24, fused_head=True)
    assert plan_qlora(QWEN3_8B, 9.5, fused_head=True).max_length == 1024  # still one row, shorter


def test_cuda_defaults_follow_the_plan_and_the_installed_extras() -> None:
    plan = plan_qlora(QWEN3_8B, 24, fused_head=True)
    resolved = AlignmentConfig().resolved(
        num_parameters=8_000_000_000, cuda=True, gpu_plan=plan, installed=EXTRAS
    )
    assert (resolved.batch_size, resolved.preference_batch_size, resolved.max_length) == (
        plan.batch_size,
        plan.preference_batch_size,
        plan.max_length,
    )
    assert resolved.gradient_accumulation_steps == plan.gradient_accumulation_steps
    assert (
        resolved.optimizer == "paged_adamw_8bit"
        and resolved.quantize_4bit
        and resolved.gradient_checkpointing
    )
    assert resolved.liger_kernels and resolved.sft_packing and resolved.sft_learning_rate == 1e-4

    bare = AlignmentConfig().resolved(num_parameters=8_000_000_000, cuda=True, gpu_plan=plan)
    assert bare.optimizer == "adamw_torch_fused" and not bare.liger_kernels and not bare.sft_packing

    chosen = AlignmentConfig(batch_size=3, max_length=512, sft_packing=False).resolved(
        num_parameters=8_000_000_000, cuda=True, gpu_plan=plan, installed=EXTRAS
    )
    assert (chosen.batch_size, chosen.preference_batch_size, chosen.max_length) == (3, 1, 512)
    assert not chosen.sft_packing


def test_cpu_keeps_its_measured_defaults() -> None:
    resolved = AlignmentConfig().resolved(num_parameters=270_000_000, cuda=False, installed=EXTRAS)
    assert (resolved.batch_size, resolved.preference_batch_size, resolved.gradient_accumulation_steps) == (
        2,
        2,
        1,
    )
    assert resolved.max_length == 1024 and resolved.optimizer == "adamw_torch_fused"
    assert not (resolved.liger_kernels or resolved.sft_packing or resolved.quantize_4bit)
    with pytest.raises(ValueError, match="gpu_memory_gib must be positive"):
        AlignmentConfig(gpu_memory_gib=0)
