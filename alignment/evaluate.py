"""Scoring adapters by the likelihood they give to answers whose quality is known.

Generating answers and grading them would need a judge; the held-out feedback already says which
answers are good and which are bad, so each model is scored by how likely it finds them:

* answers (held-out 👍 answers and corrections, and the regression set): mean negative log-likelihood
  per answer token — lower means the model would rather write the approved answer;
* pairs: preference accuracy (the chosen answer is more likely per token than the rejected one) and
  the DPO reward margin, β·[(log π(chosen) − log π_base(chosen)) − (log π(rejected) − log π_base(rejected))];
* unpaired thumbs: the same implicit reward, desirable minus undesirable.

All variants (base, active adapter, candidate) share one base model in memory; peft switches adapters.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignment.model import load_tokenizer

BASE = "base"


@dataclass(frozen=True)
class Scored:
    """The summed log-probability of a completion and its token count."""

    logprob: float
    tokens: int

    @property
    def mean(self) -> float:
        return self.logprob / max(self.tokens, 1)


class Scorer:
    """Holds the base model and any number of named adapters; ``score`` runs under one of them."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.adapters: list[str] = []
        self._cache: dict[tuple[str, str, str], Scored] = {}

    @classmethod
    def load(cls, model_path: Path, adapters: dict[str, Path], *, device: str = "cpu") -> Scorer:
        import torch  # heavy
        from transformers import AutoModelForCausalLM  # heavy

        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
        if device == "cuda":
            model = model.to("cuda")
        scorer = cls(model, load_tokenizer(model_path))
        for name, path in adapters.items():
            scorer.add_adapter(name, path)
        scorer.model.eval()
        return scorer

    def add_adapter(self, name: str, path: Path) -> None:
        from peft import PeftModel  # heavy

        if not self.adapters:
            self.model = PeftModel.from_pretrained(self.model, str(path), adapter_name=name)
        else:
            self.model.load_adapter(str(path), adapter_name=name)
        self.adapters.append(name)

    @contextmanager
    def variant(self, name: str) -> Iterator[None]:
        """Run the body under adapter ``name`` (or the plain base model for ``BASE``)."""
        if name == BASE:
            if self.adapters:
                with self.model.disable_adapter():
                    yield
            else:
                yield
            return
        if name not in self.adapters:
            raise KeyError(f"no adapter {name!r} loaded")
        self.model.set_adapter(name)
        yield

    def score(self, variant: str, prompt: str, completion: str) -> Scored:
        """Sum of log-probabilities of the completion's tokens after the prompt."""
        key = (variant, prompt, completion)
        if key not in self._cache:
            with self.variant(variant):
                self._cache[key] = self._score(prompt, completion)
        return self._cache[key]

    def _score(self, prompt: str, completion: str) -> Scored:
        import torch  # heavy

        prompt_ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        full_ids = self.tokenizer(prompt + completion, add_special_tokens=False)["input_ids"]
        start = 0
        while start < min(len(prompt_ids), len(full_ids)) and prompt_ids[start] == full_ids[start]:
            start += 1
        start = max(start, 1)
        if start >= len(full_ids):
            return Scored(0.0, 0)
        device = next(self.model.parameters()).device
        input_ids = torch.tensor([full_ids], device=device)
        keep = len(full_ids) - start + 1  # logits only where they predict a completion token
        with torch.inference_mode():
            logits = self.model(input_ids=input_ids, logits_to_keep=keep).logits[0, :-1].float()
        targets = input_ids[0, start:]
        logprobs = torch.log_softmax(logits, dim=-1).gather(1, targets[:, None]).squeeze(1)
        return Scored(float(logprobs.sum()), int(targets.numel()))


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def answer_nll(scorer: Scorer, variant: str, rows: Sequence[dict[str, Any]]) -> float | None:
    """Mean per-token negative log-likelihood of reference answers (lower is better)."""
    return _mean([-scorer.score(variant, row["prompt"], row["completion"]).mean for row in rows])


def pair_metrics(
    scorer: Scorer, variant: str, pairs: Sequence[dict[str, Any]], beta: float
) -> dict[str, float]:
    if not pairs:
        return {}
    wins, margins = [], []
    for pair in pairs:
        chosen = scorer.score(variant, pair["prompt"], pair["chosen"])
        rejected = scorer.score(variant, pair["prompt"], pair["rejected"])
        wins.append(1.0 if chosen.mean > rejected.mean else 0.0)
        base_chosen = scorer.score(BASE, pair["prompt"], pair["chosen"])
        base_rejected = scorer.score(BASE, pair["prompt"], pair["rejected"])
        margins.append(
            beta * ((chosen.logprob - base_chosen.logprob) - (rejected.logprob - base_rejected.logprob))
        )
    return {"pair_accuracy": sum(wins) / len(wins), "reward_margin": sum(margins) / len(margins)}


def thumb_metrics(
    scorer: Scorer, variant: str, rows: Sequence[dict[str, Any]], beta: float
) -> dict[str, float]:
    good, bad = [], []
    for row in rows:
        reward = beta * (
            scorer.score(variant, row["prompt"], row["completion"]).logprob
            - scorer.score(BASE, row["prompt"], row["completion"]).logprob
        )
        (good if row["label"] else bad).append(reward)
    if not good or not bad:
        return {}
    return {"thumb_reward_gap": sum(good) / len(good) - sum(bad) / len(bad)}


def evaluate_variant(
    scorer: Scorer,
    variant: str,
    *,
    answers: Sequence[dict[str, Any]],
    pairs: Sequence[dict[str, Any]],
    thumbs: Sequence[dict[str, Any]],
    regression: Sequence[dict[str, Any]],
    beta: float,
) -> dict[str, float]:
    """Every gate metric of one variant; a metric is missing when there was nothing to score it on."""
    metrics: dict[str, float] = {}
    scored = (
        ("answer_nll", answer_nll(scorer, variant, answers)),
        ("regression_nll", answer_nll(scorer, variant, regression)),
    )
    for name, value in scored:
        if value is not None:
            metrics[name] = value
    metrics.update(pair_metrics(scorer, variant, pairs, beta))
    metrics.update(thumb_metrics(scorer, variant, thumbs, beta))
    return metrics
