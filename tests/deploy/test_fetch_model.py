"""deploy/fetch_model.py (tanya-fetch-model): the models volume gets the base model once, complete or not
at all; an operator's own copy is kept; an offline site is told what to do. No network: the download
is a stand-in for huggingface_hub.snapshot_download."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import pytest

from tests.deploy.helpers import DEPLOY


@pytest.fixture(scope="module")
def fetcher() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("fetch_model", DEPLOY / "fetch_model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    calls: list[dict] = []

    def snapshot_download(
        *, repo_id: str, local_dir: Path, allow_patterns: list[str], token: str | None
    ) -> str:
        calls.append({"repo": repo_id, "into": Path(local_dir), "token": token, "patterns": allow_patterns})
        Path(local_dir).mkdir(parents=True)
        (Path(local_dir) / "config.json").write_text(json.dumps({"model_type": "qwen3"}))
        (Path(local_dir) / ".cache").mkdir()
        return str(local_dir)

    monkeypatch.setitem(
        sys.modules, "huggingface_hub", types.SimpleNamespace(snapshot_download=snapshot_download)
    )
    return calls


def test_a_missing_model_is_downloaded_beside_the_target_then_renamed(
    fetcher: types.ModuleType, downloads: list[dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "Qwen3-8B"
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    assert fetcher.fetch(target, "Qwen/Qwen3-8B", offline=False) == f"downloaded Qwen/Qwen3-8B to {target}"
    (call,) = downloads
    assert call["into"] == tmp_path / ".Qwen3-8B.partial" and call["token"] == "hf_secret"
    assert "*.safetensors" in call["patterns"] and (target / "config.json").is_file()
    assert not (target / ".cache").exists() and not call["into"].exists()
    assert "already holds a checkpoint" in fetcher.fetch(target, "Qwen/Qwen3-8B", offline=False)
    assert len(downloads) == 1  # the second start downloads nothing


def test_an_offline_site_is_told_where_to_put_the_model(fetcher: types.ModuleType, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="copy the model's folder"):
        fetcher.fetch(tmp_path / "Qwen3-8B", "Qwen/Qwen3-8B", offline=True)
    own = tmp_path / "Sailor2-8B-Chat"
    own.mkdir()
    (own / "config.json").write_text("{}")
    assert "nothing to download" in fetcher.fetch(own, "sail/Sailor2-8B-Chat", offline=True)


def test_the_base_model_must_be_a_folder_on_the_volume(
    fetcher: types.ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TANYA_BASE_MODEL", "gemma3-270m")
    assert fetcher.main() == 1 and "must be a folder on the models volume" in capsys.readouterr().out
