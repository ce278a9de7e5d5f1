"""Turns one file into one Haystack Document, or says in one line why it cannot."""

from __future__ import annotations

import hashlib
import html as html_lib
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from haystack import Document
from haystack.components.converters import (
    HTMLToDocument,
    MarkdownToDocument,
    PyPDFToDocument,
    TextFileToDocument,
)
from haystack.components.routers import FileTypeRouter
from haystack.dataclasses import ByteStream

from retrieval.ingestion.repair import repair_text

MIME_TYPES = ("text/plain", "text/markdown", "text/html", "application/pdf")

_FRONTMATTER = re.compile(r"\A---[ \t]*\r?\n(?P<body>.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_FRONTMATTER_TITLE = re.compile(r"^title:[ \t]*(?P<title>.+?)[ \t]*$", re.MULTILINE)
_ATX_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(?P<title>.+?)[ \t#]*$", re.MULTILINE)
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_HTML_TITLE = re.compile(r"<title[^>]*>(?P<title>.*?)</title>", re.DOTALL | re.IGNORECASE)
_HTML_H1 = re.compile(r"<h1[^>]*>(?P<title>.*?)</h1>", re.DOTALL | re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")
_EMPHASIS = re.compile(r"[*_`]+")


class SkipFile(Exception):
    """A file that cannot be indexed; the message is the one-line reason shown to the operator."""


@dataclass(frozen=True)
class SourceFile:
    """A file read into memory once, so hashing and converting see the same bytes."""

    path: Path
    data: bytes
    sha256: str
    mime_type: str


class FileConverter:
    """
    Wraps Haystack's converters with the checks they leave out.

    Haystack's converters log and drop a file they cannot read; an operator ingesting a folder needs
    to hear which file was dropped and why, so the reading, type and encoding checks happen here.
    """

    def __init__(self) -> None:
        self._router = FileTypeRouter(
            mime_types=list(MIME_TYPES), additional_mimetypes={"text/markdown": ".mdx"}
        )
        self._text = TextFileToDocument(store_full_path=True)
        self._markdown = MarkdownToDocument(progress_bar=False, store_full_path=True)
        self._html = HTMLToDocument(store_full_path=True)
        self._pdf = PyPDFToDocument(store_full_path=True)

    def read(self, path: Path) -> SourceFile:
        """Reads and classifies a file; raises SkipFile with the reason it cannot be used."""
        if not path.exists():
            raise SkipFile("does not exist")
        routed = self._router.run(sources=[path])
        mime = next((m for m in MIME_TYPES if routed.get(m)), None)
        if mime is None:
            raise SkipFile(f"unsupported file type ({path.suffix or 'no extension'})")
        try:
            data = path.read_bytes()
        except PermissionError:
            raise SkipFile("permission denied") from None
        except OSError as error:
            raise SkipFile(f"unreadable: {error.strerror or error}") from None
        if not data.strip():
            raise SkipFile("empty file")
        return SourceFile(path=path, data=data, sha256=hashlib.sha256(data).hexdigest(), mime_type=mime)

    def convert(self, source: SourceFile) -> Document:
        """Returns the file's text as one Document whose meta carries `title`."""
        if source.mime_type == "application/pdf":
            content, title = self._convert_pdf(source)
        else:
            text = _decode(source.data)
            if source.mime_type == "text/html":
                content, title = self._run(self._html, text, source), _html_title(text)
            else:
                body, title = _strip_frontmatter(text)
                converter = self._markdown if source.mime_type == "text/markdown" else self._text
                content = self._run(converter, body, source)
                title = title or _first_heading(body)
        if not content or not content.strip():
            raise SkipFile("no text found")
        title = repair_text(_plain(title)) if title else ""
        return Document(content=content, meta={"title": title or source.path.stem})

    def _run(self, converter: Any, text: str, source: SourceFile) -> str:
        stream = ByteStream(
            data=text.encode("utf-8"), meta={"file_path": str(source.path), "encoding": "utf-8"}
        )
        documents = converter.run(sources=[stream])["documents"]
        return documents[0].content if documents else ""

    def _convert_pdf(self, source: SourceFile) -> tuple[str, str | None]:
        from pypdf import PdfReader  # heavy

        try:
            reader = PdfReader(io.BytesIO(source.data))
            if reader.is_encrypted:
                raise SkipFile("encrypted PDF")
            title = _pdf_title(reader.metadata.title if reader.metadata else None)
        except SkipFile:
            raise
        except Exception as error:
            raise SkipFile(f"not a readable PDF: {_first_line(error)}") from None
        stream = ByteStream(data=source.data, meta={"file_path": str(source.path)})
        documents = self._pdf.run(sources=[stream])["documents"]
        return (documents[0].content if documents else ""), title


def _pdf_title(title: str | None) -> str | None:
    # Authoring tools fill the title field with placeholders ("untitled", "Microsoft Word - x.docx");
    # the file name says more than those.
    if not title or title.strip().lower() in ("untitled", "untitled document", "none"):
        return None
    return re.sub(r"^Microsoft (Word|PowerPoint) - ", "", title.strip()) or None


def _decode(data: bytes) -> str:
    # Text files are expected in UTF-8; an old export in Windows-1252 is still text, whereas NUL
    # bytes mean a binary file that merely carries a text extension.
    if b"\x00" in data[:8192]:
        raise SkipFile("binary content in a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        raise SkipFile("not UTF-8 or Windows-1252 text") from None


def _strip_frontmatter(text: str) -> tuple[str, str | None]:
    match = _FRONTMATTER.match(text)
    if not match:
        return text, None
    title = _FRONTMATTER_TITLE.search(match.group("body"))
    value = title.group("title").strip().strip("'\"") if title else None
    return text[match.end() :], value or None


def _first_heading(text: str) -> str | None:
    match = _ATX_HEADING.search(_HTML_COMMENT.sub("", text))
    return match.group("title") if match else None


def _html_title(html: str) -> str | None:
    for pattern in (_HTML_TITLE, _HTML_H1):
        match = pattern.search(html)
        if match and _plain(match.group("title")):
            return match.group("title")
    return None


def _plain(title: str) -> str:
    text = _EMPHASIS.sub("", _TAG.sub("", html_lib.unescape(title)))
    return " ".join(text.split())[:200]


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
