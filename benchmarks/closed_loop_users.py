"""The simulated team of the closed-loop benchmark: its documents, its questions, and its users.

Users ask through ``Tanya.ask`` and rate through ``Tanya.rate`` / ``Tanya.correct``, the calls the Slack
bot makes, so the feedback lands in the database exactly as a real team's would.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from qa_metrics import AnswerScore, contains_gold, score_answer

from retrieval.answering.checks import Change

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
CHANNEL = "CSIMULATED"
SALT = "tanya-closed-loop-v1"


def _rank(key: str) -> float:
    return int(hashlib.sha256(f"{SALT}:{key}".encode()).hexdigest()[:12], 16) / 16**12


def load_set(language: str, *, train: bool = False) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """A QA set's passages by id and its answerable questions: the evaluation set ``qa-<language>``, or
    with ``train`` the disjoint training set ``qa-train-<language>`` (see each folder's SOURCE.md)."""
    folder = DATA / (f"qa-train-{language}" if train else f"qa-{language}")
    corpus = {row["id"]: row for row in map(json.loads, (folder / "corpus.jsonl").open(encoding="utf-8"))}
    questions = [json.loads(line) for line in (folder / "questions.jsonl").open(encoding="utf-8")]
    return corpus, [q for q in questions if q["answers"] and q["passage_ids"]]


def split_questions(
    questions: list[dict[str, Any]], held_out_fraction: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(feedback, held_out): by passage, so held-out passages were never seen in training."""
    feedback, held_out = [], []
    for question in sorted(questions, key=lambda q: _rank(q["id"])):
        (held_out if _rank(question["passage_ids"][0]) < held_out_fraction else feedback).append(question)
    return feedback, held_out


def write_corpus(corpus: dict[str, dict[str, Any]], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for passage_id, row in corpus.items():
        path = folder / f"{passage_id}.md"
        path.write_text(f"# {row['title']}\n\n{row['text']}\n", encoding="utf-8")
        paths.append(path)
    return paths


def ask_and_score(
    service: Any, question: dict[str, Any], *, user: str, history: list[tuple[str, str]]
) -> dict:
    from storage import ChannelKind

    answer = service.ask(
        question["question"],
        origin=ChannelKind.public_channel,
        user_id=user,
        channel_id=CHANNEL,
        history=history,
    )
    source_ids = [Path(source.source).stem for source in answer.sources]
    score = score_answer(
        answer.text,
        question["answers"],
        source_ids,
        question["passage_ids"],
        citation_added=answer.changed(Change.CITATION_ADDED),
    )
    return {
        "id": question["id"],
        "interaction_id": answer.interaction_id,
        "answer": answer.text,
        "adapter": answer.adapter,
        "score": score,
    }


def answer_held_out(
    service: Any, held_out: list[dict[str, Any]], *, history: list[tuple[str, str]] = ()
) -> dict:
    started = time.time()
    rows = [ask_and_score(service, q, user="sim-heldout", history=list(history)) for q in held_out]
    scores: list[AnswerScore] = [row["score"] for row in rows]
    return {
        **AnswerScore.mean(scores),
        "adapter": rows[0]["adapter"] if rows else None,
        "questions": len(rows),
        "seconds": round(time.time() - started, 1),
        "answers": [
            {"id": r["id"], "answer": r["answer"], "f1": round(100 * r["score"].f1, 1)} for r in rows
        ],
    }


def give_feedback(
    service: Any, questions: list[dict[str, Any]], *, correction_fraction: float, poisoned: bool
) -> dict[str, Any]:
    """Simulated users rate each answer; ``poisoned`` users 👍 wrong answers and 👎 right ones."""
    counts = {"asked": 0, "up": 0, "down": 0, "corrections": 0, "answers_correct": 0}
    for number, question in enumerate(questions):
        user = f"sim-user-{number % 25:02d}"
        row = ask_and_score(service, question, user=user, history=[])
        correct = bool(contains_gold(row["answer"], question["answers"]))
        up = correct != poisoned
        service.rate(row["interaction_id"], user_id=user, up=up, source="simulation")
        counts["asked"] += 1
        counts["answers_correct"] += int(correct)
        counts["up" if up else "down"] += 1
        if not up and not poisoned and _rank(f"correct:{question['id']}") < correction_fraction:
            service.correct(
                row["interaction_id"], user_id=user, text=question["answers"][0], source="simulation"
            )
            counts["corrections"] += 1
    return counts


def few_shot_history(feedback: list[dict[str, Any]], corpus: dict[str, dict[str, Any]], shots: int) -> list:
    """Worked examples as earlier turns: a one-sentence source, a question, a short cited answer."""
    history = []
    for question in feedback:
        if len(history) == shots:
            break
        passage = corpus[question["passage_ids"][0]]
        sentence = next((s for s in passage["text"].split(". ") if question["answers"][0] in s), None)
        if sentence is None or len(sentence) > 300:
            continue
        user_turn = (
            f"Sources:\n[1] {passage['title']}: {sentence.strip()}.\n\nQuestion: {question['question']}"
        )
        history.append((user_turn, f"{question['answers'][0]} [1]"))
    return history
