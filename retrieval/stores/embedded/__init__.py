"""
The embedded document store: SQLite (FTS5 for BM25) plus an exact in-memory vector index.

* ``document_store`` – ``EmbeddedDocumentStore``, Haystack's DocumentStore protocol over one file
* ``bm25_retriever`` / ``embedding_retriever`` – the retriever components the search pipeline uses
  (``retriever_support``: what they share)
* ``analysis`` – words to BM25 terms per language; ``filters`` – Haystack filters as SQL
* ``schema`` – the tables and the statements every write goes through; ``vectors`` – the matrix
* ``migration`` – moves a home's old ``documents.json`` into the new file once
"""
