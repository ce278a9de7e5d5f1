"""The fixed regression set: questions about tanya whose answers the user guide states.

Each row carries the passage that answers it, so scoring needs no document index and gives the same
numbers on every machine. The prompt is the bot's own (``retrieval.answering.prompt``: numbered sources, then the
question), so a candidate that stops trusting its sources shows up here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alignment.chat_format import ChatFormat
from retrieval.answering.prompt import make_prompt_builder

REGRESSION_FILE = Path(__file__).parent / "data" / "regression.jsonl"


def grounded_messages(question: str, passages: list[tuple[str, str]]) -> list[dict[str, str]]:
    """The bot's own grounded prompt (``retrieval.answering.prompt``) for ``question`` over (title, text) passages."""
    from haystack import Document  # heavy

    documents = [Document(content=text, meta={"title": title}) for title, text in passages]
    messages = make_prompt_builder().run(documents=documents, question=question)["prompt"]
    return [{"role": message.role.value, "content": message.text or ""} for message in messages]


def load_regression_set(path: Path = REGRESSION_FILE) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            missing = {"question", "answer", "context"} - set(row)
            if missing:
                raise ValueError(f"{path}:{number} lacks {', '.join(sorted(missing))}")
            rows.append(row)
    return rows


def regression_rows(chat: ChatFormat, path: Path = REGRESSION_FILE) -> list[dict[str, Any]]:
    """Prompt/completion rows in the model's chat template, ready for ``evaluate.answer_nll``."""
    rows = []
    for item in load_regression_set(path):
        title = Path(str(item.get("source", "guide"))).stem.replace("-", " ")
        messages = grounded_messages(item["question"], [(title, item["context"])])
        rows.append({"prompt": chat.prompt(messages), "completion": chat.completion(item["answer"])})
    return rows
