"""Text out of uploaded files by real parsers (pypdf, python-docx, BeautifulSoup), with a
cap on everything a small file can make them do: inflated bytes, zip parts, XML tags,
paragraphs, pages, content-stream bytes and extracted characters, each checked while
parsing. A file over a cap is `Rejected` with a reason and a message naming the limit.

This module runs in the extraction child process (ragline_ingest.extract_worker): it
imports no gRPC, and each parser is imported only for its own kind, so the child starts
quickly.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import asdict, dataclass

MIB = 1024 * 1024


class Rejected(Exception):
    """The file cannot be extracted within the caps (a client error)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Caps:
    max_chars: int = 1_000_000
    # .docx: a zip of XML parts. Bytes are counted as they inflate (declared sizes can lie).
    max_inflated_bytes: int = 64 * MIB
    max_parts: int = 1000
    max_xml_tags: int = 4_000_000
    max_paragraphs: int = 100_000
    # PDF: pages, and the decompressed content streams pypdf interprets in Python.
    max_pages: int = 2000
    max_page_content_bytes: int = 1 * MIB
    max_content_bytes: int = 32 * MIB

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def parse(data: bytes, kind: str, caps: Caps) -> str:
    if kind == ".pdf":
        text = _pdf(data, caps)
    elif kind == ".docx":
        text = _docx(data, caps)
    else:
        text = decode(data)
        if kind in (".html", ".htm"):
            text = _html(text)
    _check_chars(len(text), caps, "the file's text")
    return text


def _check_chars(chars: int, caps: Caps, what: str) -> None:
    if chars > caps.max_chars:
        raise Rejected(
            "DOCUMENT_TOO_LARGE",
            f"{what} is over {caps.max_chars} characters (the limit, MAX_DOCUMENT_CHARS)",
        )


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Rejected("BAD_FILE_ENCODING", "the file is not valid UTF-8 text") from None


def _html(text: str) -> str:
    """Visible text, with headings kept as Markdown headings so chunking can follow them."""
    from bs4 import BeautifulSoup

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


def _pdf(data: bytes, caps: Caps) -> str:
    import pypdf
    from pypdf.errors import LimitReachedError, PdfReadError

    bad = Rejected("BAD_PDF", "the file is not a readable PDF")
    pages: list[str] = []
    try:
        # pypdf's own limits, tightened: no stream inflates past the document's content cap.
        with pypdf.apply_configuration(
            zlib_maximum_output_length=caps.max_content_bytes,
            lzw_maximum_output_length=caps.max_content_bytes,
            run_length_maximum_output_length=caps.max_content_bytes,
            array_based_stream_maximum_output_length=caps.max_content_bytes,
        ):
            reader = pypdf.PdfReader(io.BytesIO(data))
            count = len(reader.pages)
            if count > caps.max_pages:
                raise Rejected(
                    "DOCUMENT_TOO_COMPLEX",
                    f"the PDF has {count} pages; the limit is {caps.max_pages}",
                )
            content = chars = 0
            for number, page in enumerate(reader.pages, start=1):
                stream = page.get_contents()
                size = len(stream.get_data()) if stream is not None else 0
                if size > caps.max_page_content_bytes:
                    raise Rejected(
                        "DOCUMENT_TOO_COMPLEX",
                        f"page {number} of the PDF has {size} bytes of content; the limit is "
                        f"{caps.max_page_content_bytes} per page",
                    )
                content += size
                if content > caps.max_content_bytes:
                    raise Rejected(
                        "DOCUMENT_TOO_COMPLEX",
                        f"the PDF has over {caps.max_content_bytes} bytes of page content "
                        f"(the limit) by page {number}",
                    )
                text = (page.extract_text() or "").strip()
                chars += len(text) + 2
                _check_chars(chars, caps, f"the PDF's text up to page {number}")
                if text:
                    pages.append(text)
    except LimitReachedError:
        raise Rejected(
            "DOCUMENT_TOO_COMPLEX", "the PDF inflates past the parser's limits"
        ) from None
    except (PdfReadError, ValueError, KeyError, OSError, TypeError, AttributeError):
        raise bad from None
    return "\n\n".join(pages)


def _docx(data: bytes, caps: Caps) -> str:
    """Paragraphs and tables in document order; Word headings become Markdown headings so
    chunking can follow them."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table
    from lxml import etree  # type: ignore[import-untyped]

    _check_package(data, caps)
    try:
        document = docx.Document(io.BytesIO(data))
        blocks: list[str] = []
        chars = 0
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                rows = [" | ".join(cell.text.strip() for cell in row.cells) for row in block.rows]
                text = "\n".join(r for r in rows if r.strip(" |"))
            else:
                text = block.text.strip()
                style = (block.style.name if block.style is not None else "") or ""
                level = _heading_level(style)
                if text and level:
                    text = f"{'#' * level} {text}"
            if text:
                blocks.append(text)
                chars += len(text) + 2
                _check_chars(chars, caps, "the .docx's text")
    except (zipfile.BadZipFile, PackageNotFoundError, KeyError, ValueError, etree.LxmlError):
        raise _bad_docx() from None
    return "\n\n".join(blocks)


def _bad_docx(detail: str = "") -> Rejected:
    return Rejected("BAD_DOCX", "the file is not a readable .docx document" + detail)


def _check_package(data: bytes, caps: Caps) -> None:
    """Reads every XML part once, streaming, before python-docx builds its trees: counts
    parts, inflated bytes, XML tags and paragraphs against the caps, all in C (no tree, no
    Python call per element), and refuses a DTD (Word never writes one; entity expansion
    is the "billion laughs")."""
    from lxml import etree

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError):
        raise _bad_docx() from None
    with archive:
        infos = archive.infolist()
        if len(infos) > caps.max_parts:
            raise Rejected(
                "DOCUMENT_TOO_COMPLEX",
                f"the .docx has {len(infos)} parts; the limit is {caps.max_parts}",
            )
        declared = sum(info.file_size for info in infos)
        if declared > caps.max_inflated_bytes:
            raise Rejected(
                "FILE_TOO_LARGE",
                f"the .docx inflates to {declared} bytes; the limit is {caps.max_inflated_bytes}",
            )
        counts = _Counts(caps)
        for info in infos:
            if not info.filename.endswith((".xml", ".rels")):
                continue
            parser = etree.XMLParser(
                target=_NoTree(), resolve_entities=False, no_network=True, huge_tree=False
            )
            try:
                with archive.open(info) as part:
                    while chunk := part.read(256 * 1024):
                        counts.add(chunk)
                        parser.feed(chunk)
                parser.close()
            except (etree.LxmlError, zipfile.BadZipFile, EOFError, ValueError, KeyError):
                raise _bad_docx(f" (part {info.filename[:64]!r} is not well-formed)") from None


class _NoTree:
    """An lxml parser target that builds nothing; lxml calls only the methods it has."""

    def doctype(self, *_: object) -> None:
        raise _bad_docx(" (it declares a DTD, which Word never writes)")

    def close(self) -> None:
        return None


class _Counts:
    """Running totals over a package's XML parts, each checked against its cap."""

    # Word writes paragraphs as <w:p> (another prefix still counts as XML tags).
    _PARAGRAPHS = (b"<w:p>", b"<w:p ", b"<w:p/>")

    def __init__(self, caps: Caps) -> None:
        self.caps = caps
        self.inflated = 0
        self.tags = 0
        self.paragraphs = 0

    def add(self, chunk: bytes) -> None:
        self.inflated += len(chunk)
        if self.inflated > self.caps.max_inflated_bytes:
            raise Rejected(
                "FILE_TOO_LARGE",
                f"the .docx inflates to over {self.caps.max_inflated_bytes} bytes (the limit)",
            )
        # Every start, end or empty tag has a "<": a bound on elements.
        self.tags += chunk.count(b"<")
        if self.tags > self.caps.max_xml_tags:
            raise Rejected(
                "DOCUMENT_TOO_COMPLEX",
                f"the .docx has over {self.caps.max_xml_tags} XML tags (the limit)",
            )
        self.paragraphs += sum(chunk.count(p) for p in self._PARAGRAPHS)
        if self.paragraphs > self.caps.max_paragraphs:
            raise Rejected(
                "DOCUMENT_TOO_COMPLEX",
                f"the .docx has over {self.caps.max_paragraphs} paragraphs (the limit)",
            )


def _heading_level(style: str) -> int:
    """1-6 for Word's "Title" and "Heading N" styles, else 0."""
    if style == "Title":
        return 1
    match = re.fullmatch(r"Heading ([1-9])", style)
    return min(6, int(match.group(1))) if match else 0
