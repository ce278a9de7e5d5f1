"""The default bundled model, Gemma 3 270M (multilingual): converted, trained, answering.

Gemma 3 270M is a base model whose GGUF file has no chat template. These tests hold the three things
tanya adds to make it usable: its turn format with exactly one BOS on every path that tokenizes a
prompt, generation that stops at ``<end_of_turn>``, and the product's SFT stage teaching it to answer
in that format and stop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from alignment.chat_format import ChatFormat
from alignment.datasets import SplitRows
from alignment.model import load_base_model, resolve_config
from alignment.progress import RunMonitor, TrainingLog
from alignment.train import StagePlan, train_adapter
from retrieval.generation.checkpoint import ensure_checkpoint
from tests.alignment.conftest import tiny_config

pytestmark = pytest.mark.model

QUESTION = "Siapa yang membangun Candi Borobudur?"
ANSWER = "Wangsa Syailendra membangunnya pada abad ke-9 [1]."


@pytest.fixture(scope="module")
def gemma_checkpoint(model_cache: Path) -> Path:
    return ensure_checkpoint(model_cache, "gemma3-270m")


def test_the_checkpoint_has_gemma_turns_one_bos_and_stops_at_the_end_of_a_turn(
    gemma_checkpoint: Path,
) -> None:
    from transformers import AutoTokenizer, GenerationConfig

    tokenizer = AutoTokenizer.from_pretrained(gemma_checkpoint)
    chat = [{"role": "system", "content": "Jawab dari sumber."}, {"role": "user", "content": QUESTION}]
    prompt = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<start_of_turn>model\n")
    for ids in (tokenizer(prompt)["input_ids"], tokenizer(prompt, add_special_tokens=False)["input_ids"]):
        assert ids.count(tokenizer.bos_token_id) == 1 and ids[0] == tokenizer.bos_token_id
    assert tokenizer.eos_token == "<end_of_turn>"
    stops = GenerationConfig.from_pretrained(gemma_checkpoint).eos_token_id
    assert tokenizer.eos_token_id in stops and tokenizer.convert_tokens_to_ids("<eos>") in stops
    assert ChatFormat.from_tokenizer(tokenizer).completion_suffix == "<end_of_turn>"


def test_sft_teaches_it_to_answer_in_turn_and_stop(gemma_checkpoint: Path, tmp_path: Path) -> None:
    from haystack.dataclasses import ChatMessage

    from retrieval.generation.local import LocalChatGenerator

    # 16 steps at 2e-3 were measured to teach both the answer and where the turn ends; 8 steps at 5e-3
    # taught the answer, and the reply then ran on past it.
    config = resolve_config(
        tiny_config(sft_max_steps=16, sft_learning_rate=2e-3, lora_r=8, max_length=128), gemma_checkpoint
    )
    loaded = load_base_model(gemma_checkpoint, config)
    chat = ChatFormat.from_tokenizer(loaded.tokenizer)
    prompt = chat.prompt([{"role": "user", "content": QUESTION}])
    rows = SplitRows(sft=[{"prompt": prompt, "completion": chat.completion(ANSWER)}] * 4)
    plan = StagePlan(sft=True, dpo=False, kto=False, kto_rows="", reason="test")
    with RunMonitor(TrainingLog(None), show=False) as monitor:
        result = train_adapter(loaded, rows, config, plan, tmp_path / "adapter", monitor)
    assert result.steps == {"sft": 16}
    del loaded

    generator = LocalChatGenerator(
        model_path=gemma_checkpoint,
        max_new_tokens=40,
        adapters={"trained": str(tmp_path / "adapter")},
        active_adapter="trained",
        torch_threads=1,
    )
    generator.warm_up()
    reply: Any = generator.run([ChatMessage.from_user(QUESTION)])["replies"][0]
    assert "Syailendra" in reply.text, reply.text
    assert reply.meta["finish_reason"] == "stop", f"ran on past the end of its turn: {reply.text!r}"
    assert "<end_of_turn>" not in reply.text and "<start_of_turn>" not in reply.text
