from __future__ import annotations

from haystack import Document

from retrieval.search.relevance import RelevanceFilter


def _docs(*scores: float) -> list[Document]:
    return [Document(content=f"doc {i}", score=s) for i, s in enumerate(scores)]


def test_passes_fused_documents_when_the_best_dense_match_is_close_enough() -> None:
    fused = _docs(0.9, 0.5, 0.1)
    out = RelevanceFilter(min_similarity=0.8).run(documents=fused, dense_documents=_docs(0.79, 0.81))
    assert out["documents"] == fused
    assert out["best_similarity"] == 0.81


def test_returns_nothing_below_the_threshold_or_without_dense_results() -> None:
    gate = RelevanceFilter(min_similarity=0.8)
    assert gate.run(documents=_docs(1.0), dense_documents=_docs(0.79))["documents"] == []
    assert gate.run(documents=_docs(1.0), dense_documents=[])["documents"] == []
    assert gate.run(documents=_docs(1.0))["documents"] == []


def test_elasticsearch_scores_are_converted_back_to_cosine() -> None:
    gate = RelevanceFilter(min_similarity=0.8, dense_score_scale="unit_interval")
    # Elasticsearch reports (1 + cos) / 2: 0.89 means cos 0.78, below the threshold.
    assert gate.run(documents=_docs(1.0), dense_documents=_docs(0.89))["documents"] == []
    assert gate.run(documents=_docs(1.0), dense_documents=_docs(0.91))["documents"] != []


def test_threshold_can_be_overridden_per_call_and_top_k_cuts() -> None:
    gate = RelevanceFilter(min_similarity=0.8, top_k=2)
    out = gate.run(documents=_docs(3, 2, 1), dense_documents=_docs(0.5), min_similarity=0.4)
    assert [d.score for d in out["documents"]] == [3, 2]


def test_round_trips_through_dicts() -> None:
    gate = RelevanceFilter(
        min_similarity=0.3, dense_score_scale="unit_interval", top_k=4, agreement_margin=0.02
    )
    clone = RelevanceFilter.from_dict(gate.to_dict())
    assert (clone.min_similarity, clone.dense_score_scale, clone.top_k) == (0.3, "unit_interval", 4)
    assert clone.agreement_margin == 0.02


def test_agreement_rescues_a_question_just_under_the_threshold() -> None:
    dense = [Document(id="b", content="b", score=0.79), Document(id="a", content="a", score=0.785)]
    agreeing = [Document(id="b", content="b", score=7.0), Document(id="a", content="a", score=3.0)]
    disagreeing = list(reversed(agreeing))
    fused = _docs(1.0)
    gate = RelevanceFilter(min_similarity=0.8, agreement_margin=0.02)
    assert gate.run(documents=fused, dense_documents=dense, keyword_documents=agreeing)["documents"] == fused
    assert gate.run(documents=fused, dense_documents=dense, keyword_documents=disagreeing)["documents"] == []
    assert gate.run(documents=fused, dense_documents=dense)["documents"] == []  # no keyword hits
    # Beyond the margin agreement does not help; with no margin the rule is off.
    far = [Document(id="b", content="b", score=0.77)]
    assert gate.run(documents=fused, dense_documents=far, keyword_documents=agreeing)["documents"] == []
    off = RelevanceFilter(min_similarity=0.8)
    assert off.run(documents=fused, dense_documents=dense, keyword_documents=agreeing)["documents"] == []


def test_agreement_depth_lets_each_retriever_rank_the_others_best_second() -> None:
    dense = [Document(id="a", content="a", score=0.785), Document(id="b", content="b", score=0.79)]
    keyword = [Document(id="a", content="a", score=7.0), Document(id="b", content="b", score=3.0)]
    unrelated = [Document(id="c", content="c", score=7.0), Document(id="d", content="d", score=3.0)]
    fused = _docs(1.0)
    same_best = RelevanceFilter(min_similarity=0.8, agreement_margin=0.02)
    near_top = RelevanceFilter(min_similarity=0.8, agreement_margin=0.02, agreement_depth=2)
    # Dense order is by score (b first); BM25's best, a, is the second closest vector.
    assert same_best.run(documents=fused, dense_documents=dense, keyword_documents=keyword)["documents"] == []
    assert (
        near_top.run(documents=fused, dense_documents=dense, keyword_documents=keyword)["documents"] == fused
    )
    assert (
        near_top.run(documents=fused, dense_documents=dense, keyword_documents=unrelated)["documents"] == []
    )
    assert RelevanceFilter.from_dict(near_top.to_dict()).agreement_depth == 2
