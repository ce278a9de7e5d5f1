"""Fitting a chat into a model's prompt budget by shortening it, never by refusing it.

A user can paste a whole log file into Slack, and retrieval can return long passages; the answer should
then be built from less context, not replaced by an error. What goes is chosen so that a grounded answer is
still possible: earlier thread turns first, then the middle of the longest message, which in the RAG prompt
holds the lower-ranked sources, so that the instructions, the best source and the question survive.
"""

from __future__ import annotations

from typing import Any

from retrieval.generation.chat_template import apply_chat_template

ELISION = "\n[…]\n"
# Re-tokenizing the two halves of a cut message can cost a few more tokens than the arithmetic says.
_SLACK_TOKENS = 16
_MAX_TAIL_TOKENS = 160


def encode_chat(tokenizer: Any, chat: list[dict[str, str]]) -> list[int]:
    """Token ids of `chat` rendered with the tokenizer's chat template, ready for the assistant's turn."""
    encoded = apply_chat_template(
        tokenizer, chat, add_generation_prompt=True, tokenize=True, return_dict=False
    )
    return list(encoded)


def fit_chat(tokenizer: Any, chat: list[dict[str, str]], budget: int) -> tuple[list[int], bool]:
    """Token ids of `chat` in at most `budget` tokens, and whether anything had to be cut."""
    _, ids, truncated = fit_messages(tokenizer, chat, budget)
    return ids, truncated


def fit_messages(
    tokenizer: Any, chat: list[dict[str, str]], budget: int
) -> tuple[list[dict[str, str]], list[int], bool]:
    """`chat` shortened to fit `budget` tokens, its token ids, and whether anything had to be cut.

    The messages are what a server is sent (it renders them itself); when not even the instructions fit,
    the ids keep both ends of the prompt and the messages are the shortest this could make them.
    """
    ids = encode_chat(tokenizer, chat)
    if len(ids) <= budget:
        return chat, ids, False
    chat = [dict(message) for message in chat]
    last_user = max((i for i, m in enumerate(chat) if m["role"] == "user"), default=len(chat) - 1)
    first = 1 if chat and chat[0]["role"] == "system" else 0
    while len(ids) > budget and first < last_user:
        del chat[first]  # the oldest earlier turn
        last_user -= 1
        ids = encode_chat(tokenizer, chat)
    for _ in range(4):
        if len(ids) <= budget:
            return chat, ids, True
        longest = max(range(len(chat)), key=lambda i: len(chat[i]["content"]))
        tokens = tokenizer.encode(chat[longest]["content"], add_special_tokens=False)
        keep = len(tokens) - (len(ids) - budget) - _SLACK_TOKENS
        if keep < 2 * _SLACK_TOKENS:
            break
        tail = min(keep // 3, _MAX_TAIL_TOKENS)
        head_text = tokenizer.decode(tokens[: keep - tail])
        tail_text = tokenizer.decode(tokens[len(tokens) - tail :])
        chat[longest]["content"] = head_text + ELISION + tail_text
        ids = encode_chat(tokenizer, chat)
    if len(ids) > budget:
        # Nothing sensible is left to shorten (a budget smaller than the instructions): keep both ends.
        half = budget // 2
        ids = ids[:half] + ids[len(ids) - (budget - half) :]
    return chat, ids, True
