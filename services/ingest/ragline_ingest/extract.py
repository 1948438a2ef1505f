"""Text out of uploaded files: plain text, Markdown, HTML, PDF and Word .docx, by real
parsers."""

from __future__ import annotations

import io
import re
import zipfile

import docx
from bs4 import BeautifulSoup
from docx.opc.exceptions import PackageNotFoundError
from docx.table import Table
from pypdf import PdfReader
from pypdf.errors import PdfReadError

from ragline_core.errors import InvalidArgumentError

SUPPORTED = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")
_CONTENT_TYPES = {
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/html": ".html",
    "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
}
# A .docx is a zip: refuse archives that inflate past this (a zip bomb in a small upload).
MAX_DOCX_INFLATED_BYTES = 200 * 1024 * 1024


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
    if kind == ".docx":
        return _docx(data)
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


def _docx(data: bytes) -> str:
    """Paragraphs and tables in document order; Word headings become Markdown headings so
    chunking can follow them."""
    bad = InvalidArgumentError(
        "the file is not a readable .docx document", reason="BAD_DOCX", field="file"
    )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
        if inflated > MAX_DOCX_INFLATED_BYTES:
            raise InvalidArgumentError(
                f"the .docx inflates to {inflated} bytes; the limit is {MAX_DOCX_INFLATED_BYTES}",
                reason="FILE_TOO_LARGE",
                field="file",
            )
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, PackageNotFoundError, KeyError, ValueError):
        raise bad from None
    blocks: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            rows = [" | ".join(cell.text.strip() for cell in row.cells) for row in block.rows]
            blocks.append("\n".join(r for r in rows if r.strip(" |")))
            continue
        text = block.text.strip()
        if not text:
            continue
        style = (block.style.name if block.style is not None else "") or ""
        level = _heading_level(style)
        blocks.append(f"{'#' * level} {text}" if level else text)
    return "\n\n".join(b for b in blocks if b)


def _heading_level(style: str) -> int:
    """1-6 for Word's "Title" and "Heading N" styles, else 0."""
    if style == "Title":
        return 1
    match = re.fullmatch(r"Heading ([1-9])", style)
    return min(6, int(match.group(1))) if match else 0
