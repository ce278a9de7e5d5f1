"""Question in, checked answer out.

* ``prompt``   – the grounded prompt's template, and the two formats it defines read back: the
  citation grammar (``CITATION``, ``cited_numbers``) and the numbered source list (``parse_sources``)
* ``pipeline`` – ``RagPipeline``: search → prompt → generator, "not found" without generating
* ``checks``   – every check applied to what the model wrote (``check_answer``), each answer carrying
  the list of what they changed; the gate grades answers through the same checks; the honest
  "the documents do not say" reply per language (``NOT_IN_DOCUMENTS``)
* ``excerpt``  – the passage of a source quoted under it, so a reader can check the answer
"""

from retrieval.lazy_exports import lazy_exports

__getattr__, __all__ = lazy_exports(
    __name__,
    {
        "NOT_FOUND_TEXT": "retrieval.answering.pipeline",
        "RagAnswer": "retrieval.answering.pipeline",
        "RagPipeline": "retrieval.answering.pipeline",
        "NO_ANSWER_TEXT": "retrieval.answering.checks",
        "AnswerChange": "retrieval.answering.checks",
        "Change": "retrieval.answering.checks",
        "CheckedAnswer": "retrieval.answering.checks",
        "check_answer": "retrieval.answering.checks",
        "NOT_IN_DOCUMENTS": "retrieval.answering.checks",
        "says_not_in_documents": "retrieval.answering.checks",
        "make_prompt_builder": "retrieval.answering.prompt",
    },
)
