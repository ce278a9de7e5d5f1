"""Each way vLLM's LoRA loader refuses an adapter is caught before the adapter is registered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from retrieval.generation.served_adapter_rules import (
    VLLM_LORA_RANKS,
    check_max_lora_rank,
    served_adapter_refusals,
)

torch = pytest.importorskip("torch")


def _adapter(folder: Path, *, extra_tensors: tuple[str, ...] = (), **config: Any) -> Path:
    """A real peft-shaped adapter folder: its config and LoRA factors for one projection."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    rank = int(config.get("r", 16))
    values = {
        "peft_type": "LORA",
        "r": rank,
        "lora_alpha": 2 * rank,
        "bias": "none",
        "use_dora": False,
        "modules_to_save": None,
        "target_modules": ["q_proj"],
        **config,
    }
    (folder / "adapter_config.json").write_text(json.dumps(values), encoding="utf-8")
    tensors = {
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": torch.zeros(rank, 64),
        "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": torch.zeros(64, rank),
        **{name: torch.zeros(4, 64) for name in extra_tensors},
    }
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    return folder


def test_a_plain_lora_adapter_within_the_rank_is_accepted(tmp_path: Path) -> None:
    assert served_adapter_refusals(_adapter(tmp_path / "a", r=16), max_lora_rank=16) == []
    assert served_adapter_refusals(_adapter(tmp_path / "b", r=8), max_lora_rank=32) == []


@pytest.mark.parametrize(
    ("config", "extra", "reason"),
    [
        ({"r": 64}, (), "rank 64 is above the server's --max-lora-rank 32"),
        ({"r": 12}, (), "rank 12 is not one of vLLM's LoRA ranks"),
        ({"r": 16, "rank_pattern": {"q_proj": 64}}, (), "rank 64 is above"),
        ({"modules_to_save": ["lm_head"]}, (), "modules_to_save (lm_head) is not supported"),
        ({"use_dora": True}, (), "DoRA adapters are not supported"),
        ({"bias": "lora_only"}, (), "trained biases are not supported"),
        ({"lora_bias": True}, (), "trained biases are not supported"),
        ({"trainable_token_indices": [262144]}, (), "new tokens"),
        ({}, ("base_model.model.model.embed_tokens.weight",), "trained embeddings or LM head"),
        ({}, ("base_model.model.model.norm.weight",), "weights that are not LoRA factors"),
        ({"peft_type": "IA3"}, (), "only LoRA adapters are served"),
    ],
)
def test_each_thing_vllm_refuses_is_named(
    tmp_path: Path, config: dict[str, Any], extra: tuple[str, ...], reason: str
) -> None:
    refusals = served_adapter_refusals(
        _adapter(tmp_path / "a", extra_tensors=extra, **config), max_lora_rank=32
    )
    assert any(reason in line for line in refusals), refusals


def test_unreadable_files_are_refusals_not_crashes(tmp_path: Path) -> None:
    folder = _adapter(tmp_path / "a")
    (folder / "adapter_model.safetensors").write_bytes(b"\x00" * 10)
    assert any("unreadable" in line for line in served_adapter_refusals(folder, max_lora_rank=16))
    (folder / "adapter_config.json").write_text("{", encoding="utf-8")
    assert any("unreadable" in line for line in served_adapter_refusals(folder, max_lora_rank=16))


def test_the_server_limit_must_be_one_vllm_starts_with() -> None:
    assert all(check_max_lora_rank(rank) == rank for rank in VLLM_LORA_RANKS)
    with pytest.raises(ValueError, match="not 24"):
        check_max_lora_rank(24)


def test_the_rank_a_served_deployment_trains_stays_within_the_server(tmp_path: Path) -> None:
    from alignment.config import AlignmentConfig

    large = 8_000_000_000
    assert AlignmentConfig(served_max_lora_rank=16).resolved(num_parameters=large, cuda=True).lora_r == 16
    assert AlignmentConfig().resolved(num_parameters=large, cuda=True).lora_r == 32
    with pytest.raises(ValueError, match="--max-lora-rank"):
        AlignmentConfig(served_max_lora_rank=20)


def test_compose_tells_the_worker_the_rank_vllm_serves() -> None:
    import yaml

    compose = yaml.safe_load((Path(__file__).resolve().parents[3] / "deploy" / "compose.yaml").read_text())
    environment = compose["x-tanya"]["environment"]
    flags = dict(arg.split("=", 1) for arg in compose["services"]["vllm"]["command"] if "=" in arg)
    assert environment["TANYA_SERVER_MAX_LORA_RANK"] == flags["--max-lora-rank"]
