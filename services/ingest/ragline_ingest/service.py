"""Ingest domain logic: validate documents, derive stable ids, run them as a job
(inline when small), and turn each document into embedded chunks atomically."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError
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
from ragline_core.errors import InvalidArgumentError, RaglineError
from ragline_core.model_files import find_model_dir
from ragline_ingest.chunking import ChunkingConfig, chunk_text
from ragline_ingest.jobs import Item, JobRunner, JobStore, Outcome
from ragline_ingest.store import ChunkRecord, CorpusWriter

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
    ) -> None:
        self.db = db
        self.writer = writer
        self.jobs = jobs
        self.embedder = embedder
        self.feed = feed
        self.chunking = chunking
        self.limits = limits
        self.default_model = default_model
        self.count_tokens = TokenCounter()
        self.runner: JobRunner | None = None

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
        self, tenant: str, collection: str, documents: list[DocumentInput], model_name: str
    ) -> tuple[Accepted, bool]:
        """Stores the job; returns it and whether it should run inline (small request)."""
        self.validate(collection, documents)
        model = await self._model_for(tenant, collection, model_name)
        await self.writer.ensure_collection(tenant, collection, model.name, model.dimensions)
        job_id = uuid.uuid4().hex
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
        """Chunks and embeds a batch of documents together, then writes each atomically."""
        tenant, collection, model = job["tenant"], job["collection"], job["embedding_model"]
        outcomes: dict[int, Outcome] = {}
        work: list[tuple[Item, list[Any]]] = []
        for item in items:
            if (
                await self.writer.existing_hash(tenant, collection, item.document_id)
                == item.content_hash
            ):
                outcomes[item.index] = Outcome("unchanged")
                continue
            chunks = chunk_text(item.content, self.chunking, self.count_tokens)
            if not chunks:
                outcomes[item.index] = Outcome("failed", error="no text to index")
                continue
            work.append((item, chunks))
        texts = [_embedding_text(item.title, c.text) for item, chunks in work for c in chunks]
        if texts:
            try:
                vectors, used_model, _ = await self.embedder.embed(tenant, model, texts)
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
            offset = 0
            for item, chunks in work:
                records = [
                    ChunkRecord(c.index, c.text, c.headings, c.token_count, vectors[offset + j])
                    for j, c in enumerate(chunks)
                ]
                offset += len(chunks)
                outcomes[item.index] = await self._write(tenant, collection, item, records)
        return [outcomes[item.index] for item in items]

    async def _write(
        self, tenant: str, collection: str, item: Item, records: list[ChunkRecord]
    ) -> Outcome:
        try:
            generation = await self.writer.replace_document(
                tenant,
                collection,
                item.document_id,
                item.title,
                item.content,
                item.metadata,
                item.content_hash,
                records,
            )
        except PyMongoError:
            # This document fails alone (its previous version, if any, stays whole); the
            # job goes on with the others.
            log.warning(
                "document write failed", exc_info=True, extra={"document_id": item.document_id}
            )
            return Outcome("failed", error="storage error while writing the document")
        if generation is None:
            return Outcome("unchanged")  # a concurrent ingest of the same document won
        await self.announce(Change("upsert", tenant, collection, item.document_id, generation, 0))
        return Outcome("done", chunks=len(records))

    async def announce(self, change: Change) -> None:
        """Bumps the collection version, then tells retrievers (best effort)."""
        version = await bump_version(self.db, change.tenant, change.collection)
        try:
            await self.feed.publish(
                Change(
                    change.op,
                    change.tenant,
                    change.collection,
                    change.document_id,
                    change.generation,
                    version,
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
