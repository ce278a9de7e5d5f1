"""Text analysis: the same terms for a chunk and for the question that should find it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from retrieval.stores.embedded.analysis import TextAnalyzer


def test_plain_lowercases_and_drops_single_characters() -> None:
    assert TextAnalyzer(name="plain").terms("Reset the VPN: step 2 of 5, a quick fix") == [
        "reset",
        "the",
        "vpn",
        "step",
        "of",
        "quick",
        "fix",
    ]


def test_english_inflections_share_a_stem() -> None:
    analyzer = TextAnalyzer(name="stemmed")
    assert analyzer.terms("Reimbursing expenses", "en") == analyzer.terms("reimbursed expense", "en")


def test_indonesian_affixes_are_stripped_by_the_indonesian_stemmer() -> None:
    analyzer = TextAnalyzer(name="stemmed")
    # me-/peN-/-an/-kan: the same root whether the question or the policy uses the derived form.
    assert analyzer.terms("pembayaran", "id") == analyzer.terms("bayar", "id")
    assert analyzer.terms("mengajukan", "id") == analyzer.terms("ajukan", "id")
    # The English stemmer would not have done it.
    assert analyzer.terms("pembayaran", "en") != analyzer.terms("bayar", "en")


def test_the_language_is_guessed_among_the_configured_ones() -> None:
    analyzer = TextAnalyzer(name="stemmed", languages=("en", "id"))
    assert analyzer.language("How many days of annual leave does an employee get?") == "en"
    assert analyzer.language("Berapa hari cuti tahunan yang didapat setiap karyawan?") == "id"
    assert TextAnalyzer(name="stemmed", languages=("id",)).language("anything at all") == "id"


def test_stop_words_are_dropped_only_by_the_stopwords_analyzer() -> None:
    question = "What is the policy for the laptop?"
    assert "the" in TextAnalyzer(name="stemmed").terms(question, "en")
    trimmed = TextAnalyzer(name="stemmed-stopwords").terms(question, "en")
    assert "the" not in trimmed and "laptop" in trimmed
    assert "yang" not in TextAnalyzer(name="stemmed-stopwords").terms("laptop yang rusak", "id")


def test_the_signature_changes_with_what_the_terms_depend_on() -> None:
    assert TextAnalyzer(name="stemmed").signature != TextAnalyzer(name="plain").signature
    assert TextAnalyzer(languages=("en",)).signature != TextAnalyzer(languages=("en", "id")).signature


def test_unknown_analyzers_are_refused() -> None:
    with pytest.raises(ValueError, match="Unknown text analyzer"):
        TextAnalyzer(name="porter")
    with pytest.raises(ValueError, match="at least one language"):
        TextAnalyzer(languages=())


def test_threads_can_analyse_at_once() -> None:
    analyzer = TextAnalyzer(name="stemmed")
    texts = ["running runners ran", "pembayaran pengajuan perjalanan"] * 200
    expected = [analyzer.terms(text) for text in texts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(analyzer.terms, texts)) == expected
