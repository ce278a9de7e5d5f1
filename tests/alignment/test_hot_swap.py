"""A running bot follows the registry: new active adapters are hot-swapped between answers, an answer in
flight finishes with the adapter it started with, a corrupt adapter is refused while the old one stays,
and a rollback switches back without reloading (bot.service.Tanya._sync_adapter + LocalChatGenerator)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alignment import registry
from bot.service import Tanya
from bot.settings import Settings
from storage import Database
from storage.models import AdapterStatus, AdapterVersion, utcnow
from tests.alignment.conftest import AdapterFactory
from tests.alignment.seed import activate, register_staged

pytestmark = pytest.mark.model


@pytest.fixture
def generator(checkpoint_dir: Path) -> Any:
    from retrieval.generation.local import LocalChatGenerator

    generator = LocalChatGenerator(model_path=checkpoint_dir, max_new_tokens=12, torch_threads=1)
    generator.warm_up()
    return generator


@pytest.fixture
def database(sqlite_url: str) -> Iterator[Database]:
    """SQLite only: what is tested here is the bot and the generator; the registry runs on both elsewhere."""
    db = Database.open(sqlite_url)
    yield db
    db.dispose()


@pytest.fixture
def bot(tmp_path: Path, database: Database, generator: Any) -> Iterator[Tanya]:
    service = Tanya(Settings(home=tmp_path / "home"), database=database)
    service.__dict__["generator"] = generator  # the bundled generator, already warm
    yield service


def _publish(database: Database, adapters: Path, make_adapter: AdapterFactory, name: str, seed: int) -> int:
    staging = registry.staging_dir(adapters)
    make_adapter(staging, seed=seed, scale=0.05)
    return register_staged(database, staging, adapters, name, base_model="smollm2-135m-instruct")


def _messages() -> list[Any]:
    from haystack.dataclasses import ChatMessage

    return [ChatMessage.from_user("How do I rate an answer in tanya?")]


def test_hot_swap_keeps_the_answer_in_flight_and_rolls_back_instantly(
    bot: Tanya, database: Database, generator: Any, make_adapter: AdapterFactory, tmp_path: Path
) -> None:
    adapters = tmp_path / "adapters"
    first = _publish(database, adapters, make_adapter, "v1", seed=1)
    second = _publish(database, adapters, make_adapter, "v2", seed=2)
    activate(database, first)
    bot._sync_adapter()
    assert generator.active_adapter == "v1"
    reference_v1 = generator.run(_messages())["replies"][0]

    # Start an answer under v1 and hold it mid-stream.
    streaming, release = threading.Event(), threading.Event()
    in_flight: dict[str, Any] = {}

    def on_chunk(chunk: Any) -> None:
        if chunk.content:
            streaming.set()
            assert release.wait(60), "the test never released the answer"

    def answer() -> None:
        in_flight["reply"] = generator.run(_messages(), streaming_callback=on_chunk)["replies"][0]

    answering = threading.Thread(target=answer)
    answering.start()
    assert streaming.wait(60), "generation did not start"
    activate(database, second)  # an admin activates v2 while the answer is being written
    swapping = threading.Thread(target=bot._sync_adapter)
    swapping.start()
    release.set()
    answering.join(60)
    swapping.join(60)
    assert not answering.is_alive() and not swapping.is_alive()

    assert in_flight["reply"].meta["adapter"] == "v1"
    assert in_flight["reply"].text == reference_v1.text  # the whole answer came from v1
    assert generator.active_adapter == "v2"
    reply_v2 = generator.run(_messages())["replies"][0]
    assert reply_v2.meta["adapter"] == "v2" and reply_v2.text != reference_v1.text

    # Rollback: v1 is loaded already, so the switch needs no file access at all.
    with database.session() as session:
        assert registry.rollback(session).now_active == "v1"
    (adapters / "v1" / registry.WEIGHTS_FILE).rename(adapters / "v1-moved")
    bot._sync_adapter()
    assert generator.active_adapter == "v1"
    assert generator.run(_messages())["replies"][0].text == reference_v1.text


def test_a_corrupt_adapter_is_refused_and_the_old_one_keeps_answering(
    bot: Tanya, database: Database, generator: Any, make_adapter: AdapterFactory, tmp_path: Path
) -> None:
    adapters = tmp_path / "adapters"
    good = _publish(database, adapters, make_adapter, "good", seed=3)
    activate(database, good)
    bot._sync_adapter()
    assert generator.active_adapter == "good"
    before = generator.run(_messages())["replies"][0].text

    bad = _publish(database, adapters, make_adapter, "bad", seed=4)
    weights = adapters / "bad" / registry.WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-64:] = b"\x00" * 64  # bit rot after registration: still parses, no longer the trained weights
    weights.write_bytes(bytes(data))

    # The registry refuses to activate it …
    with pytest.raises(registry.AdapterIntegrityError), database.session() as session:
        registry.activate_version(session, bad)
    # … and a bot refuses it even when a row says it is active (written by hand, or by an older tanya).
    with database.session() as session:
        session.get(AdapterVersion, good).status = AdapterStatus.retired  # type: ignore[union-attr]
        row = session.get(AdapterVersion, bad)
        row.status = AdapterStatus.active  # type: ignore[union-attr]
        row.activated_at = utcnow()  # type: ignore[union-attr]
    bot._sync_adapter()
    assert generator.active_adapter == "good"
    assert "bad" not in generator.loaded_adapters
    reply = generator.run(_messages())["replies"][0]
    assert reply.meta["adapter"] == "good" and reply.text == before
    bot._sync_adapter()  # refused once, remembered: not re-read before every answer
    assert generator.active_adapter == "good"

    # A truncated file is refused too (this one fails the generator's own checks as well).
    truncated = _publish(database, adapters, make_adapter, "truncated", seed=5)
    weights = adapters / "truncated" / registry.WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:1000])
    with database.session() as session:
        session.get(AdapterVersion, bad).status = AdapterStatus.rejected  # type: ignore[union-attr]
        row = session.get(AdapterVersion, truncated)
        row.status = AdapterStatus.active  # type: ignore[union-attr]
        row.activated_at = utcnow()  # type: ignore[union-attr]
    bot._sync_adapter()
    assert generator.active_adapter == "good"


def test_a_fresh_process_answers_its_first_question_with_the_active_adapter(
    tmp_path: Path, database: Database, checkpoint_dir: Path, make_adapter: AdapterFactory
) -> None:
    """After a restart the generator is cold; the first answer must still load the active adapter."""
    from retrieval.generation.local import LocalChatGenerator

    activate(database, _publish(database, tmp_path / "adapters", make_adapter, "v1", seed=1))
    service = Tanya(Settings(home=tmp_path / "fresh"), database=database)
    cold = LocalChatGenerator(model_path=checkpoint_dir, max_new_tokens=12, torch_threads=1)
    service.__dict__["generator"] = cold  # not warmed up, as in a process that has just started

    service.ask("How do I rate an answer in tanya?")

    assert cold.active_adapter == "v1"
