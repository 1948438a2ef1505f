"""Text out of uploaded files: plain text and Markdown here; HTML, PDF and Word .docx by real
parsers in a child process (ragline_ingest.extract_worker) that is killed at a time limit
and capped in memory, CPU priority and every size and count (ragline_ingest.parsing), so
one hostile upload cannot slow the service for other tenants.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from dataclasses import dataclass, field

from ragline_core import deadlines
from ragline_core.errors import (
    DeadlineExceededError,
    InternalError,
    InvalidArgumentError,
    RaglineError,
    ResourceExhaustedError,
    quoted,
)
from ragline_ingest.extract_worker import EXIT_OUT_OF_MEMORY
from ragline_ingest.parsing import Caps, Rejected, decode

log = logging.getLogger("ragline.ingest.extract")

SUPPORTED = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")
_IN_PROCESS = (".txt", ".md", ".markdown")
_CONTENT_TYPES = {
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/html": ".html",
    "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
}
# Seconds kept back from the request's deadline for the reply (and the job behind it).
_DEADLINE_MARGIN_S = 1.0


@dataclass(frozen=True)
class ExtractLimits:
    """UPLOAD_EXTRACT_* settings and the parse caps (MAX_DOCUMENT_CHARS among them)."""

    timeout_s: float = 10.0
    memory_bytes: int = 1024 * 2**20
    concurrency: int = 2
    niceness: int = 10
    caps: Caps = field(default_factory=Caps)


class _Extractor:
    def __init__(self, limits: ExtractLimits) -> None:
        self.limits = limits
        self.slots = asyncio.Semaphore(limits.concurrency)


_extractor = _Extractor(ExtractLimits())


def configure(limits: ExtractLimits) -> None:
    """Sets the limits (at start-up, from IngestSettings)."""
    global _extractor
    _extractor = _Extractor(limits)


def kind_of(filename: str, content_type: str) -> str:
    """The parser to use: by extension first, then by content type."""
    lowered = filename.lower()
    for ext in SUPPORTED:
        if lowered.endswith(ext):
            return ext
    kind = _CONTENT_TYPES.get(content_type.split(";")[0].strip().lower())
    if kind is None:
        raise InvalidArgumentError(
            f"unsupported file type {quoted(filename or content_type)}; supported: "
            + ", ".join(SUPPORTED),
            reason="UNSUPPORTED_FILE_TYPE",
            field="filename",
        )
    return kind


def _rejected(reason: str, message: str) -> InvalidArgumentError:
    return InvalidArgumentError(message, reason=reason, field="file")


async def extract_file(data: bytes, kind: str) -> str:
    """The file's text; a 400 naming the limit when the file is over one."""
    extractor = _extractor
    limits = extractor.limits
    if kind in _IN_PROCESS:
        try:
            text = decode(data)
        except Rejected as exc:
            raise _rejected(exc.reason, exc.message) from None
        if len(text) > limits.caps.max_chars:
            raise _rejected(
                "DOCUMENT_TOO_LARGE",
                f"the file's text is {len(text)} characters; the limit is {limits.caps.max_chars}",
            )
        return text
    # Time left before the request's deadline, less the reply's share (no deadline: the
    # time limit alone counts).
    deadline = time.monotonic() + deadlines.remaining(float("inf")) - _DEADLINE_MARGIN_S
    try:
        async with asyncio.timeout(max(min(deadline - time.monotonic(), limits.timeout_s), 0)):
            await extractor.slots.acquire()
    except TimeoutError:
        raise ResourceExhaustedError(
            f"{limits.concurrency} uploads are being read already; retry shortly",
            reason="EXTRACTION_BUSY",
        ) from None
    try:
        left = deadline - time.monotonic()
        timeout_s = max(min(left, limits.timeout_s), 0.0)
        return await _run_child(data, kind, limits, timeout_s, left < limits.timeout_s)
    finally:
        extractor.slots.release()


async def _run_child(
    data: bytes, kind: str, limits: ExtractLimits, timeout_s: float, deadline_bound: bool
) -> str:
    settings = {
        "memory_bytes": limits.memory_bytes,
        "cpu_s": max(1, int(limits.timeout_s) + 1),
        "niceness": limits.niceness,
        "caps": limits.caps.to_dict(),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ragline_ingest.extract_worker",
        kind,
        json.dumps(settings),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout_s):
            out, err = await proc.communicate(data)
    except TimeoutError:
        raise _too_slow(limits, timeout_s, deadline_bound) from None
    finally:
        if proc.returncode is None:  # timed out or cancelled: the child goes too
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    if err:
        log.warning("extraction child: %s", err.decode(errors="replace")[-2000:])
    return _answer(proc.returncode, out, kind, limits, timeout_s, deadline_bound)


def _answer(
    code: int | None,
    out: bytes,
    kind: str,
    limits: ExtractLimits,
    timeout_s: float,
    deadline_bound: bool,
) -> str:
    if code == 0:
        answer = json.loads(out)
        if "text" in answer:
            return str(answer["text"])
        raise _rejected(str(answer["reason"]), str(answer["message"]))
    if code == -signal.SIGXCPU:
        raise _too_slow(limits, timeout_s, deadline_bound)
    if code == EXIT_OUT_OF_MEMORY or code == -signal.SIGKILL:
        raise _rejected(
            "DOCUMENT_TOO_COMPLEX",
            f"parsing the file needs over {limits.memory_bytes // 2**20} MiB of memory "
            "(the limit, UPLOAD_EXTRACT_MEMORY_MB)",
        )
    log.error("extraction child for a %s file exited with %s", kind, code)
    raise InternalError("the file's text could not be extracted", reason="EXTRACTION_FAILED")


def _too_slow(limits: ExtractLimits, timeout_s: float, deadline_bound: bool) -> RaglineError:
    if deadline_bound:
        return DeadlineExceededError(
            f"the request's deadline passed while the file was read ({timeout_s:.1f} s)"
        )
    return _rejected(
        "EXTRACTION_TIMEOUT",
        f"extracting the file's text took over {limits.timeout_s:g} s "
        "(the limit, UPLOAD_EXTRACT_TIMEOUT_S)",
    )
