"""Text out of uploaded files: plain text, Markdown, HTML and PDF, by real parsers."""

from __future__ import annotations

import io
import re

from bs4 import BeautifulSoup
from pypdf import PdfReader
from pypdf.errors import PdfReadError

from ragline_core.errors import InvalidArgumentError

SUPPORTED = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf")
_CONTENT_TYPES = {
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/html": ".html",
    "application/pdf": ".pdf",
}


def kind_of(filename: str, content_type: str) -> str:
    """The parser to use: by extension first, then by content type."""
    lowered = filename.lower()
    for ext in SUPPORTED:
        if lowered.endswith(ext):
            return ext
    kind = _CONTENT_TYPES.get(content_type.split(";")[0].strip().lower())
    if kind is None:
        raise InvalidArgumentError(
            f"unsupported file type {filename or content_type!r}; supported: "
            + ", ".join(SUPPORTED),
            reason="UNSUPPORTED_FILE_TYPE",
            field="filename",
        )
    return kind


def extract_text(data: bytes, kind: str) -> str:
    if kind == ".pdf":
        return _pdf(data)
    text = _decode(data)
    if kind in (".html", ".htm"):
        return _html(text)
    return text


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidArgumentError(
            "the file is not valid UTF-8 text", reason="BAD_FILE_ENCODING", field="file"
        ) from None


def _html(text: str) -> str:
    """Visible text, with headings kept as Markdown headings so chunking can follow them."""
    soup = BeautifulSoup(text, "html.parser")
    for hidden in soup(["script", "style", "noscript", "template", "head"]):
        hidden.decompose()
    for level in range(1, 7):
        for heading in soup.find_all(f"h{level}"):
            heading.replace_with(f"\n\n{'#' * level} {heading.get_text(' ', strip=True)}\n\n")
    for block in soup.find_all(["p", "li", "div", "br", "tr", "section", "article"]):
        block.insert_after("\n\n")
    text = soup.get_text()
    return re.sub(r"\n{3,}", "\n\n", re.sub(r"[ \t]+", " ", text)).strip()


def _pdf(data: bytes) -> str:
    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, OSError):
        raise InvalidArgumentError(
            "the file is not a readable PDF", reason="BAD_PDF", field="file"
        ) from None
    return "\n\n".join(p.strip() for p in pages if p.strip())
