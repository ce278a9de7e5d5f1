"""Fixtures for the alignment tests: the bundled checkpoint (converted once per machine), its
tokenizer, small real LoRA adapters, and a configuration sized for a handful of CPU steps."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from alignment.chat_format import ChatFormat
from alignment.config import AlignmentConfig
from retrieval.generation.bundled_models import SMOLLM2
from retrieval.generation.checkpoint import MARKER_FILENAME

AdapterFactory = Callable[..., Path]


@pytest.fixture(scope="session")
def tokenizer(model_cache: Path) -> Any:
    """The test model's tokenizer, without converting (or loading) the model when not yet cached."""
    from transformers import AutoTokenizer

    converted = model_cache / SMOLLM2.name
    if (converted / MARKER_FILENAME).is_file():
        return AutoTokenizer.from_pretrained(converted)
    gguf = SMOLLM2.part_paths()[0]
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


@pytest.fixture(scope="session")
def chat(tokenizer: Any) -> ChatFormat:
    return ChatFormat.from_tokenizer(tokenizer)


def tiny_config(**overrides: Any) -> AlignmentConfig:
    """A few CPU steps on short rows; large learning rates so the few steps visibly move the model."""
    values: dict[str, Any] = {
        "device": "cpu",
        "max_length": 320,
        "lora_r": 4,
        "batch_size": 2,
        "sft_max_steps": 3,
        "preference_max_steps": 2,
        "sft_learning_rate": 1e-3,
        "preference_learning_rate": 1e-4,
        "min_sft_rows": 4,
        "min_dpo_pairs": 4,
        "min_kto_rows": 4,
        "eval_fraction": 0.2,
        "min_eval_questions": 3,
    }
    values.update(overrides)
    return AlignmentConfig(**values)


@pytest.fixture(scope="session")
def make_adapter(checkpoint_dir: Path) -> AdapterFactory:
    """Real LoRA adapters for the bundled model, without training: random weights from a seed.

    ``scale=0`` gives an adapter equal to the base model; a non-zero scale one that changes its output.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(checkpoint_dir, dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    model = get_peft_model(base, config)

    def make(folder: Path, *, seed: int = 0, scale: float = 0.05) -> Path:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if "lora_" in name:
                    parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)
        model.save_pretrained(str(folder))
        return folder

    return make


def train_sft_rows(checkpoint_dir: Path, folder: Path, chat: ChatFormat, **overrides: Any) -> Any:
    """A few SFT steps on four copies of one short grounded row, with `tiny_config(**overrides)`."""
    from alignment.datasets import SplitRows
    from alignment.model import load_base_model, resolve_config
    from alignment.progress import RunMonitor, TrainingLog
    from alignment.train import StagePlan, train_adapter

    config = resolve_config(tiny_config(torch_threads=1, max_length=96, **overrides), checkpoint_dir)
    loaded = load_base_model(checkpoint_dir, config)
    prompt = chat.prompt([{"role": "user", "content": "How do I withdraw my vote?"}])
    rows = SplitRows(
        sft=[{"prompt": prompt, "completion": chat.completion("Run tanya feedback 12 none.")}] * 4
    )
    plan = StagePlan(sft=True, dpo=False, kto=False, kto_rows="", reason="test")
    with RunMonitor(TrainingLog(None), show=False) as monitor:
        return train_adapter(loaded, rows, config, plan, folder, monitor)
