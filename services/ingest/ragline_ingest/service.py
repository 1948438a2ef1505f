"""Ingest domain logic: validate documents, derive stable ids, run them as a job
(inline when small), and turn each document into embedded chunks atomically."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from tokenizers import Tokenizer

from ragline_core import embedding_models
from ragline_core.changefeed import Change, ChangeFeed
from ragline_core.corpus import (
    bump_version,
    check_collection_name,
    check_document_id,
    get_collection,
)
from ragline_core.embedder_client import EmbedderClient
from ragline_core.errors import (
    DeadlineExceededError,
    InvalidArgumentError,
    RaglineError,
    UnavailableError,
)
from ragline_core.model_files import find_model_dir
from ragline_core.retry import RetryPolicy
from ragline_ingest.chunking import Chunk, ChunkingConfig, chunk_text
from ragline_ingest.jobs import Item, JobRunner, JobStore, Outcome
from ragline_ingest.store import ChunkRecord, CorpusWriter, DocumentWrite

log = logging.getLogger("ragline.ingest")

Doc = dict[str, Any]


@dataclass(frozen=True)
class DocumentInput:
    title: str
    content: str
    metadata: dict[str, Any]
    document_id: str = ""


@dataclass(frozen=True)
class Limits:
    max_documents: int
    max_document_chars: int
    max_title_chars: int
    max_metadata_bytes: int
    sync_max_documents: int


@dataclass(frozen=True)
class Accepted:
    document_ids: list[str]
    job_id: str


def content_hash(title: str, content: str, metadata: dict[str, Any]) -> str:
    canonical = json.dumps(metadata, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{title}\0{content}\0{canonical}".encode()).hexdigest()


def derived_id(collection: str, content: str) -> str:
    """A stable id from the collection and the content: the same text gets the same id."""
    return hashlib.sha256(f"{collection}\0{content}".encode()).hexdigest()[:32]


class TokenCounter:
    """Counts tokens with the local model's WordPiece tokenizer (no truncation)."""

    def __init__(self) -> None:
        self.tokenizer = Tokenizer.from_file(str(find_model_dir() / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()

    def __call__(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)


async def embed_with_retries(
    embedder: EmbedderClient, policy: RetryPolicy, tenant: str, model: str, texts: list[str]
) -> tuple[Any, str, int]:
    """A job's embedder call, tried again (with jittered backoff) while the embedder is busy
    or restarting: a transient timeout or outage must not fail accepted documents for good
    (found by the fault battery: jobs queued behind a busy embedder failed whole). A paid
    provider's failure (reason PROVIDER_*) is final here: the embedder has already spent its
    own retry budget on it, and retrying again would multiply the provider's attempts."""
    attempt = 0
    while True:
        try:
            return await embedder.embed(tenant, model, texts)
        except (DeadlineExceededError, UnavailableError) as exc:
            attempt += 1
            if attempt >= policy.attempts or exc.reason.startswith("PROVIDER_"):
                raise
            log.warning(
                "embedder call failed; retrying",
                extra={"attempt": attempt, "error": exc.message},
            )
            await asyncio.sleep(policy.delay(attempt))


class IngestService:
    def __init__(
        self,
        db: AsyncDatabase[Doc],
        writer: CorpusWriter,
        jobs: JobStore,
        embedder: EmbedderClient,
        feed: ChangeFeed,
        chunking: ChunkingConfig,
        limits: Limits,
        default_model: str,
        embed_retry: RetryPolicy | None = None,
    ) -> None:
        self.db = db
        self.embed_retry = embed_retry or RetryPolicy(attempts=1)
        self.writer = writer
        self.jobs = jobs
        self.embedder = embedder
        self.feed = feed
        self.chunking = chunking
        self.limits = limits
        self.default_model = default_model
        self.count_tokens = TokenCounter()
        self.runner: JobRunner | None = None
        self._version_lock = asyncio.Lock()

    # -- requests -------------------------------------------------------------------
    def validate(self, collection: str, documents: list[DocumentInput]) -> None:
        check_collection_name(collection)
        if not documents:
            raise InvalidArgumentError("documents must not be empty", field="documents")
        if len(documents) > self.limits.max_documents:
            raise InvalidArgumentError(
                f"documents has {len(documents)} entries; at most "
                f"{self.limits.max_documents} per request",
                reason="TOO_MANY_DOCUMENTS",
                field="documents",
            )
        seen: set[str] = set()
        for i, doc in enumerate(documents):
            where = f"documents[{i}]"
            if not doc.content.strip():
                raise InvalidArgumentError(
                    f"{where}.content must not be empty",
                    reason="EMPTY_CONTENT",
                    field=f"{where}.content",
                )
            if len(doc.content) > self.limits.max_document_chars:
                raise InvalidArgumentError(
                    f"{where}.content is {len(doc.content)} characters; the limit is "
                    f"{self.limits.max_document_chars}",
                    reason="DOCUMENT_TOO_LARGE",
                    field=f"{where}.content",
                )
            if len(doc.title) > self.limits.max_title_chars:
                raise InvalidArgumentError(
                    f"{where}.title is longer than {self.limits.max_title_chars} characters",
                    reason="TITLE_TOO_LONG",
                    field=f"{where}.title",
                )
            size = len(json.dumps(doc.metadata, default=str))
            if size > self.limits.max_metadata_bytes:
                raise InvalidArgumentError(
                    f"{where}.metadata is {size} bytes; the limit is "
                    f"{self.limits.max_metadata_bytes}",
                    reason="METADATA_TOO_LARGE",
                    field=f"{where}.metadata",
                )
            _check_metadata_keys(doc.metadata, f"{where}.metadata")
            if doc.document_id:
                check_document_id(doc.document_id, f"{where}.id")
                if doc.document_id in seen:
                    raise InvalidArgumentError(
                        f"{where}.id {doc.document_id!r} is repeated",
                        reason="DUPLICATE_DOCUMENT_ID",
                        field=f"{where}.id",
                    )
                seen.add(doc.document_id)

    async def ingest(
        self,
        tenant: str,
        collection: str,
        documents: list[DocumentInput],
        model_name: str,
        job_id: str = "",
    ) -> tuple[Accepted, bool]:
        """Stores the job; returns it and whether the caller should wait for it (small
        request). `job_id` is given when an Idempotency-Key already names it."""
        self.validate(collection, documents)
        model = await self._model_for(tenant, collection, model_name)
        await self.writer.ensure_collection(tenant, collection, model.name, model.dimensions)
        job_id = job_id or uuid.uuid4().hex
        items = []
        for i, doc in enumerate(documents):
            doc_id = doc.document_id or derived_id(collection, doc.content)
            items.append(
                Item(
                    job_id,
                    i,
                    doc_id,
                    doc.title,
                    doc.content,
                    doc.metadata,
                    content_hash(doc.title, doc.content, doc.metadata),
                )
            )
        await self.jobs.create(tenant, collection, model.name, items)
        inline = len(documents) <= self.limits.sync_max_documents
        return Accepted([i.document_id for i in items], job_id), inline

    async def _model_for(
        self, tenant: str, collection: str, requested: str
    ) -> embedding_models.ModelSpec:
        if not requested:
            try:
                existing = await get_collection(self.db, tenant, collection)
                requested = existing.embedding_model
            except RaglineError:
                requested = self.default_model
        try:
            return embedding_models.resolve(requested)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(
                exc.message.replace("model", "embedding_model", 1),
                reason=exc.reason,
                field="embedding_model",
            ) from None

    # -- job work ---------------------------------------------------------------------
    async def process_batch(self, job: Doc, items: list[Item]) -> list[Outcome]:
        """Chunks and embeds a batch of documents together, then writes each atomically.

        The batch costs the database a handful of round trips plus one write per document,
        and the change feed one version bump: ingest keeps pace with the embedder.
        """
        tenant, collection, model = job["tenant"], job["collection"], job["embedding_model"]
        outcomes: dict[int, Outcome] = {}
        stored = await self.writer.existing(tenant, collection, [i.document_id for i in items])
        changed = []
        for item in items:
            previous = stored.get(item.document_id)
            if previous is not None and previous.content_hash == item.content_hash:
                outcomes[item.index] = Outcome("unchanged")
            else:
                changed.append(item)
        # Tokenising large documents takes a while: keep the event loop free meanwhile.
        chunked = await asyncio.to_thread(
            lambda: [chunk_text(i.content, self.chunking, self.count_tokens) for i in changed]
        )
        work: list[tuple[Item, list[Chunk]]] = []
        for item, chunks in zip(changed, chunked, strict=True):
            if chunks:
                work.append((item, chunks))
            else:
                outcomes[item.index] = Outcome("failed", error="no text to index")
        texts = [_embedding_text(item.title, c.text) for item, chunks in work for c in chunks]
        if texts:
            try:
                vectors, used_model, _ = await embed_with_retries(
                    self.embedder, self.embed_retry, tenant, model, texts
                )
                if used_model != model:
                    raise InvalidArgumentError(
                        f"the embedder answered with {used_model!r} instead of {model!r}"
                    )
            except RaglineError as exc:
                for item, _ in work:
                    outcomes[item.index] = Outcome(
                        "failed", error=f"embedding failed: {exc.message}"
                    )
                work = []
            writes, offset = [], 0
            for item, chunks in work:
                previous = stored.get(item.document_id)
                records = [
                    ChunkRecord(c.index, c.text, c.headings, c.token_count, vectors[offset + j])
                    for j, c in enumerate(chunks)
                ]
                offset += len(chunks)
                writes.append(
                    DocumentWrite(
                        item.document_id,
                        item.title,
                        item.content,
                        item.metadata,
                        item.content_hash,
                        records,
                        None if previous is None else previous.generation,
                    )
                )
            if writes:
                outcomes.update(
                    await self._write(tenant, collection, [item for item, _ in work], writes)
                )
        return [outcomes[item.index] for item in items]

    async def _write(
        self,
        tenant: str,
        collection: str,
        items: list[Item],
        writes: list[DocumentWrite],
    ) -> dict[int, Outcome]:
        results = await self.writer.replace_documents(tenant, collection, writes)
        outcomes: dict[int, Outcome] = {}
        changes = []
        for item, write, result in zip(items, writes, results, strict=True):
            if isinstance(result, Exception):
                # This document fails alone (its previous version, if any, stays whole);
                # the job goes on with the others.
                log.warning(
                    "document write failed",
                    exc_info=result,
                    extra={"document_id": item.document_id},
                )
                outcomes[item.index] = Outcome(
                    "failed", error="storage error while writing the document"
                )
            elif result is None:
                outcomes[item.index] = Outcome("unchanged")  # a concurrent ingest won
            else:
                changes.append(
                    Change(
                        "upsert", tenant, collection, item.document_id, result, 0, len(write.chunks)
                    )
                )
                outcomes[item.index] = Outcome("done", chunks=len(write.chunks))
        await self.announce(*changes)
        return outcomes

    async def announce(self, *changes: Change) -> None:
        """Bumps each collection's version once, then tells retrievers (best effort).

        Each entry carries its version and how many entries share it, so a replica can tell
        a version it applied in full from one whose entries were lost (see changefeed)."""
        versions: dict[tuple[str, str], int] = {}
        batches = Counter((c.tenant, c.collection) for c in changes)
        for key in batches:
            # The database's $inc is atomic per document; the lock only keeps this
            # process's bumps from queueing up behind each other on one collection.
            async with self._version_lock:
                versions[key] = await bump_version(self.db, *key)
        try:
            await self.feed.publish(
                *(
                    dataclasses.replace(
                        c,
                        version=versions[(c.tenant, c.collection)],
                        batch=batches[(c.tenant, c.collection)],
                    )
                    for c in changes
                )
            )
        except Exception:
            log.warning("change feed unavailable; retrievers will reload from the database")


def _embedding_text(title: str, text: str) -> str:
    return f"{title}\n{text}" if title else text


def _check_metadata_keys(value: Any, where: str) -> None:
    """Metadata keys are plain names: no operators or paths that could confuse filters."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if not key or key.startswith("$") or "." in key or len(key) > 128:
                raise InvalidArgumentError(
                    f"{where} key {key!r} is not allowed (no '$' prefix, no '.', 1-128 chars)",
                    reason="BAD_METADATA_KEY",
                    field=where,
                )
            _check_metadata_keys(inner, f"{where}.{key}")
    elif isinstance(value, list):
        for inner in value:
            _check_metadata_keys(inner, where)
