"""Feedback → SFT rows, DPO pairs and KTO rows, split by question, with the ids they came from.

* SFT: answers with a 👍 majority, and corrections (a person's own answer), each completing the prompt
  the original answer was produced from.
* DPO: a good answer (correction or 👍) against a 👎 answer to the same question, or to a question that
  reads the same once case, punctuation and spacing are ignored. The pair uses the good answer's
  prompt: the preferred answer must be grounded in the sources it is shown with.
* KTO: 👍 and 👎 answers that found no partner, as unpaired desirable/undesirable rows.

Everything about one question (every phrasing that normalises to the same key) lands on the same side of
the split, so the gate never scores the model on a question it was trained on. The split hashes the
question key with a salt, so it does not change when unrelated feedback arrives.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from alignment.chat_format import ChatFormat
from alignment.citations import cite_correction
from alignment.config import AlignmentConfig
from alignment.feedback import FeedbackSnapshot, JudgedAnswer, normalize_question
from alignment.prompt_fitting import Fit, fit_to_length


@dataclass(frozen=True)
class Lineage:
    """Which stored rows a dataset was built from."""

    interaction_ids: tuple[int, ...] = ()
    vote_ids: tuple[int, ...] = ()
    correction_ids: tuple[int, ...] = ()


@dataclass
class SplitRows:
    """The rows of one side of the split (train or held-out), by kind."""

    sft: list[dict[str, Any]] = field(default_factory=list)
    dpo: list[dict[str, Any]] = field(default_factory=list)
    kto: list[dict[str, Any]] = field(default_factory=list)
    # The SFT rows whose answer a person wrote (corrections). The gate grades written answers against
    # these only: a 👍 answer is one the old model wrote itself, and it would simply write it again.
    written: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"sft": len(self.sft), "dpo": len(self.dpo), "kto": len(self.kto)}


@dataclass
class FeedbackDatasets:
    """Training and held-out rows, plus the bookkeeping the run summary and lineage need."""

    train: SplitRows
    eval: SplitRows
    train_questions: list[str]
    eval_questions: list[str]
    excluded: dict[str, int]
    lineage: dict[str, Lineage]
    # Answers whose prompt was shortened to fit the training length, by what was shortened.
    fitted: dict[str, int] = field(default_factory=dict)

    def stats(self) -> dict[str, Any]:
        return {
            "train": self.train.counts(),
            "eval": self.eval.counts(),
            "questions": {"train": len(self.train_questions), "eval": len(self.eval_questions)},
            "excluded": dict(sorted(self.excluded.items())),
            "fitted": dict(sorted(self.fitted.items())),
        }

    def lineage_json(self) -> dict[str, Any]:
        return {
            split: {
                "interactions": list(item.interaction_ids),
                "votes": list(item.vote_ids),
                "corrections": list(item.correction_ids),
            }
            for split, item in self.lineage.items()
        }


def split_rank(question_key: str, salt: str) -> float:
    """A stable number in [0, 1) per question; below ``eval_fraction`` means held out."""
    digest = hashlib.sha256(f"{salt}\x00{question_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def choose_eval_questions(keys: Iterable[str], config: AlignmentConfig) -> set[str]:
    ranked = sorted(set(keys), key=lambda key: (split_rank(key, config.split_salt), key))
    if len(ranked) < 2:
        return set()
    chosen = {key for key in ranked if split_rank(key, config.split_salt) < config.eval_fraction}
    wanted = min(config.min_eval_questions, len(ranked) - 1)
    for key in ranked:
        if len(chosen) >= wanted:
            break
        chosen.add(key)
    # Never hold out everything: at least one question must remain to train on.
    while len(chosen) >= len(ranked):
        chosen.discard(max(chosen, key=lambda key: split_rank(key, config.split_salt)))
    return chosen


@dataclass(frozen=True)
class _Good:
    answer: JudgedAnswer
    text: str
    correction_id: int | None


@dataclass(frozen=True)
class _Fitted:
    prompt: str
    completions: tuple[str, ...]
    user_message: str


class _Builder:
    """Accumulates rows for one side of the split, dropping duplicates and fitting long prompts."""

    def __init__(self, chat: ChatFormat, max_length: int | None) -> None:
        self.chat = chat
        self.max_length = max_length
        self.rows = SplitRows()
        self.seen: set[tuple[str, ...]] = set()
        self.interactions: set[int] = set()
        self.votes: set[int] = set()
        self.corrections: set[int] = set()
        self.excluded: dict[str, int] = defaultdict(int)
        self._lengths: dict[str, int] = {}
        self.too_long: set[int] = set()  # interactions whose prompt and answer exceed max_length
        self.fitted: dict[Fit, set[int]] = defaultdict(set)  # interactions shortened to fit, by how

    def _length(self, text: str) -> int:
        if text not in self._lengths:
            self._lengths[text] = self.chat.token_count(text)
        return self._lengths[text]

    def _measure(self, messages: list[dict[str, str]], texts: Any) -> int:
        longest = max(self._length(self.chat.completion(text)) for text in texts)
        return self._length(self.chat.prompt(messages)) + longest

    def _fit(self, source: JudgedAnswer, *texts: str) -> _Fitted | None:
        """The row's prompt and completions within ``max_length``: as stored when they fit, else with the
        prompt shortened (``alignment.prompt_fitting``); None, counted as too long, when even that fails."""
        prompt = self.chat.prompt(source.messages, source.prompt)
        completions = tuple(self.chat.completion(text) for text in texts)
        longest = max(self._length(completion) for completion in completions)
        if self.max_length is None or self._length(prompt) + longest <= self.max_length:
            return _Fitted(prompt, completions, _user_message(source.messages))
        fitted = None
        if source.messages:
            fitted = fit_to_length(
                source.messages, texts, max_length=self.max_length, length_of=self._measure
            )
        if fitted is None:
            self.too_long.add(source.interaction_id)
            return None
        for change in fitted.changes:
            self.fitted[change].add(source.interaction_id)
        return _Fitted(
            self.chat.prompt(fitted.messages),
            tuple(self.chat.completion(text) for text in fitted.completions),
            _user_message(fitted.messages),
        )

    def _use(self, *sources: JudgedAnswer, correction_id: int | None = None, with_votes: bool = True) -> None:
        for source in sources:
            self.interactions.add(source.interaction_id)
            if with_votes:
                self.votes.update(source.vote_ids)
        if correction_id is not None:
            self.corrections.add(correction_id)

    def _first(self, key: tuple[str, ...]) -> bool:
        if key in self.seen:
            self.excluded[f"duplicate_{key[0]}"] += 1
            return False
        self.seen.add(key)
        return True

    def add_sft(self, good: _Good) -> None:
        fitted = self._fit(good.answer, good.text)
        if fitted is None:
            return
        if self._first(("sft", good.answer.question_key, normalize_question(good.text))):
            row = {"prompt": fitted.prompt, "completion": fitted.completions[0]}
            self.rows.sft.append(row)
            if good.correction_id is not None:  # what the gate needs to check an answer as the product does
                self.rows.written.append(
                    {**row, "question": good.answer.question, "user_message": fitted.user_message}
                )
            self._use(good.answer, correction_id=good.correction_id, with_votes=good.correction_id is None)

    def add_pair(self, good: _Good, bad: JudgedAnswer) -> bool:
        if normalize_question(good.text) == normalize_question(bad.answer):
            return False
        fitted = self._fit(good.answer, good.text, bad.answer)
        if fitted is None or not self._first(
            ("dpo", good.answer.question_key, normalize_question(good.text), normalize_question(bad.answer))
        ):
            return False
        chosen, rejected = fitted.completions
        self.rows.dpo.append({"prompt": fitted.prompt, "chosen": chosen, "rejected": rejected})
        self._use(good.answer, correction_id=good.correction_id, with_votes=good.correction_id is None)
        self._use(bad)
        return True

    def add_unpaired(self, answer: JudgedAnswer, *, desirable: bool) -> None:
        fitted = self._fit(answer, answer.answer)
        if fitted is None or not self._first(
            ("kto", answer.question_key, normalize_question(answer.answer), str(desirable))
        ):
            return
        self.rows.kto.append(
            {"prompt": fitted.prompt, "completion": fitted.completions[0], "label": desirable}
        )
        self._use(answer)

    def lineage(self) -> Lineage:
        return Lineage(
            interaction_ids=tuple(sorted(self.interactions)),
            vote_ids=tuple(sorted(self.votes)),
            correction_ids=tuple(sorted(self.corrections)),
        )


def _user_message(messages: Any) -> str:
    """The last user turn of the prompt an answer was written for: the sources and the question."""
    users = [message["content"] for message in messages if message.get("role") == "user"]
    return users[-1] if users else ""


def _goods(answers: list[JudgedAnswer]) -> list[_Good]:
    goods = []
    for answer in answers:
        goods.extend(
            _Good(answer, cite_correction(text, answer.messages), correction_id)
            for correction_id, text in answer.corrections
        )
        if answer.is_good:
            goods.append(_Good(answer, answer.answer, None))
    return goods


def _build_group(builder: _Builder, answers: list[JudgedAnswer], config: AlignmentConfig) -> None:
    """All rows for one normalised question: SFT for the good answers, pairs, then leftovers for KTO."""
    goods = _goods(answers)
    bads = [answer for answer in answers if answer.is_bad]
    for good in goods:
        builder.add_sft(good)
    paired_goods: set[int] = set()
    paired_bads: set[int] = set()
    pairs = 0
    # Same-interaction pairs first (a correction against the answer it corrects), then across phrasings.
    candidates = sorted(
        ((good, bad) for good in goods for bad in bads),
        key=lambda item: (item[0].answer.interaction_id != item[1].interaction_id, item[1].interaction_id),
    )
    for good, bad in candidates:
        if pairs >= config.max_pairs_per_question:
            break
        if builder.add_pair(good, bad):
            pairs += 1
            if good.correction_id is None:
                paired_goods.add(good.answer.interaction_id)
            paired_bads.add(bad.interaction_id)
    for answer in answers:
        if answer.is_good and answer.interaction_id not in paired_goods:
            builder.add_unpaired(answer, desirable=True)
        elif answer.verdict < 0 and answer.interaction_id not in paired_bads:
            builder.add_unpaired(answer, desirable=False)


def build_datasets(snapshot: FeedbackSnapshot, chat: ChatFormat, config: AlignmentConfig) -> FeedbackDatasets:
    """Group answers by normalised question, split the groups, and build every row kind per side."""
    groups: dict[str, list[JudgedAnswer]] = defaultdict(list)
    for answer in snapshot.answers:
        groups[answer.question_key].append(answer)
    held_out = choose_eval_questions(groups, config)
    builders = {"train": _Builder(chat, config.max_length), "eval": _Builder(chat, config.max_length)}
    for key in sorted(groups):
        # Newest first, so that among duplicate answers the most recent context is the one kept.
        answers = sorted(groups[key], key=lambda item: item.interaction_id, reverse=True)
        _build_group(builders["eval" if key in held_out else "train"], answers, config)
    excluded = dict(snapshot.excluded)
    fitted: dict[str, int] = {}
    for builder in builders.values():
        for reason, count in builder.excluded.items():
            excluded[reason] = excluded.get(reason, 0) + count
        if builder.too_long:
            excluded["too_long"] = excluded.get("too_long", 0) + len(builder.too_long)
        for change, interactions in builder.fitted.items():
            fitted[change.value] = fitted.get(change.value, 0) + len(interactions)
    return FeedbackDatasets(
        train=builders["train"].rows,
        eval=builders["eval"].rows,
        train_questions=sorted(set(groups) - held_out),
        eval_questions=sorted(held_out),
        excluded=excluded,
        lineage={split: builder.lineage() for split, builder in builders.items()},
        fitted=fitted,
    )
