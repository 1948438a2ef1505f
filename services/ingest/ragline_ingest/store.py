"""Ingest's writes to the corpus (see ragline_core.corpus for the layout) and its jobs.

Every write is a single-document atomic operation, so the same code runs on FerretDB,
MongoDB and Atlas without transactions.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from bson.binary import Binary, BinaryVectorDtype
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ragline_core.corpus import (
    CHUNKS,
    COLLECTIONS,
    DOCUMENTS,
    CollectionInfo,
    collection_key,
    document_key,
    get_collection,
)
from ragline_core.errors import ConflictError

JOBS = "ingest_jobs"
JOB_ITEMS = "ingest_job_items"
IDEMPOTENCY = "ingest_idempotency"

Doc = dict[str, Any]


def now() -> datetime:
    return datetime.now(UTC)


def new_generation() -> int:
    """Unique, increasing generation numbers (microseconds), safe across re-created names."""
    return time.time_ns() // 1000


@dataclass(frozen=True)
class ChunkRecord:
    index: int
    text: str
    headings: tuple[str, ...]
    token_count: int
    vector: npt.NDArray[np.float32]


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
                        "version": 0,
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

    async def existing_hash(self, tenant: str, collection: str, document_id: str) -> str | None:
        doc = await self.db[DOCUMENTS].find_one(
            {"_id": document_key(tenant, collection, document_id)}, {"content_hash": 1}
        )
        return None if doc is None else str(doc.get("content_hash"))

    async def replace_document(
        self,
        tenant: str,
        collection: str,
        document_id: str,
        title: str,
        content: str,
        metadata: dict[str, Any],
        content_hash: str,
        chunks: list[ChunkRecord],
    ) -> int | None:
        """Writes new chunks, then flips the document to them in one atomic write.

        Returns the new generation, or None when a concurrent writer won the flip (its
        version stays; ours is removed).
        """
        generation = new_generation()
        if chunks:
            records = [
                self._chunk_record(tenant, collection, document_id, generation, title, metadata, c)
                for c in chunks
            ]
            await self.db[CHUNKS].insert_many(records, ordered=False)
        key = document_key(tenant, collection, document_id)
        previous = await self.db[DOCUMENTS].find_one({"_id": key}, {"generation": 1})
        fields = {
            "tenant": tenant,
            "collection": collection,
            "document_id": document_id,
            "title": title,
            "content": content,
            "metadata": metadata,
            "content_hash": content_hash,
            "generation": generation,
            "chunk_count": len(chunks),
            "updated_at": now(),
        }
        if previous is None:
            try:
                await self.db[DOCUMENTS].insert_one({"_id": key, "created_at": now(), **fields})
            except DuplicateKeyError:
                await self._drop_generation(tenant, collection, document_id, generation)
                return None
        else:
            flipped = await self.db[DOCUMENTS].find_one_and_update(
                {"_id": key, "generation": previous["generation"]},
                {"$set": fields},
                return_document=ReturnDocument.AFTER,
            )
            if flipped is None:
                await self._drop_generation(tenant, collection, document_id, generation)
                return None
            await self._drop_generation(
                tenant, collection, document_id, int(previous["generation"])
            )
        return generation

    def _chunk_record(
        self,
        tenant: str,
        collection: str,
        document_id: str,
        generation: int,
        title: str,
        metadata: dict[str, Any],
        c: ChunkRecord,
    ) -> Doc:
        record: Doc = {
            "_id": f"{document_key(tenant, collection, document_id)}/{generation}/{c.index}",
            "tenant": tenant,
            "collection": collection,
            "document_id": document_id,
            "generation": generation,
            "chunk_index": c.index,
            "text": c.text,
            "title": title,
            "headings": list(c.headings),
            "metadata": metadata,
            "token_count": c.token_count,
            "vector": np.asarray(c.vector, dtype="<f4").tobytes(),
        }
        if self.bson_vectors:
            record["embedding"] = Binary.from_vector(
                np.asarray(c.vector, dtype=np.float32).tolist(), BinaryVectorDtype.FLOAT32
            )
        return record

    async def _drop_generation(
        self, tenant: str, collection: str, document_id: str, generation: int
    ) -> None:
        await self.db[CHUNKS].delete_many(
            {
                "tenant": tenant,
                "collection": collection,
                "document_id": document_id,
                "generation": generation,
            }
        )

    async def delete_document(self, tenant: str, collection: str, document_id: str) -> int:
        """Deletes the document (its chunks vanish from search at once) and its chunks."""
        doc = await self.db[DOCUMENTS].find_one_and_delete(
            {"_id": document_key(tenant, collection, document_id)}
        )
        if doc is None:
            return -1
        result = await self.db[CHUNKS].delete_many(
            {"tenant": tenant, "collection": collection, "document_id": document_id}
        )
        return int(result.deleted_count)

    async def delete_collection(self, tenant: str, name: str) -> int:
        deleted = await self.db[COLLECTIONS].find_one_and_delete(
            {"_id": collection_key(tenant, name)}
        )
        if deleted is None:
            return -1
        docs = await self.db[DOCUMENTS].delete_many({"tenant": tenant, "collection": name})
        await self.db[CHUNKS].delete_many({"tenant": tenant, "collection": name})
        return int(docs.deleted_count)
