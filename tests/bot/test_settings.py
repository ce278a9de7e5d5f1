from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import Settings


def test_defaults_need_no_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TANYA_HOME", str(tmp_path / "data"))
    settings = Settings()
    assert settings.home == (tmp_path / "data").resolve()
    assert settings.resolved_database_url == f"sqlite:///{(tmp_path / 'data' / 'tanya.db').resolve()}"
    assert settings.document_store == ""
    assert settings.admins == []
    assert settings.answer_direct_messages and settings.answer_private_channels
    assert not settings.train_on_private


def test_environment_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANYA_DATABASE_URL", "postgresql+psycopg://u@db/tanya")
    monkeypatch.setenv("TANYA_DOCUMENT_STORE", "http://es:9200")
    monkeypatch.setenv("TANYA_GENERATOR", "http://vllm:8000/v1")
    monkeypatch.setenv("TANYA_ADMINS", "U01ADMIN, U02OTHER,,")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-secret")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "shh")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9999/api/")
    monkeypatch.setenv("TANYA_TRAIN_ON_PRIVATE", "true")
    settings = Settings()
    assert settings.resolved_database_url == "postgresql+psycopg://u@db/tanya"
    assert settings.document_store == "http://es:9200"
    assert settings.generator == "http://vllm:8000/v1"
    assert settings.admins == ["U01ADMIN", "U02OTHER"]
    assert settings.slack_api_url == "http://127.0.0.1:9999/api/"
    assert settings.train_on_private
    # Secrets never appear in reprs or logs.
    assert "xoxb-secret" not in repr(settings)
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == "xoxb-secret"


def test_invalid_values_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANYA_TOP_K", "0")
    with pytest.raises(ValueError, match="top_k"):
        Settings()


def test_retrieval_settings_reach_the_retrieval_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from bot.service import InputError, Tanya

    monkeypatch.setenv("TANYA_HOME", str(tmp_path))
    monkeypatch.setenv("TANYA_FUSION", "distribution_based_rank_fusion")
    monkeypatch.setenv("TANYA_FUSION_WEIGHTS", "0.4, 0.6")
    monkeypatch.setenv("TANYA_CHUNK_WORDS", "120")
    monkeypatch.setenv("TANYA_CHUNK_OVERLAP", "20")
    monkeypatch.setenv("TANYA_EMBEDDER", "minilm")
    monkeypatch.setenv("TANYA_EMBEDDING_ENGINE", "c")
    config = Tanya(Settings()).retrieval_config
    assert config.join_mode == "distribution_based_rank_fusion"
    assert config.weights == (0.4, 0.6)
    assert (config.split_length, config.split_overlap) == (120, 20)
    assert config.embedder == "minilm" and config.embedding_engine == "c"
    assert config.data_dir == tmp_path.resolve() / "index"

    monkeypatch.setenv("TANYA_FUSION", "average-ish")
    with pytest.raises(InputError, match="join mode"):
        _ = Tanya(Settings()).retrieval_config
    monkeypatch.setenv("TANYA_FUSION", "merge")
    monkeypatch.setenv("TANYA_EMBEDDING_ENGINE", "onnx")
    with pytest.raises(InputError, match="embedding engine"):
        _ = Tanya(Settings()).retrieval_config


def test_training_settings_reach_the_alignment_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from bot.training import training_setup

    monkeypatch.setenv("TANYA_HOME", str(tmp_path))
    monkeypatch.setenv("TANYA_TRAIN_DEVICE", "cpu")
    monkeypatch.setenv("TANYA_TRAIN_CPU_BF16", "true")
    monkeypatch.setenv("TANYA_TRAIN_MIN_ANSWERS", "12")
    config, _, _ = training_setup(Settings())
    assert config.device == "cpu" and config.cpu_bf16 and config.min_sft_rows == 12
