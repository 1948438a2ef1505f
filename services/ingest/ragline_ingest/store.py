"""Ingest's writes to the corpus (see ragline_core.corpus for the layout) and its jobs.

Every write is a single-document atomic operation, so the same code runs on FerretDB,
MongoDB and Atlas without transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from bson.binary import Binary, BinaryVectorDtype
from pymongo import DeleteOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from ragline_core.corpus import (
    CHUNKS,
    COLLECTIONS,
    DOCUMENTS,
    CollectionInfo,
    chunk_key,
    chunk_keys,
    collection_key,
    document_key,
    get_collection,
)
from ragline_core.errors import ConflictError

log = logging.getLogger("ragline.ingest.store")

JOBS = "ingest_jobs"
JOB_ITEMS = "ingest_job_items"
IDEMPOTENCY = "ingest_idempotency"

Doc = dict[str, Any]


def now() -> datetime:
    return datetime.now(UTC)


_last_generation = 0


def new_generation() -> int:
    """Unique, increasing generation numbers (microseconds), safe across re-created names;
    strictly increasing within a process even when called within one microsecond."""
    global _last_generation
    _last_generation = max(_last_generation + 1, time.time_ns() // 1000)
    return _last_generation


@dataclass(frozen=True)
class ChunkRecord:
    index: int
    text: str
    headings: tuple[str, ...]
    token_count: int
    vector: npt.NDArray[np.float32]


@dataclass(frozen=True)
class Stored:
    """What the database holds of a document before a write."""

    content_hash: str
    generation: int


@dataclass(frozen=True)
class DocumentWrite:
    """A document's new version; `previous` is the generation it replaces (None: new)."""

    document_id: str
    title: str
    content: str
    metadata: dict[str, Any]
    content_hash: str
    chunks: list[ChunkRecord]
    previous: int | None


class CorpusWriter:
    def __init__(self, db: AsyncDatabase[Doc], bson_vectors: bool = False) -> None:
        self.db = db
        # Atlas Vector Search reads vectors as BSON float32 vectors (field `embedding`).
        self.bson_vectors = bson_vectors

    async def ensure_collection(
        self, tenant: str, name: str, model: str, dimensions: int
    ) -> CollectionInfo:
        """Creates the collection on first use; a different model is a 409."""
        key = collection_key(tenant, name)
        # A concurrent creation may win the upsert: fine, the comparison below still holds.
        with contextlib.suppress(DuplicateKeyError):
            await self.db[COLLECTIONS].update_one(
                {"_id": key},
                {
                    "$setOnInsert": {
                        "tenant": tenant,
                        "name": name,
                        "embedding_model": model,
                        "dimensions": dimensions,
                        # Starts from the clock, not 0: a collection deleted and created
                        # again never repeats a version that caches and replicas saw.
                        "version": new_generation(),
                        "created_at": now(),
                    }
                },
                upsert=True,
            )
        info = await get_collection(self.db, tenant, name)
        if info.embedding_model != model:
            raise ConflictError(
                f"collection {name!r} uses embedding model {info.embedding_model!r}; "
                f"ingesting with {model!r} would mix vector spaces",
                reason="EMBEDDING_MODEL_MISMATCH",
                metadata={"collection_model": info.embedding_model, "requested_model": model},
            )
        return info

    async def existing(
        self, tenant: str, collection: str, document_ids: list[str]
    ) -> dict[str, Stored]:
        """Content hash and generation of those documents that exist."""
        # One lookup per _id, concurrently: FerretDB's SQLite backend serves only an `_id`
        # equality from an index (`$in` reads the whole table).
        docs = await asyncio.gather(
            *(
                self.db[DOCUMENTS].find_one(
                    {"_id": document_key(tenant, collection, d)},
                    {"document_id": 1, "content_hash": 1, "generation": 1},
                )
                for d in document_ids
            )
        )
        return {
            d["document_id"]: Stored(str(d.get("content_hash")), int(d["generation"]))
            for d in docs
            if d is not None
        }

    async def replace_documents(
        self, tenant: str, collection: str, writes: list[DocumentWrite]
    ) -> list[int | Exception | None]:
        """Writes the documents' new chunks, then flips each document to them atomically.

        One insert for the chunks of the whole batch (new chunks are invisible until their
        document flips), one write per document, then one delete of the chunks that no
        document points at any more. Per document: the new generation, None when a
        concurrent writer won the flip (its version stays; ours is removed), or the storage
        error that failed it alone.
        """
        generations = [new_generation() for _ in writes]
        records = [
            self._chunk_record(tenant, collection, w, generation, c)
            for w, generation in zip(writes, generations, strict=True)
            for c in w.chunks
        ]
        garbage: list[str] = []
        try:
            if records:
                await self.db[CHUNKS].insert_many(records, ordered=False)
        except PyMongoError:
            # Which documents lost chunks is unclear: write them one by one instead.
            await self._drop([r["_id"] for r in records])
            return [await self._replace_alone(tenant, collection, w) for w in writes]
        results: list[int | Exception | None] = []
        for write, generation in zip(writes, generations, strict=True):
            try:
                results.append(await self._flip(tenant, collection, write, generation, garbage))
            except PyMongoError as exc:
                garbage += self._keys(tenant, collection, write, generation)
                results.append(exc)
        await self._drop(garbage)
        return results

    async def _replace_alone(
        self, tenant: str, collection: str, write: DocumentWrite
    ) -> int | Exception | None:
        generation = new_generation()
        garbage: list[str] = []
        try:
            records = [
                self._chunk_record(tenant, collection, write, generation, c) for c in write.chunks
            ]
            if records:
                await self.db[CHUNKS].insert_many(records, ordered=False)
            return await self._flip(tenant, collection, write, generation, garbage)
        except PyMongoError as exc:
            garbage += self._keys(tenant, collection, write, generation)
            return exc
        finally:
            await self._drop(garbage)

    async def _flip(
        self,
        tenant: str,
        collection: str,
        write: DocumentWrite,
        generation: int,
        garbage: list[str],
    ) -> int | None:
        """Points the document at `generation` if nobody changed it since `write.previous`;
        adds the chunk ids nobody will point at any more to `garbage`."""
        key = document_key(tenant, collection, write.document_id)
        fields = {
            "tenant": tenant,
            "collection": collection,
            "document_id": write.document_id,
            "title": write.title,
            "content": write.content,
            "metadata": write.metadata,
            "content_hash": write.content_hash,
            "generation": generation,
            "chunk_count": len(write.chunks),
            "updated_at": now(),
        }
        ours = self._keys(tenant, collection, write, generation)
        if write.previous is None:
            try:
                await self.db[DOCUMENTS].insert_one({"_id": key, "created_at": now(), **fields})
            except DuplicateKeyError:
                garbage += ours
                return None
            return generation
        # A compare-and-set on the generation (indexed by _id, also on FerretDB).
        before = await self.db[DOCUMENTS].find_one_and_update(
            {"_id": key, "generation": write.previous},
            {"$set": fields},  # no projection: FerretDB's findAndModify rejects one
        )
        if before is None:
            garbage += ours
            return None
        garbage += chunk_keys(
            tenant, collection, write.document_id, write.previous, int(before.get("chunk_count", 0))
        )
        return generation

    @staticmethod
    def _keys(tenant: str, collection: str, write: DocumentWrite, generation: int) -> list[str]:
        return chunk_keys(tenant, collection, write.document_id, generation, len(write.chunks))

    def _chunk_record(
        self, tenant: str, collection: str, write: DocumentWrite, generation: int, c: ChunkRecord
    ) -> Doc:
        record: Doc = {
            "_id": chunk_key(tenant, collection, write.document_id, generation, c.index),
            "tenant": tenant,
            "collection": collection,
            "document_id": write.document_id,
            "generation": generation,
            "chunk_index": c.index,
            "text": c.text,
            "title": write.title,
            "headings": list(c.headings),
            "metadata": write.metadata,
            "token_count": c.token_count,
            "vector": np.asarray(c.vector, dtype="<f4").tobytes(),
        }
        if self.bson_vectors:
            record["embedding"] = Binary.from_vector(
                np.asarray(c.vector, dtype=np.float32).tolist(), BinaryVectorDtype.FLOAT32
            )
        return record

    async def _drop(self, keys: list[str]) -> None:
        """Removes chunks nobody points at (best effort: they are invisible to search)."""
        if not keys:
            return
        try:
            # One command of `_id` deletes (see ragline_core.corpus.chunk_key for why).
            await self.db[CHUNKS].bulk_write([DeleteOne({"_id": k}) for k in keys], ordered=False)
        except PyMongoError:
            log.warning("could not remove %d superseded chunks", len(keys), exc_info=True)

    async def delete_document(self, tenant: str, collection: str, document_id: str) -> int:
        """Deletes the document (its chunks vanish from search at once), then all its chunks,
        including those of a write that never became visible (a writer died mid-write)."""
        doc = await self.db[DOCUMENTS].find_one_and_delete(
            {"_id": document_key(tenant, collection, document_id)}
        )
        if doc is None:
            return -1
        await self.db[CHUNKS].delete_many(
            {"tenant": tenant, "collection": collection, "document_id": document_id}
        )
        return int(doc.get("chunk_count", 0))

    async def delete_collection(self, tenant: str, name: str) -> int:
        deleted = await self.db[COLLECTIONS].find_one_and_delete(
            {"_id": collection_key(tenant, name)}
        )
        if deleted is None:
            return -1
        docs = await self.db[DOCUMENTS].delete_many({"tenant": tenant, "collection": name})
        await self.db[CHUNKS].delete_many({"tenant": tenant, "collection": name})
        return int(docs.deleted_count)
