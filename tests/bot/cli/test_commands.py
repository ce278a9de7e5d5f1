"""The ``tanya`` command as a user runs it: a real subprocess against a fresh data directory."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.bot.fake_vllm import BASE_MODEL, FakeVllm
from tests.conftest import REPO_ROOT

TANYA = [sys.executable, "-m", "bot"]

Run = Callable[..., subprocess.CompletedProcess[str]]


def _runner(home: Path) -> Run:
    def run(
        *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        environment = {**os.environ, "TANYA_HOME": str(home), "TANYA_MAX_NEW_TOKENS": "40", "COLUMNS": "200"}
        environment.pop("TANYA_DATABASE_URL", None)
        environment.pop("TANYA_DOCUMENT_STORE", None)
        environment.update(env or {})
        return subprocess.run(
            [*TANYA, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=environment,
            timeout=600,
            check=False,
        )

    return run


@pytest.fixture(scope="module")
def kb_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with tanya's own user guide ingested, shared by the tests below."""
    home = tmp_path_factory.mktemp("home")
    result = _runner(home)("ingest", str(REPO_ROOT / "docs" / "user"))
    assert result.returncode == 0, result.stderr
    return home


@pytest.fixture
def run(kb_home: Path) -> Run:
    return _runner(kb_home)


def test_ingest_summary_and_reingest_changes_nothing(run: Run) -> None:
    again = run("ingest", str(REPO_ROOT / "docs" / "user"))
    assert again.returncode == 0, again.stderr
    assert "unchanged" in again.stdout
    status = json.loads(run("status", "--json").stdout)
    assert status["documents"] > 5


@pytest.mark.model
def test_ask_json_contract_then_feedback_is_stored(run: Run, kb_home: Path) -> None:
    result = run("ask", "--json", "How do I withdraw my vote on an answer?")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert set(payload) >= {"answer", "sources", "interaction_id", "adapter"}
    assert payload["answer"].strip()
    assert payload["sources"], "the user guide answers this question"
    assert set(payload["sources"][0]) >= {"id", "title", "source", "score", "excerpt"}
    assert any("feedback.md" in source["source"] for source in payload["sources"])
    document_words = set(re.findall(r"\w+", (REPO_ROOT / "docs" / "user" / "feedback.md").read_text()))
    quotes = [s["excerpt"] for s in payload["sources"] if "feedback.md" in s["source"]]
    assert quotes and all(q and set(re.findall(r"\w+", q)) <= document_words for q in quotes), quotes

    interaction_id = str(payload["interaction_id"])
    assert run("feedback", interaction_id, "up").returncode == 0
    assert run("feedback", interaction_id, "down").returncode == 0
    with sqlite3.connect(kb_home / "tanya.db") as db:
        rows = db.execute("SELECT value FROM votes WHERE interaction_id = ?", (interaction_id,)).fetchall()
        stored = db.execute(
            "SELECT question, prompt, documents FROM interactions WHERE id = ?", (interaction_id,)
        ).fetchone()
    assert rows == [(-1,)]
    assert stored[0] == "How do I withdraw my vote on an answer?"
    assert "withdraw" in stored[1]
    assert json.loads(stored[2])[0]["id"] == payload["sources"][0]["id"]


@pytest.mark.model
def test_chat_rates_and_corrects(run: Run, kb_home: Path) -> None:
    script = (
        "Where does tanya keep its data?\n+\n-\n!fix In TANYA_HOME, ~/.local/share/tanya by default.\n!quit\n"
    )
    result = run("chat", stdin=script)
    assert result.returncode == 0, result.stderr
    assert "Correction recorded" in result.stdout
    with sqlite3.connect(kb_home / "tanya.db") as db:
        (interaction_id,) = db.execute(
            "SELECT id FROM interactions WHERE question = 'Where does tanya keep its data?' ORDER BY id DESC"
        ).fetchone()
        votes = db.execute(
            "SELECT value, source FROM votes WHERE interaction_id = ?", (interaction_id,)
        ).fetchall()
        fixes = db.execute(
            "SELECT text FROM corrections WHERE interaction_id = ?", (interaction_id,)
        ).fetchall()
    assert votes == [(-1, "cli")]
    assert fixes == [("In TANYA_HOME, ~/.local/share/tanya by default.",)]


def test_search_reads_questions_from_stdin(run: Run) -> None:
    result = run("search", "-", stdin="How do I add documents?\n\nWhat does TANYA_HOME do?\n")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["question"] for line in lines] == ["How do I add documents?", "What does TANYA_HOME do?"]
    assert all(line["sources"] for line in lines)
    # getting-started.md quotes this very question, so either page may rank first.
    assert any("adding-documents.md" in source["source"] for source in lines[0]["sources"][:3])


@pytest.mark.parametrize("question", ["", "   \n\t "])
def test_empty_question_is_refused(run: Run, question: str) -> None:
    result = run("ask", question)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "empty" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.model
def test_a_40k_character_question_is_truncated_with_a_notice(run: Run) -> None:
    question = "How do I rate an answer? " + "x" * 40_000
    result = run("ask", "--json", question)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["question_truncated"] is True
    human = run("ask", question)
    assert "middle was cut" in human.stderr and "4,000 characters" in human.stderr


def test_missing_path_and_binary_file_are_reported_and_the_rest_ingested(run: Run, tmp_path: Path) -> None:
    good = tmp_path / "good.md"
    good.write_text("# Parking\n\nVisitors park on level minus two, next to the lifts.\n")
    binary = tmp_path / "photo.png"
    binary.write_bytes(bytes(range(256)) * 40)
    missing = tmp_path / "nope.md"
    result = run("ingest", str(good), str(binary), str(missing))
    assert "Traceback" not in result.stderr
    combined = result.stdout + result.stderr
    assert "photo.png" in combined and "nope.md" in combined
    found = json.loads(run("search", "--json", "Where do visitors park?").stdout)
    assert any(source["source"].endswith("good.md") for source in found["sources"])


def test_a_database_file_that_is_not_a_database(tmp_path: Path) -> None:
    home = tmp_path / "broken"
    home.mkdir()
    (home / "tanya.db").write_text("definitely not sqlite\n" * 100)
    result = _runner(home)("status")
    assert result.returncode == 1
    assert "not a database" in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert (home / "tanya.db").read_text().startswith("definitely not sqlite")


def test_an_elasticsearch_url_that_does_not_answer(tmp_path: Path) -> None:
    result = _runner(tmp_path)("search", "anything", env={"TANYA_DOCUMENT_STORE": "http://127.0.0.1:1"})
    assert result.returncode == 1
    assert "127.0.0.1:1" in result.stderr
    assert "Traceback" not in result.stderr


def test_db_upgrade_is_idempotent(tmp_path: Path) -> None:
    run = _runner(tmp_path)
    first = run("db", "upgrade")
    assert first.returncode == 0 and "Upgraded" in first.stdout
    second = run("db", "upgrade")
    assert second.returncode == 0 and "up to date" in second.stdout


def test_a_streamed_echo_of_the_prompt_is_followed_by_the_answer_without_it(run: Run, vllm: FakeVllm) -> None:
    question = "How do I correct a wrong answer?"
    vllm.answer_for = lambda model: (  # type: ignore[method-assign]
        f"Question: {question} Answer in one sentence from the sources and cite the source number "
        "like [1]. Type !fix and the better answer [1]."
    )
    result = run(
        "ask", question, env={"TANYA_GENERATOR": f"{vllm.url}/v1", "TANYA_GENERATOR_MODEL": BASE_MODEL}
    )
    assert result.returncode == 0, result.stderr
    streamed, _, rest = result.stdout.partition("The model repeated part of its prompt. Without it:")
    assert "Answer in one sentence" in streamed, result.stdout
    assert rest.split("\n")[1] == "Type !fix and the better answer [1].", result.stdout
    assert "Answer in one sentence" not in rest


def test_ask_reads_questions_from_stdin_one_json_object_per_line(
    run: Run, vllm: FakeVllm, kb_home: Path
) -> None:
    vllm.answer_for = lambda model: "Type !fix and the better answer [1]."  # type: ignore[method-assign]
    giant = "How do I rate an answer? " + "x" * 40_000
    # Blank lines are skipped, a 40k-character line is answered (shortened), the last line has no newline.
    stdin = f"How do I correct a wrong answer?\n\n   \n{giant}\nWhere does tanya keep its data?"
    env = {"TANYA_GENERATOR": f"{vllm.url}/v1", "TANYA_GENERATOR_MODEL": BASE_MODEL}
    result = run("ask", "--json", "-", stdin=stdin, env=env)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["line"] for line in lines] == [1, 4, 5]
    assert lines[0]["question"] == "How do I correct a wrong answer?"
    assert lines[2]["question"] == "Where does tanya keep its data?"
    assert [line["question_truncated"] for line in lines] == [False, True, False]
    assert all(line["answer"] == "Type !fix and the better answer [1]." and line["sources"] for line in lines)
    with sqlite3.connect(kb_home / "tanya.db") as db:
        ids = {row[0] for row in db.execute("SELECT id FROM interactions")}
    assert {
        line["interaction_id"] for line in lines
    } <= ids  # each answer was stored, as `tanya ask` stores it


def test_ask_from_stdin_reports_a_failing_line_and_answers_the_rest(run: Run, vllm: FakeVllm) -> None:
    vllm.answer_for = lambda model: "Use tanya ingest [1]."  # type: ignore[method-assign]
    vllm.refuse_questions = {"Question: What does TANYA_HOME do?"}
    env = {"TANYA_GENERATOR": f"{vllm.url}/v1", "TANYA_GENERATOR_MODEL": BASE_MODEL}
    stdin = "How do I add documents?\nWhat does TANYA_HOME do?\nHow do I add a PDF?\n"
    result = run("ask", "--json", "-", stdin=stdin, env=env)
    assert result.returncode == 1  # after answering everything else
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["line"] for line in lines] == [1, 2, 3]
    assert lines[0]["answer"] == lines[2]["answer"] == "Use tanya ingest [1]."
    assert set(lines[1]) == {"line", "question", "error"} and lines[1]["error"]
    assert "Traceback" not in result.stderr


def test_ask_from_stdin_needs_json(run: Run) -> None:
    result = run("ask", "-", stdin="How do I add documents?\n")
    assert result.returncode == 2
    assert "needs --json" in result.stderr
