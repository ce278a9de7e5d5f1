"""Haystack's own DocumentStore test suite, run against the embedded store."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from haystack import Document
from haystack.testing.document_store import (
    CountDocumentsByFilterTest,
    CountDocumentsTest,
    DeleteDocumentsTest,
    FilterDocumentsTest,
    WriteDocumentsTest,
)

from retrieval.stores.embedded.document_store import EmbeddedDocumentStore


class TestEmbeddedStoreProtocol(
    CountDocumentsTest,
    CountDocumentsByFilterTest,
    DeleteDocumentsTest,
    FilterDocumentsTest,
    WriteDocumentsTest,
):
    @staticmethod
    def assert_documents_are_equal(received: list[Document], expected: list[Document]) -> None:
        # Vectors are stored as float32 (as Elasticsearch stores them), so they come back rounded.
        assert [replace(d, embedding=None) for d in received] == [
            replace(d, embedding=None) for d in expected
        ]
        for got, want in zip(received, expected, strict=True):
            if want.embedding is None:
                assert got.embedding is None
            else:
                assert got.embedding == pytest.approx(want.embedding, rel=1e-6, abs=1e-7)

    @pytest.fixture
    def document_store(self, tmp_path: Path) -> EmbeddedDocumentStore:
        return EmbeddedDocumentStore(path=tmp_path / "store.sqlite3")

    def test_write_documents(self, document_store: EmbeddedDocumentStore) -> None:
        from haystack.document_stores.errors import DuplicateDocumentError

        doc = Document(content="test doc")
        assert document_store.write_documents([doc]) == 1
        with pytest.raises(DuplicateDocumentError):
            document_store.write_documents([doc])
        assert document_store.filter_documents() == [doc]
