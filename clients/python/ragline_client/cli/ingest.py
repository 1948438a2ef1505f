"""`ragline ingest`: files and folders into a collection, with a live progress bar fed by
each job's watch stream.

Plain-text files (.txt, .md, .markdown) are read here and sent in batches, one job per
batch, so a folder of notes is a few requests; the other formats (HTML, PDF, DOCX) are
uploaded one by one so the server extracts their text. Each document's id comes from its
path under the folder, so ingesting the same folder again updates the documents (unchanged
ones are counted, not re-embedded) instead of adding copies."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ragline_client import _core as core
from ragline_client import models as m
from ragline_client.client import Client
from ragline_client.errors import InvalidArgumentError, RaglineError, RequestTooLargeError

from .exits import error_line

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
# Under the gateway's smallest body cap in use (1 MiB), with room for JSON escaping.
BATCH_BYTES = 512 * 1024
BATCH_DOCUMENTS = 100
_DOC_ID_OK = re.compile(r"[^A-Za-z0-9_.:-]")
_VIOLATION_INDEX = re.compile(r"^documents\[(\d+)\]")
_VIOLATION_PREFIX = re.compile(r"documents\[\d+\]\.")


@dataclass
class FileItem:
    path: Path
    name: str  # the path under the folder given (the document's title)
    document_id: str
    error: str = ""


@dataclass
class JobRun:
    job_id: str
    files: list[FileItem]
    job: m.Job | None = None

    @property
    def finished(self) -> bool:
        return self.job is not None and self.job.finished


@dataclass
class IngestRun:
    collection: str
    files: list[FileItem]
    jobs: list[JobRun] = field(default_factory=list)
    # Files the API refused before any job (bad encoding, too large, ...).
    refused: list[FileItem] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        done = unchanged = failed = chunks = 0
        for run in self.jobs:
            job = run.job
            if job is None:
                continue
            done += job.documents_done
            unchanged += job.documents_unchanged
            chunks += job.chunks_done
            failed += _failed_of(job, len(run.files))
        failed += len(self.refused)
        return {
            "files": len(self.files),
            "documents_done": done,
            "documents_unchanged": unchanged,
            "documents_failed": failed,
            "chunks": chunks,
        }

    def failures(self) -> list[tuple[str, str]]:
        """(file, why) for each document that did not make it."""
        rows = [(f.name, f.error) for f in self.refused]
        for run in self.jobs:
            job = run.job
            if job is None:
                continue
            named = set()
            for e in job.errors:
                item = run.files[e.index] if 0 <= e.index < len(run.files) else None
                rows.append((item.name if item else e.document_id, e.message))
                named.add(e.index)
            if job.state is m.JobState.FAILED and len(named) < _failed_of(job, len(run.files)):
                reason = job.failure_reason or "the job failed"
                rows.extend((f.name, reason) for i, f in enumerate(run.files) if i not in named)
        return rows


def _failed_of(job: m.Job, files: int) -> int:
    if job.state is m.JobState.FAILED:
        # A job that failed as a whole stored none of the documents it had not finished.
        # (documents_done counts the unchanged ones too.)
        total = job.documents_total or files
        return max(job.documents_failed, total - job.documents_done)
    return job.documents_failed


def document_id_of(name: str) -> str:
    """A stable document id from a file's path under the folder (`notes/a b.md` ->
    `notes:a_b.md-<hash>`): letters, digits, '_', '.', ':' and '-', at most 128."""
    readable = name.replace(os.sep, ":").replace("/", ":")
    clean = _DOC_ID_OK.sub("_", readable)
    if clean != readable or len(clean) > 128:
        # Two paths may clean to the same id: a hash of the path keeps them apart.
        digest = hashlib.sha256(name.encode()).hexdigest()[:10]
        clean = f"{clean[:117]}-{digest}"
    return clean


def collect(paths: Sequence[Path], patterns: Sequence[str], recursive: bool) -> list[FileItem]:
    """The files to ingest: each file given, and each folder's files matching `patterns`."""
    items: dict[str, FileItem] = {}
    for path in paths:
        if path.is_dir():
            for found in core.folder_files(str(path), patterns, recursive):
                name = Path(found).relative_to(path).as_posix()
                items.setdefault(found, FileItem(Path(found), name, document_id_of(name)))
        else:
            items.setdefault(str(path), FileItem(path, path.name, document_id_of(path.name)))
    return list(items.values())


def _batches(docs: list[tuple[FileItem, m.DocumentInput]]) -> list[list[Any]]:
    batches: list[list[tuple[FileItem, m.DocumentInput]]] = [[]]
    size = 0
    for item, doc in docs:
        doc_size = len(json.dumps(doc.to_json()))
        current = batches[-1]
        if current and (len(current) >= BATCH_DOCUMENTS or size + doc_size > BATCH_BYTES):
            batches.append([])
            size = 0
        batches[-1].append((item, doc))
        size += doc_size
    return [b for b in batches if b]


class Ingester:
    """Submits the files, then watches each job; `on_change` runs after every step."""

    def __init__(
        self,
        client: Client,
        run: IngestRun,
        *,
        embedding_model: str | None,
        on_change: Callable[[IngestRun], None],
    ) -> None:
        self.client = client
        self.run = run
        self.embedding_model = embedding_model
        self.on_change = on_change

    def submit(self) -> None:
        texts: list[tuple[FileItem, m.DocumentInput]] = []
        uploads: list[FileItem] = []
        for item in self.run.files:
            if item.path.suffix.lower() in TEXT_SUFFIXES:
                try:
                    content = item.path.read_bytes().decode("utf-8-sig")
                except UnicodeDecodeError:
                    uploads.append(item)  # the server names the encoding problem
                    continue
                metadata = {"filename": item.path.name}
                doc = m.DocumentInput(content, item.name, metadata, item.document_id)
                texts.append((item, doc))
            else:
                uploads.append(item)
        # Batches first: their jobs run on the server while the uploads go up.
        for batch in _batches(texts):
            self._ingest_batch(batch)
        for item in uploads:
            self._upload(item)

    def _ingest_batch(self, batch: list[tuple[FileItem, m.DocumentInput]]) -> None:
        while batch:
            try:
                result = self.client.ingest(
                    self.run.collection,
                    [doc for _, doc in batch],
                    embedding_model=self.embedding_model,
                )
            except (InvalidArgumentError, RequestTooLargeError) as err:
                # The API names the first document it refuses: drop it and send the rest.
                index = _refused_index(err, len(batch))
                if index is None:
                    if isinstance(err, RequestTooLargeError) and len(batch) > 1:
                        half = len(batch) // 2
                        self._ingest_batch(batch[:half])
                        batch = batch[half:]
                        continue
                    raise
                item, _ = batch.pop(index)
                item.error = _file_error(err)
                self.run.refused.append(item)
                self.on_change(self.run)
                continue
            self.run.jobs.append(JobRun(result.job_id, [item for item, _ in batch], result.job))
            self.on_change(self.run)
            return

    def _upload(self, item: FileItem) -> None:
        try:
            result = self.client.upload_file(
                self.run.collection,
                item.path,
                filename=item.path.name,
                title=item.name,
                document_id=item.document_id,
                embedding_model=self.embedding_model,
            )
        except (InvalidArgumentError, RequestTooLargeError) as err:
            item.error = _file_error(err)
            self.run.refused.append(item)
        else:
            self.run.jobs.append(JobRun(result.job_id, [item], result.job))
        self.on_change(self.run)

    def watch(self) -> None:
        for run in self.run.jobs:
            if run.finished:
                continue

            def seen(job: m.Job, run: JobRun = run) -> None:
                run.job = job
                self.on_change(self.run)

            # The SDK resumes a watch that breaks off (a quiet job past the read timeout).
            seen(self.client.wait_for_job(run.job_id, on_progress=seen))


def _file_error(err: RaglineError) -> str:
    # The row names the file: "documents[3].content ..." -> "content ...".
    return _VIOLATION_PREFIX.sub("", error_line(err).removeprefix("error: "))


def _refused_index(err: RaglineError, size: int) -> int | None:
    for v in err.field_violations:
        found = _VIOLATION_INDEX.match(v.field)
        if found and int(found.group(1)) < size:
            return int(found.group(1))
    if size == 1:
        return 0
    return None


class ProgressView:
    """The live bar on a terminal: documents handled of the files found, failed, chunks,
    elapsed and ETA; one frame per job update (Rich also redraws it on its own timer)."""

    def __init__(self, progress: Progress, collection: str, total: int) -> None:
        self.progress = progress
        self.task: TaskID = progress.add_task(
            f"ingest → {collection}", total=total or 1, failed=0, chunks=0, jobs=0
        )

    @staticmethod
    def make(console: Any) -> Progress:
        return Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f} documents"),
            TextColumn("[red]{task.fields[failed]} failed"),
            TextColumn("{task.fields[chunks]} chunks"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )

    def update(self, run: IngestRun) -> None:
        t = run.totals()
        handled = t["documents_done"] + t["documents_failed"]  # done includes unchanged
        self.progress.update(
            self.task,
            completed=handled,
            failed=t["documents_failed"],
            chunks=t["chunks"],
            jobs=len(run.jobs),
            refresh=True,
        )


def elapsed_since(start: float) -> str:
    return f"{time.monotonic() - start:.1f}s"
