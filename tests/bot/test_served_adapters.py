"""A bot generating through an OpenAI-compatible server follows the adapter registry.

Promotion, `tanya adapters activate` and rollback all end in the registry; before its next answer the
bot has the server load the new adapter by name, from the path the server sees, unloads the previous
one, and asks for the answer under the new name. A server that refuses an adapter leaves the old one
answering. The server is a stand-in for vLLM on 127.0.0.1 (tests/bot/fake_vllm.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alignment import registry
from bot.service import Tanya
from bot.settings import Settings
from storage import Database
from tests.alignment.seed import activate, register_staged
from tests.bot.fake_vllm import BASE_MODEL, FakeVllm

SERVER_DIR = "/srv/tanya/adapters"
LOAD, UNLOAD, CHAT = "/v1/load_lora_adapter", "/v1/unload_lora_adapter", "/v1/chat/completions"
QUESTION = "How many days of annual leave do employees get?"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def bot(home: Path, vllm: FakeVllm, tmp_path: Path) -> Iterator[Tanya]:
    settings = Settings(
        home=home,
        generator=f"{vllm.url}/v1",
        generator_model=BASE_MODEL,
        server_adapters_dir=SERVER_DIR,
        min_similarity=-1.0,  # every question finds its passage: these tests are about generation
    )
    service = Tanya(settings)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "leave.md").write_text("# Annual leave\n\nEvery employee gets 24 days of annual leave a year.\n")
    service.ingest([docs])
    yield service
    service.database.dispose()


def _publish(database: Database, adapters: Path, name: str) -> int:
    staging = registry.staging_dir(adapters)
    (staging / registry.CONFIG_FILE).write_text('{"peft_type": "LORA"}')
    (staging / registry.WEIGHTS_FILE).write_bytes(name.encode() * 64)
    return register_staged(database, staging, adapters, name)


def _ask(bot: Tanya) -> tuple[Any, list[Any]]:
    chunks: list[Any] = []
    answer = bot.ask(QUESTION, streaming_callback=chunks.append)
    return answer, chunks


def _since(vllm: FakeVllm, start: int) -> list[tuple[str, dict[str, Any]]]:
    return vllm.requests[start:]


def test_promotion_activation_and_rollback_drive_the_server(bot: Tanya, vllm: FakeVllm) -> None:
    database, adapters = bot.database, bot.settings.adapters_dir
    v1, v2 = _publish(database, adapters, "v1"), _publish(database, adapters, "v2")

    answer, chunks = _ask(bot)  # nothing active: the base model answers
    assert answer.adapter is None and vllm.calls(CHAT)[-1]["model"] == BASE_MODEL

    activate(database, v1)  # what a promoted run or `tanya adapters activate` does
    start = len(vllm.requests)
    answer, chunks = _ask(bot)
    assert _since(vllm, start)[0] == (LOAD, {"lora_name": "v1", "lora_path": f"{SERVER_DIR}/v1"})
    chat = vllm.calls(CHAT)[-1]
    assert chat["model"] == "v1" and chat["stream"] is True
    assert answer.adapter == "v1" and answer.text.startswith(FakeVllm.answer_for("v1"))
    assert "".join(chunk.content for chunk in chunks) == FakeVllm.answer_for("v1")  # streamed over SSE

    activate(database, v2)
    start = len(vllm.requests)
    answer, _ = _ask(bot)
    assert [path for path, _ in _since(vllm, start)] == [LOAD, UNLOAD, CHAT]
    load, unload, chat = (body for _, body in _since(vllm, start))
    assert load == {"lora_name": "v2", "lora_path": f"{SERVER_DIR}/v2"}
    assert unload == {"lora_name": "v1"} and chat["model"] == "v2" and answer.adapter == "v2"
    assert set(vllm.loaded) == {"v2"}

    with database.session() as session:  # `tanya adapters rollback`: back to v1
        assert registry.rollback(session).now_active == "v1"
    start = len(vllm.requests)
    answer, _ = _ask(bot)
    load, unload, chat = (body for _, body in _since(vllm, start))
    assert load == {"lora_name": "v1", "lora_path": f"{SERVER_DIR}/v1"}
    assert unload == {"lora_name": "v2"} and chat["model"] == "v1" and answer.adapter == "v1"

    with database.session() as session:  # and back to the base model
        assert registry.rollback(session).now_active is None
    start = len(vllm.requests)
    answer, _ = _ask(bot)
    assert [(path, body.get("lora_name", body.get("model"))) for path, body in _since(vllm, start)] == [
        (UNLOAD, "v1"),
        (CHAT, BASE_MODEL),
    ]
    assert answer.adapter is None and vllm.loaded == {}

    with database.session() as session:  # every answer recorded the adapter it came from
        from storage.models import Interaction

        adapters_used = [row.adapter for row in session.query(Interaction).order_by(Interaction.id)]
    assert adapters_used == [None, "v1", "v2", "v1", None]


def test_a_refused_adapter_leaves_the_old_one_answering_with_one_log_line(
    bot: Tanya,
    vllm: FakeVllm,
    caplog: pytest.LogCaptureFixture,
) -> None:
    database, adapters = bot.database, bot.settings.adapters_dir
    activate(database, _publish(database, adapters, "good"))
    assert _ask(bot)[0].adapter == "good"

    vllm.refuse.add("broken")
    activate(database, _publish(database, adapters, "broken"))
    with caplog.at_level(logging.ERROR, logger="bot.adapter_sync"):
        answer, _ = _ask(bot)
    assert answer.adapter == "good" and vllm.calls(CHAT)[-1]["model"] == "good"
    assert "good" in vllm.loaded  # not unloaded: it is still the one answering
    (record,) = [r for r in caplog.records if r.name == "bot.adapter_sync"]
    assert record.getMessage().startswith(
        "keeping adapter good: refused broken: adapter 'broken': the server answered 400"
    )
    assert record.exc_info is None and "\n" not in record.getMessage()

    start = len(vllm.requests)
    assert _ask(bot)[0].adapter == "good"  # remembered: not asked again before every answer
    assert LOAD not in vllm.paths()[start:]


def test_the_previous_adapter_is_unloaded_only_once_no_answer_uses_it(bot: Tanya, vllm: FakeVllm) -> None:
    database, adapters = bot.database, bot.settings.adapters_dir
    activate(database, _publish(database, adapters, "v1"))
    assert _ask(bot)[0].adapter == "v1"
    v2 = _publish(database, adapters, "v2")

    vllm.hold = threading.Event()  # the next streamed answer stops after its first word
    in_flight: dict[str, Any] = {}
    answering = threading.Thread(target=lambda: in_flight.update(answer=_ask(bot)[0]))
    answering.start()
    assert vllm.hold.wait(30), "the answer never started streaming"
    activate(database, v2)
    bot._sync_adapter()  # another conversation's answer starts meanwhile
    assert bot.generator.active_adapter == "v2" and set(vllm.loaded) == {"v1", "v2"}
    vllm.hold = None
    vllm.release.set()
    answering.join(30)
    assert in_flight["answer"].adapter == "v1"
    assert in_flight["answer"].text.startswith(FakeVllm.answer_for("v1"))

    answer, _ = _ask(bot)  # the next answer's sync frees v1
    assert answer.adapter == "v2" and set(vllm.loaded) == {"v2"}


def test_replicas_sharing_a_server_and_a_server_restart(bot: Tanya, vllm: FakeVllm, home: Path) -> None:
    database, adapters = bot.database, bot.settings.adapters_dir
    activate(database, _publish(database, adapters, "v1"))
    vllm.loaded["v1"] = f"{SERVER_DIR}/v1"  # another replica loaded it first: "already loaded" is fine
    answer, _ = _ask(bot)
    assert answer.adapter == "v1" and vllm.calls(LOAD)[-1]["lora_name"] == "v1"

    vllm.loaded.clear()  # the server restarted and lost its runtime adapters
    answer, _ = _ask(bot)
    assert answer.adapter == "v1" and answer.text.startswith(FakeVllm.answer_for("v1"))
    assert vllm.paths()[-3:] == [CHAT, LOAD, CHAT] and vllm.loaded == {"v1": f"{SERVER_DIR}/v1"}


def test_without_a_server_folder_the_registry_path_is_sent(
    home: Path, vllm: FakeVllm, tmp_path: Path
) -> None:
    service = Tanya(Settings(home=home, generator=f"{vllm.url}/v1", generator_model=BASE_MODEL))
    activate(service.database, _publish(service.database, service.settings.adapters_dir, "v1"))
    service._sync_adapter()
    assert vllm.calls(LOAD)[-1]["lora_path"] == str(service.settings.adapters_dir / "v1")
    service.database.dispose()
