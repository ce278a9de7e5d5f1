"""A fresh install answers with the default model (Gemma 3 270M) and the starter adapter shipped for it.

``generator=""`` is the default setting a new user has (the test suite otherwise runs SmolLM2, see
tests/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from alignment.starter import packaged_starter
from bot.service import Tanya
from bot.settings import Settings

DOC = """# Annual leave

Annual leave is requested in the HR portal at hr.example.com. Requests need two weeks' notice.
"""


def _fresh(tmp_path: Path, model_cache: Path, **overrides: object) -> Tanya:
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(model_cache, target_is_directory=True)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "leave.md").write_text(DOC, encoding="utf-8")
    service = Tanya(Settings(home=home, generator="", database_url=None, max_new_tokens=32, **overrides))
    service.ingest([tmp_path / "docs"])
    return service


@pytest.fixture
def starter_name() -> str:
    shipped = packaged_starter("gemma3-270m")
    assert shipped is not None, "the default model's starter adapter is missing from alignment/starters"
    return shipped.name


@pytest.mark.model
def test_a_fresh_home_answers_with_the_starter(tmp_path: Path, model_cache: Path, starter_name: str) -> None:
    service = _fresh(tmp_path, model_cache)
    assert "starter adapter shipped with tanya" in str(service.status()["active_adapter"])
    answer = service.ask("How do I request annual leave?", user_id="UTEST")
    assert answer.adapter == starter_name
    # Taught to answer in a few words (or to say the documents do not say); bare, it pastes its sources.
    assert 0 < len(answer.text.split()) <= 20, answer.text


def test_the_starter_can_be_turned_off(tmp_path: Path, starter_name: str) -> None:
    home = tmp_path / "home"
    off = Tanya(Settings(home=home, generator="", database_url=None, starter_adapter=False))
    assert off.status()["active_adapter"] is None and not (home / "adapters").exists()
    assert off.status()["generator"] == "bundled gemma3-270m"
    on = Tanya(Settings(home=home, generator="", database_url=None))
    assert starter_name in str(on.status()["active_adapter"]), "installed once turned on"
