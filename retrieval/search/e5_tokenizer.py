"""
XLM-RoBERTa's SentencePiece tokenisation for multilingual-e5-small, built from the packed model.

The vocabulary and normaliser come from the same file as the weights, so the token ids are the ones
the C engine feeds (its token counts agree text for text; see tests/retrieval/search). The lattice
search is the `tokenizers` library's Unigram model; tanya only prepares the text the way
SentencePiece does before it: the per-character normalisation map, runs of spaces collapsed, and
U+2581 for every space with one in front.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tokenizers import Tokenizer, models

from retrieval.search.e5_packed_model import UnigramVocabulary

METASPACE = "\u2581"
_SPACE_RUNS = re.compile(" {2,}")


class E5Tokenizer:
    """Turns texts into content token ids (no `<s>`/`</s>`; the encoder adds them per window)."""

    def __init__(self, vocabulary: UnigramVocabulary) -> None:
        self.bos = vocabulary.bos
        self.eos = vocabulary.eos
        self._table = str.maketrans(vocabulary.normalisation)
        pieces = [
            (piece, float(score)) for piece, score in zip(vocabulary.pieces, vocabulary.scores, strict=True)
        ]
        self._tokenizer = Tokenizer(models.Unigram(pieces, unk_id=vocabulary.unk, byte_fallback=False))

    def prepare(self, text: str) -> str:
        """The string the unigram lattice sees: normalised, spaces as U+2581, one leading."""
        normalised = _SPACE_RUNS.sub(" ", text.translate(self._table))
        if not normalised.startswith(" "):
            normalised = " " + normalised
        return normalised.replace(" ", METASPACE)

    def content_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, in order, without special tokens or truncation."""
        encodings = self._tokenizer.encode_batch(
            [self.prepare(text) for text in texts], add_special_tokens=False
        )
        return [encoding.ids for encoding in encodings]
