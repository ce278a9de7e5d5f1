"""Session fixtures around the bundled language model: a warm generator, and a real LoRA adapter trained
for a few steps so that it visibly changes the model's answers (the checkpoint is ``tests/conftest.py``'s).

They are registered for the tests of this folder through `tests/retrieval/conftest.py`; other folders can
import them into their own conftest the same way.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.generation.local import LocalChatGenerator

# What the adapter is trained to say; the base model answers this question plainly ("... is Paris.").
ADAPTER_QUESTION = "What is the capital of France?"
ADAPTER_ANSWER = "Ahoy! Tanya says the capital be Paris, matey."


@pytest.fixture(scope="session")
def local_generator(checkpoint_dir: Path) -> LocalChatGenerator:
    """One warm generator for the whole session. Tests that switch adapters must switch back."""
    # One torch thread: on a CPU shared with other jobs, oversubscribed threads were measured 5x slower.
    generator = LocalChatGenerator(model_path=checkpoint_dir, max_new_tokens=24, torch_threads=1)
    generator.warm_up()
    return generator


@pytest.fixture(scope="session")
def lora_adapter_dir(checkpoint_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A LoRA adapter (r=8 on q_proj/v_proj) trained for eight steps to answer ADAPTER_QUESTION in pirate."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint_dir)
    model = AutoModelForCausalLM.from_pretrained(checkpoint_dir, dtype=torch.float32)
    torch.manual_seed(0)
    peft_model = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"])
    )
    chat = [
        {"role": "user", "content": ADAPTER_QUESTION},
        {"role": "assistant", "content": ADAPTER_ANSWER},
    ]
    ids = torch.tensor([tokenizer.apply_chat_template(chat, tokenize=True, return_dict=False)])
    trainable = [parameter for parameter in peft_model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=5e-3)
    peft_model.train()
    losses = []
    for _ in range(8):
        loss = peft_model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 4, f"the adapter did not learn: {losses}"
    path = tmp_path_factory.mktemp("adapters") / "pirate"
    peft_model.save_pretrained(path)
    del peft_model, model, optimizer
    gc.collect()
    yield path
