"""Scoring adapters by the answers they write, not only by how likely they find approved ones.

Likelihood alone misled the gate: an adapter trained on short corrections found every approved answer
far more likely (held-out loss 2.90 → 1.69) yet wrote answers that were often the wrong span, or only a
citation (docs/closed-loop.md). So the gate also lets each variant answer the held-out prompts greedily
and compares what it wrote with the approved answer, SQuAD-style (``alignment.answer_match``).

What the model wrote goes through the same answer checks as every answer a user reads
(``retrieval.answering.checks``: the prompt echo removed, the "could not write an answer" text for an
empty reply, the ``[1]`` fallback), so the gate judges the answer users would get from the adapter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alignment.answer_match import contains_gold, exact_match, token_f1
from alignment.evaluate import Scorer
from retrieval.answering.checks import check_answer
from retrieval.answering.prompt import parse_sources


class AnswerWriter:
    """Greedy answers from a :class:`Scorer`'s model, checked as the product checks them, cached per
    (variant, prompt)."""

    def __init__(self, scorer: Scorer, *, max_new_tokens: int) -> None:
        self.scorer = scorer
        self.max_new_tokens = max_new_tokens
        self._cache: dict[tuple[str, str], str] = {}

    def answer(self, variant: str, row: dict[str, Any]) -> str:
        """The variant's answer to a held-out row (``prompt``, and the ``question`` and ``user_message``
        it was written for), after the answer checks."""
        key = (variant, row["prompt"])
        if key not in self._cache:
            with self.scorer.variant(variant):
                reply = self._generate(row["prompt"])
            user_message = row.get("user_message", "")
            self._cache[key] = check_answer(
                reply,
                question=row.get("question", ""),
                prompt=user_message,
                source_count=len(parse_sources(user_message)),
            ).text
        return self._cache[key]

    def _generate(self, prompt: str) -> str:
        import torch  # heavy

        tokenizer = self.scorer.tokenizer
        model = self.scorer.model
        device = next(model.parameters()).device
        encoded = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").to(device)
        with torch.inference_mode():
            output = model.generate(
                **encoded,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
        return tokenizer.decode(output[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True).strip()

    def reference(self, completion: str) -> str:
        """A stored completion without its end-of-turn marker (``ChatFormat.completion`` added it)."""
        tokenizer = self.scorer.tokenizer
        ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
        return tokenizer.decode(ids, skip_special_tokens=True).strip()


def written_answer_metrics(
    writer: AnswerWriter, variant: str, rows: Sequence[dict[str, Any]]
) -> dict[str, float]:
    """Token F1, exact match and containment (percent) of the variant's answers to ``rows``' prompts."""
    if not rows:
        return {}
    f1 = exact = contains = 0.0
    for row in rows:
        written = writer.answer(variant, row)
        golds = [writer.reference(row["completion"])]
        f1 += token_f1(written, golds)
        exact += exact_match(written, golds)
        contains += contains_gold(written, golds)
    count = len(rows)
    return {
        "answer_f1": 100 * f1 / count,
        "answer_exact": 100 * exact / count,
        "answer_contains": 100 * contains / count,
        "answer_count": float(count),
    }
