"""Rendering a chat with a checkpoint's own template, the same way for answering and for training."""

from __future__ import annotations

from typing import Any


def apply_chat_template(tokenizer: Any, chat: list[dict[str, str]], **options: Any) -> Any:
    """
    `tokenizer.apply_chat_template` with thinking turned off.

    Qwen3's template writes a reasoning block before an answer unless `enable_thinking` is false, and
    tanya wants short, cited answers (and trains them); it then writes an empty `<think></think>` and
    the answer. Every other template ignores the variable, so it is always passed.
    """
    return tokenizer.apply_chat_template(chat, enable_thinking=False, **options)
