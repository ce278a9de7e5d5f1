from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.ingestion.converters import FileConverter, SkipFile
from tests.retrieval.conftest import make_pdf


@pytest.fixture(scope="module")
def converter() -> FileConverter:
    return FileConverter()


def _convert(converter: FileConverter, path: Path):
    return converter.convert(converter.read(path))


def test_windows_1252_text_is_still_read(converter: FileConverter, tmp_path: Path) -> None:
    path = tmp_path / "menu.txt"
    path.write_bytes("Café opens at 8 – lunch at noon".encode("cp1252"))
    doc = _convert(converter, path)
    assert doc.content.startswith("Café opens at 8 – lunch")
    assert doc.meta["title"] == "menu"


def test_markdown_heading_is_the_title_without_emphasis(converter: FileConverter, tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_text("<!-- generated -->\nIntro line.\n\n## **Deploy** `checklist`\n\nStep one.\n")
    assert _convert(converter, path).meta["title"] == "Deploy checklist"


def test_html_without_title_uses_its_first_heading(converter: FileConverter, tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        "<html><body><h1>Office &amp; parking</h1><p>"
        + "The garage under the office has forty spaces for staff and visitors. " * 3
        + "</p></body></html>"
    )
    doc = _convert(converter, path)
    assert doc.meta["title"] == "Office & parking"
    assert "forty spaces" in doc.content


def test_pdf_placeholder_titles_are_ignored(converter: FileConverter, tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "q3-report.pdf", ["Revenue grew in the third quarter."], title="Untitled")
    assert _convert(converter, pdf).meta["title"] == "q3-report"
    word = make_pdf(tmp_path / "x.pdf", ["Text."], title="Microsoft Word - Leave policy.docx")
    assert _convert(converter, word).meta["title"] == "Leave policy.docx"


def test_html_without_text_is_skipped(converter: FileConverter, tmp_path: Path) -> None:
    path = tmp_path / "empty.html"
    path.write_text("<html><head><title>Nothing</title></head><body></body></html>")
    with pytest.raises(SkipFile, match="no text found"):
        _convert(converter, path)
