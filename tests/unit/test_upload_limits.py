"""Upload extraction: every cap while parsing, and the child process's limits."""

from __future__ import annotations

import signal
import time

import pytest

from ragline_core.errors import InternalError, InvalidArgumentError, RaglineError
from ragline_ingest import extract
from ragline_ingest.extract_worker import EXIT_OUT_OF_MEMORY
from ragline_ingest.parsing import Caps, Rejected, parse
from tests.support.documents import docx_with, pdf_with_text
from tests.support.hostile_files import (
    BLANK_TEXT_OP,
    docx_billion_laughs,
    docx_paragraph_bomb,
    pdf_heavy_content,
)

MEMO = docx_with("Memo", ["First paragraph.", "Second paragraph."], [["a", "b"]])


@pytest.mark.parametrize(
    ("data", "kind", "caps", "reason", "needle"),
    [
        (MEMO, ".docx", Caps(max_paragraphs=2), "DOCUMENT_TOO_COMPLEX", "over 2 paragraphs"),
        (MEMO, ".docx", Caps(max_parts=3), "DOCUMENT_TOO_COMPLEX", "the limit is 3"),
        (MEMO, ".docx", Caps(max_xml_tags=50), "DOCUMENT_TOO_COMPLEX", "over 50 XML tags"),
        (MEMO, ".docx", Caps(max_inflated_bytes=10_000), "FILE_TOO_LARGE", "limit is 10000"),
        (MEMO, ".docx", Caps(max_chars=20), "DOCUMENT_TOO_LARGE", "over 20 characters"),
        (docx_billion_laughs(), ".docx", Caps(), "BAD_DOCX", "DTD"),
        (docx_paragraph_bomb(), ".docx", Caps(), "DOCUMENT_TOO_COMPLEX", "100000 paragraphs"),
        (pdf_heavy_content(), ".pdf", Caps(), "DOCUMENT_TOO_COMPLEX", "5242875 bytes"),
        (
            pdf_heavy_content(400_000, 3),
            ".pdf",
            Caps(max_pages=2),
            "DOCUMENT_TOO_COMPLEX",
            "3 pages",
        ),
        (
            pdf_heavy_content(400_000, 3),
            ".pdf",
            Caps(max_content_bytes=700_000),
            "DOCUMENT_TOO_COMPLEX",
            "by page 2",
        ),
        (b"%PDF-1.4 not really", ".pdf", Caps(), "BAD_PDF", "readable PDF"),
        (b"\xff\xfe<html>", ".html", Caps(), "BAD_FILE_ENCODING", "UTF-8"),
    ],
)
def test_each_cap_is_a_rejection_naming_it(data, kind, caps, reason, needle):
    started = time.monotonic()
    with pytest.raises(Rejected) as caught:
        parse(data, kind, caps)
    assert caught.value.reason == reason and needle in caught.value.message
    assert time.monotonic() - started < 5


def test_files_within_the_caps_are_read():
    assert parse(MEMO, ".docx", Caps()).startswith("# Memo\n\nFirst paragraph.")
    assert "Moraines" in parse(pdf_with_text(["Moraines mark edges."]), ".pdf", Caps())


@pytest.mark.parametrize(
    ("code", "error", "reason"),
    [
        (EXIT_OUT_OF_MEMORY, InvalidArgumentError, "DOCUMENT_TOO_COMPLEX"),
        (-signal.SIGKILL, InvalidArgumentError, "DOCUMENT_TOO_COMPLEX"),
        (-signal.SIGXCPU, InvalidArgumentError, "EXTRACTION_TIMEOUT"),
        (-signal.SIGSEGV, InternalError, "EXTRACTION_FAILED"),
    ],
)
def test_how_the_child_ended_is_the_answer(code, error, reason):
    with pytest.raises(RaglineError) as caught:
        extract._answer(code, b"", ".pdf", extract.ExtractLimits(), 10.0, False)
    assert type(caught.value) is error and caught.value.reason == reason


async def test_the_child_reads_the_file_and_is_killed_at_the_time_limit():
    extract.configure(extract.ExtractLimits(timeout_s=2.0, concurrency=1, caps=Caps(max_chars=100)))
    try:
        text = await extract.extract_file(MEMO, ".docx")
        assert "Second paragraph." in text
        started = time.monotonic()
        with pytest.raises(InvalidArgumentError) as caught:
            await extract.extract_file(pdf_heavy_content(1000 * 1024, 20, BLANK_TEXT_OP), ".pdf")
        assert caught.value.reason == "EXTRACTION_TIMEOUT"
        assert time.monotonic() - started < 4
        with pytest.raises(InvalidArgumentError) as caught:  # plain text: read in-process
            await extract.extract_file("é".encode() * 101, ".txt")
        assert caught.value.reason == "DOCUMENT_TOO_LARGE"
    finally:
        extract.configure(extract.ExtractLimits())
