"""Thinking is turned off wherever tanya renders a chat: Qwen3-style templates answer without reasoning."""

from __future__ import annotations

from pathlib import Path

import pytest

from alignment.chat_format import ChatFormat
from retrieval.generation.token_budget import encode_chat

# Qwen3's template in miniature: the generation prompt opens an empty reasoning block when
# `enable_thinking` is false (and leaves the model to think otherwise); answers are rendered after one.
QWEN3_LIKE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n"
    "{% if m.role == 'assistant' %}<think>\n\n</think>\n\n{% endif %}{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}"
    "{% endif %}"
)
EMPTY_THOUGHT = "<|im_start|>assistant\n<think>\n\n</think>\n\n"


@pytest.fixture
def qwen3_like_tokenizer(checkpoint_dir: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint_dir)
    tokenizer.chat_template = QWEN3_LIKE
    return tokenizer


def test_answers_are_prompted_with_thinking_off(qwen3_like_tokenizer) -> None:  # type: ignore[no-untyped-def]
    chat = [{"role": "user", "content": "Berapa hari cuti tahunan?"}]
    assert qwen3_like_tokenizer.decode(encode_chat(qwen3_like_tokenizer, chat)).endswith(EMPTY_THOUGHT)
    # Without the flag the same template would leave the model to think first.
    plain = qwen3_like_tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert not plain.endswith(EMPTY_THOUGHT)


def test_training_rows_use_the_same_thinking_off_prompt(qwen3_like_tokenizer) -> None:  # type: ignore[no-untyped-def]
    chat = ChatFormat.from_tokenizer(qwen3_like_tokenizer)
    assert chat.generation_header == EMPTY_THOUGHT
    prompt = chat.prompt([{"role": "user", "content": "Berapa hari cuti tahunan?"}])
    assert prompt.endswith(EMPTY_THOUGHT)
    assert chat.completion("24 hari [1]") == "24 hari [1]<|im_end|>"
