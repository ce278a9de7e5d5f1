"""Which checkpoint ``tanya retrain`` trains adapters on: the one the bot answers with."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import Settings
from bot.training import training_base
from retrieval.generation import checkpoint


@pytest.fixture
def converted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Path, str]]:
    calls: list[tuple[Path, str]] = []

    def ensure(cache_dir: Path, model: str = "") -> Path:
        calls.append((cache_dir, model))
        return cache_dir / (model or "default")

    monkeypatch.setattr(checkpoint, "ensure_checkpoint", ensure)
    return calls


@pytest.mark.parametrize(
    ("generator", "trained_on"),
    [("", ""), ("local", "local"), ("gemma3-270m", "gemma3-270m"), ("http://vllm:8000/v1", "")],
    ids=["default", "local", "gemma", "served"],
)
def test_bundled_models_by_name_and_the_default_behind_a_server(
    tmp_path: Path, converted: list[tuple[Path, str]], generator: str, trained_on: str
) -> None:
    settings = Settings(home=tmp_path, generator=generator, database_url=None)
    training_base(settings)
    assert converted == [(settings.models_dir, trained_on)]


def test_a_checkpoint_folder_is_used_as_it_is(tmp_path: Path, converted: list[tuple[Path, str]]) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    assert training_base(Settings(home=tmp_path, generator=str(folder), database_url=None)) == folder
    assert converted == []
