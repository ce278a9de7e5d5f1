"""Where the chunks live: the embedded store under the data directory, or Elasticsearch.

* ``document_store``      – ``open_document_store`` / ``count_documents``
* ``embedded``            – the default store: one SQLite file (FTS5 BM25) plus an in-memory vector matrix
* ``errors``              – ``StoreUnavailableError``, raised by every store that cannot be used
* ``elasticsearch_store`` – the aliased, versioned Elasticsearch store with retrying bulk writes
* ``elasticsearch_index`` – index naming, mapping, inspection and the atomic alias switch
* ``elasticsearch_bulk``  – bulk writes that ride out a busy or restarting cluster

The Elasticsearch modules are imported only when the store location is a URL.
"""

from retrieval.lazy_exports import lazy_exports

__getattr__, __all__ = lazy_exports(
    __name__,
    {
        "StoreUnavailableError": "retrieval.stores.errors",
        "count_documents": "retrieval.stores.document_store",
        "open_document_store": "retrieval.stores.document_store",
    },
)
