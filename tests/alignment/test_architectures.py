"""The whole loop on tiny random-weight models of today's architectures: retrain → adapter → answers.

Each model is built from its config (no download) and paired with a tokenizer that is available
offline: SmolLM2's ChatML tokenizer for Llama and Qwen3 (Qwen's own chat format is ChatML too), the
bundled Gemma's for Gemma 3. Random weights train and answer exactly like trained ones as far as the
code is concerned: chat template, completion-only loss, LoRA targets, the gate, the registry, and
in-process generation with the promoted adapter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from alignment.pipeline import PROMOTED, RunPaths, retrain
from storage import Database
from tests.alignment.conftest import tiny_config
from tests.alignment.seed import answers_before_and_after, seed_good_feedback

pytestmark = pytest.mark.model

SMALL = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4}


def _config(architecture: str, tokenizer: Any) -> Any:
    from transformers import Gemma3TextConfig, LlamaConfig, Qwen3Config

    special = {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "max_position_embeddings": 2048,
        # Random weights must write varied words, not one token over and over (a newline is stripped
        # to an empty answer): Llama and Qwen3 do at 0.2, not at the 0.02 default; Gemma 3, which
        # scales its embeddings by the square root of the width, does at 0.02 and repeats at 0.2.
        "initializer_range": 0.02 if architecture == "gemma3" else 0.2,
    }
    if architecture == "llama":
        return LlamaConfig(**SMALL, num_key_value_heads=2, tie_word_embeddings=True, **special)
    if architecture == "qwen3":
        return Qwen3Config(**SMALL, num_key_value_heads=2, head_dim=16, tie_word_embeddings=True, **special)
    return Gemma3TextConfig(
        **SMALL, num_key_value_heads=1, head_dim=16, sliding_window=64, query_pre_attn_scalar=16, **special
    )


@pytest.fixture(scope="module", params=["llama", "qwen3", "gemma3"])
def tiny_checkpoint(
    request: pytest.FixtureRequest, model_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    from retrieval.generation.checkpoint import ensure_checkpoint

    donor = ensure_checkpoint(
        model_cache, "gemma3-270m" if request.param == "gemma3" else "smollm2-135m-instruct"
    )
    tokenizer = AutoTokenizer.from_pretrained(donor)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(_config(request.param, tokenizer))
    folder = tmp_path_factory.mktemp(f"tiny-{request.param}")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    GenerationConfig.from_pretrained(donor).save_pretrained(folder)  # its stop tokens
    return folder


def test_retrain_promotes_an_adapter_that_changes_the_answers(tiny_checkpoint: Path, tmp_path: Path) -> None:
    database = Database.open(f"sqlite:///{tmp_path / 'tanya.db'}")
    try:
        seed_good_feedback(database)
        outcome = retrain(
            database,
            # Gemma's 262k-word head moves its argmax less per step than the others' 49k.
            tiny_config(
                sft_learning_rate=2e-2 if "gemma3" in tiny_checkpoint.name else 5e-3, sft_max_steps=6
            ),
            RunPaths(tiny_checkpoint, tmp_path / "adapters"),
            show_progress=False,
        )
    finally:
        database.dispose()
    assert outcome.status == PROMOTED, outcome.message
    base, tuned = answers_before_and_after(tiny_checkpoint, outcome.adapter_name, outcome.adapter_path, 12)
    assert tuned.meta["adapter"] == outcome.adapter_name
    assert tuned.text != base.text
