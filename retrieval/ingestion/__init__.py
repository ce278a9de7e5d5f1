"""Files in, searchable chunks out.

* ``converters``    – one file (Markdown, text, HTML, PDF) → one Haystack ``Document``, or a one-line reason
* ``repair``        – mojibake repaired before anything else reads the text
* ``paragraphs``    – whitespace collapsed inside paragraphs, the blank line between them kept
* ``preprocessing`` – the text pipeline: repair, clean, split into chunks
* ``ingest``        – ``Ingestor``: convert → preprocess → embed → write, with stable chunk ids
* ``reindex``       – ``Reindexer``: a new Elasticsearch index filled while the old one serves

Uses ``retrieval.stores`` to write and ``retrieval.search.embedders`` to embed.
"""

from retrieval.lazy_exports import lazy_exports

__getattr__, __all__ = lazy_exports(
    __name__,
    {
        "IngestEvent": "retrieval.ingestion.ingest",
        "IngestReport": "retrieval.ingestion.ingest",
        "Ingestor": "retrieval.ingestion.ingest",
        "Reindexer": "retrieval.ingestion.reindex",
    },
)
