"""Words to BM25 terms, per language: the same analysis for what is indexed and what is asked."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import Stemmer

from retrieval.config import TEXT_ANALYZERS as ANALYZERS

# Snowball has no Malay stemmer; Malay and Indonesian share their affixes (me-, ber-, di-, -kan, -an).
_SNOWBALL = {
    "en": "english",
    "id": "indonesian",
    "ms": "indonesian",
    "fr": "french",
    "de": "german",
    "es": "spanish",
    "pt": "portuguese",
    "it": "italian",
    "nl": "dutch",
}
# Two or more word characters, as Haystack's in-memory BM25 tokenises, so single letters and digits
# ("a", "5") do not flood the index.
_WORD = re.compile(r"(?u)\b\w\w+\b")


@dataclass(frozen=True)
class TextAnalyzer:
    """
    Lower-cases, splits into words and, for `stemmed*`, reduces each word to its stem in the text's
    language (guessed per text among `languages`), so "pembelajaran" finds "belajar" and
    "answers" finds "answer". `stemmed-stopwords` also drops the language's stop words, which
    carry no evidence and make every query touch most of the index.

    The analysis is stored with the index: a store opened with another analyzer re-analyses its
    chunks, so a query is never analysed differently from the text it is matched against.
    """

    name: str = field(default="stemmed", metadata={"help": f"One of {', '.join(ANALYZERS)}."})
    languages: tuple[str, ...] = field(
        default=("en", "id", "ms"),
        metadata={"help": "ISO 639-1 codes a text may be in; the most likely one decides its stemmer."},
    )

    def __post_init__(self) -> None:
        if self.name not in ANALYZERS:
            raise ValueError(f"Unknown text analyzer {self.name!r}; expected one of {', '.join(ANALYZERS)}.")
        if not self.languages:
            raise ValueError("languages must name at least one language.")

    @property
    def signature(self) -> str:
        """What the stored terms depend on; a change means re-analysing every chunk."""
        return f"{self.name}|{','.join(self.languages)}"

    def warm_up(self) -> None:
        """Loads the language identifier (half a second) before the first text needs it."""
        if self.name != "plain" and len(self.languages) > 1:
            self._identifier  # noqa: B018 - a cached property: reading it loads the model

    def language(self, text: str) -> str:
        """The most likely of `languages` for `text` (the first one when there is only one)."""
        if len(self.languages) == 1 or not text.strip():
            return self.languages[0]
        return str(self._identifier.classify(text)[0])

    def terms(self, text: str, language: str | None = None) -> list[str]:
        """The terms of `text` in index order; `language` skips the guess when it is known."""
        words = _WORD.findall(text.lower())
        if self.name == "plain" or not words:
            return words
        language = language or self.language(text)
        if self.name == "stemmed-stopwords":
            stop = self._stopwords(language)
            words = [word for word in words if word not in stop]
        stemmer = self._stemmer(language)
        return stemmer.stemWords(words) if stemmer is not None else words

    @cached_property
    def _identifier(self) -> Any:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier  # heavy

        identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=False)
        identifier.set_languages(list(self.languages))
        return identifier

    def _stemmer(self, language: str) -> Any:
        # PyStemmer objects are not thread-safe; one per thread and language.
        algorithm = _SNOWBALL.get(language)
        if algorithm is None:
            return None
        cache = _local_stemmers()
        if algorithm not in cache:
            cache[algorithm] = Stemmer.Stemmer(algorithm)
        return cache[algorithm]

    def _stopwords(self, language: str) -> frozenset[str]:
        return _stopwords_of(language)


_threads = threading.local()


def _local_stemmers() -> dict[str, Any]:
    if not hasattr(_threads, "stemmers"):
        _threads.stemmers = {}
    return _threads.stemmers


_STOPWORDS: dict[str, frozenset[str]] = {}


def _stopwords_of(language: str) -> frozenset[str]:
    if language not in _STOPWORDS:
        import stopwordsiso  # heavy

        _STOPWORDS[language] = frozenset(stopwordsiso.stopwords(language) or ())
    return _STOPWORDS[language]
