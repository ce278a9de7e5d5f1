"""One base model, named once (TANYA_BASE_MODEL): what retrains train, what answers load, what a server
must serve. A server serving another base stops a retrain before anything is trained, and a bot never
loads or activates an adapter on it; the server is the vLLM stand-in of tests/bot/fake_vllm.py."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from alignment import registry
from alignment.worker import Worker, retrain_runner
from bot.base_model import base_model_spec
from bot.errors import InputError
from bot.service import Tanya
from bot.settings import Settings
from bot.training import training_base, training_setup
from retrieval.generation import checkpoint
from storage import Database, JobStatus
from storage.jobs import claim_next_job, enqueue_job
from tests.alignment.seed import activate, register_staged
from tests.bot.fake_vllm import BASE_MODEL, FakeVllm

LOAD = "/v1/load_lora_adapter"


@pytest.fixture
def converted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The bundled models ``ensure_checkpoint`` was asked to convert (nothing is converted)."""
    calls: list[str] = []

    def ensure(cache_dir: Path, model: str = "") -> Path:
        calls.append(model)
        return cache_dir / (model or "default")

    monkeypatch.setattr(checkpoint, "ensure_checkpoint", ensure)
    return calls


def _served(tmp_path: Path, vllm: FakeVllm, **values: object) -> Settings:
    return Settings(home=tmp_path, generator=f"{vllm.url}/v1", database_url=None, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("generator", "base", "trained_on"),
    [
        ("", "", ""),
        ("local", "", ""),
        ("gemma3-270m", "", "gemma3-270m"),
        ("", "smollm2-135m-instruct", "smollm2-135m-instruct"),
        ("smollm2-135m-instruct", "smollm2-135m-instruct", "smollm2-135m-instruct"),
    ],
    ids=["default", "local", "generator-names-it", "base-names-it", "both-agree"],
)
def test_the_base_is_named_once(
    tmp_path: Path, converted: list[str], generator: str, base: str, trained_on: str
) -> None:
    settings = Settings(home=tmp_path, generator=generator, base_model=base, database_url=None)
    training_base(settings)
    assert converted == [trained_on]


def test_a_checkpoint_folder_is_used_as_it_is_and_a_wrong_name_is_explained(
    tmp_path: Path, converted: list[str]
) -> None:
    folder = tmp_path / "Qwen3-8B"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    local = {"home": tmp_path, "generator": "", "database_url": None}
    assert training_base(Settings(**local, base_model=str(folder))) == folder  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"neither a bundled model .* nor a transformers checkpoint folder"):
        training_base(Settings(**local, base_model=str(tmp_path / "missing")))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="name it once, in TANYA_BASE_MODEL"):
        base_model_spec(Settings(home=tmp_path, generator="gemma3-270m", base_model=str(folder)))
    assert converted == []


def test_behind_a_server_serving_the_base_the_retrain_trains_it(
    tmp_path: Path, vllm: FakeVllm, converted: list[str]
) -> None:
    training_base(_served(tmp_path, vllm))  # the stand-in serves google/gemma-3-270m, tanya's default
    vllm.root = "HuggingFaceTB/SmolLM2-135M-Instruct"
    training_base(_served(tmp_path, vllm, base_model="smollm2-135m-instruct", generator_model=BASE_MODEL))
    assert converted == ["", "smollm2-135m-instruct"] and vllm.paths() == ["/v1/models"] * 2


def test_a_server_serving_another_base_stops_the_job_before_anything_is_trained(
    tmp_path: Path, vllm: FakeVllm, converted: list[str]
) -> None:
    vllm.root = "Qwen/Qwen3-14B"
    settings = _served(tmp_path, vllm)
    database = Database.open(settings.resolved_database_url)
    with database.session() as session:
        enqueue_job(session, requested_by="admin", reason="manual")
    with database.session() as session:
        job = claim_next_job(session, worker="test")
        assert job is not None
        session.expunge(job)
    config, worker_config, paths = training_setup(settings)
    finished = Worker(database, retrain_runner(database, config, paths), worker_config).run_claimed(job)
    assert finished.status == JobStatus.failed
    first_line = (finished.error or "").splitlines()[0]
    assert "not training: the server serves 'base-model' (from Qwen/Qwen3-14B)" in first_line
    assert "google/gemma-3-270m" in first_line and "TANYA_BASE_MODEL" in first_line
    assert converted == []  # nothing was converted, loaded or trained
    database.dispose()


def test_a_server_that_does_not_say_what_it_serves_stops_no_retrain(
    tmp_path: Path, vllm: FakeVllm, converted: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    vllm.models_status = 503
    with caplog.at_level(logging.WARNING, logger="bot.base_model"):
        training_base(_served(tmp_path, vllm))
    assert converted == [""] and "could not ask the server which base it serves" in caplog.text


def _bot(tmp_path: Path, vllm: FakeVllm) -> Tanya:
    bot = Tanya(_served(tmp_path, vllm, min_similarity=-1.0, server_adapters_dir="/srv/adapters"))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "leave.md").write_text("# Annual leave\n\nEvery employee gets 24 days of annual leave a year.\n")
    bot.ingest([docs])
    staging = registry.staging_dir(bot.settings.adapters_dir)
    (staging / registry.CONFIG_FILE).write_text('{"peft_type": "LORA"}')
    (staging / registry.WEIGHTS_FILE).write_bytes(b"v1" * 64)
    activate(bot.database, register_staged(bot.database, staging, bot.settings.adapters_dir, "v1"))
    return bot


def test_a_bot_on_another_base_answers_from_it_but_loads_no_adapter(tmp_path: Path, vllm: FakeVllm) -> None:
    vllm.root = "/models/Qwen3-14B"
    bot = _bot(tmp_path, vllm)
    answer = bot.ask("How many days of annual leave?")
    assert answer.adapter is None and answer.text.startswith(FakeVllm.answer_for(BASE_MODEL))
    assert LOAD not in vllm.paths() and vllm.paths().count("/v1/models") == 1  # asked once, at start-up
    status = bot.status()
    assert status["base_model"] == "google/gemma-3-270m"
    assert status["served_base"].startswith("MISMATCH, adapters off: the server serves 'base-model'")
    bot.database.dispose()


def test_a_bot_whose_server_answers_late_loads_the_adapter_once_it_has(
    tmp_path: Path, vllm: FakeVllm
) -> None:
    vllm.models_status = 503
    bot = _bot(tmp_path, vllm)
    bot._served_base.recheck_seconds = 0.0
    assert bot.generator.model == "google/gemma-3-270m"  # built while the server could not say
    assert bot.status()["served_base"].startswith("not checked yet")
    vllm.models_status = 200
    answer = bot.ask("How many days of annual leave?")
    assert answer.adapter == "v1" and vllm.loaded == {"v1": "/srv/adapters/v1"}
    assert bot.generator.model == BASE_MODEL  # the name the server lists for the base
    # Rendered without thinking, as the training rows are (Qwen3's template writes <think> otherwise).
    assert vllm.calls("/v1/chat/completions")[-1]["chat_template_kwargs"] == {"enable_thinking": False}
    assert bot.status()["served_base"] == "served as 'base-model' (from google/gemma-3-270m)"
    bot.database.dispose()


@pytest.mark.model
def test_prompts_are_fitted_to_the_served_context_with_the_base_tokenizer(
    tmp_path: Path, vllm: FakeVllm, checkpoint_dir: Path
) -> None:
    from transformers import AutoTokenizer

    vllm.root, vllm.max_model_len = str(checkpoint_dir), 400  # the same checkpoint, compared by digest
    bot = Tanya(
        _served(tmp_path, vllm, base_model=str(checkpoint_dir), min_similarity=-1.0, max_new_tokens=40)
    )
    docs = tmp_path / "docs"
    docs.mkdir()
    policy = " ".join(
        f"Rule {n}: expense claims of type {n} need a receipt and a manager's approval." for n in range(200)
    )
    (docs / "expenses.md").write_text(f"# Expenses\n\n{policy}\n")
    bot.ingest([docs])
    question = "Which expense claims need a receipt?"
    answer = bot.ask(question)
    assert answer.text.startswith(FakeVllm.answer_for(BASE_MODEL))
    messages = vllm.calls("/v1/chat/completions")[-1]["messages"]
    tokenizer = AutoTokenizer.from_pretrained(checkpoint_dir)
    rendered = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=False
    )
    assert len(rendered) <= 400 - 40 and "[…]" in messages[-1]["content"]
    assert question in messages[-1]["content"]  # the end of the prompt, with the question, survives
    bot.database.dispose()
