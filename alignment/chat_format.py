"""Rendering stored prompts and answers in the chat template of the model being trained.

Training rows are plain text (TRL's "standard" prompt-completion format) rather than message lists, so
that the prompt is exactly the string the model saw when it answered, and so that the end-of-turn
marker is part of the completion: the model has to learn where an answer stops, and TRL only appends
``eos_token`` when the completion does not already end with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from retrieval.generation.chat_template import apply_chat_template

_PROBE = "\x00tanya-probe\x00"


@dataclass(frozen=True)
class ChatFormat:
    """A tokenizer's chat template reduced to the two things the datasets need."""

    tokenizer: Any
    completion_suffix: str
    generation_header: str

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> ChatFormat:
        """Work out what the template writes after an assistant message, by rendering a probe answer.

        For ChatML templates this is ``<|im_end|>`` plus a newline; the trailing newline is dropped when
        the text before it is the EOS token, so TRL does not append a second EOS.
        """
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("the tokenizer has no chat template")
        chat = [{"role": "user", "content": "?"}]
        prompt = apply_chat_template(tokenizer, chat, tokenize=False, add_generation_prompt=True)
        closed = apply_chat_template(tokenizer, chat, tokenize=False)
        header = prompt[len(closed) :] if prompt.startswith(closed) else ""
        full = apply_chat_template(
            tokenizer, [*chat, {"role": "assistant", "content": _PROBE}], tokenize=False
        )
        if not full.startswith(prompt) or _PROBE not in full:
            raise ValueError("the chat template renders the assistant turn in an unexpected way")
        suffix = full[len(prompt) :].split(_PROBE, 1)[1]
        eos = tokenizer.eos_token or ""
        if eos and eos in suffix:
            suffix = suffix[: suffix.index(eos) + len(eos)]
        return cls(tokenizer=tokenizer, completion_suffix=suffix, generation_header=header)

    def prompt(self, messages: Sequence[dict[str, str]], stored_prompt: str = "") -> str:
        """The prompt the answer was written for, in this model's template, ending where the answer begins.

        The stored prompt is used as is when it is already in this template (it is then exactly what the
        model saw, including any shortening the generator applied to fit its context). A prompt stored
        in another model's format (an answer from a served model) is rendered again from its messages.
        """
        if stored_prompt and self.generation_header and stored_prompt.endswith(self.generation_header):
            return stored_prompt
        if messages:
            return apply_chat_template(
                self.tokenizer,
                [dict(message) for message in messages],
                tokenize=False,
                add_generation_prompt=True,
            )
        return stored_prompt

    def completion(self, text: str) -> str:
        return text.strip() + self.completion_suffix

    def token_count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
