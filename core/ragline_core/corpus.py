"""The stored corpus, shared by ingest (writer) and retriever (reader).

MongoDB collections, all scoped by tenant:
- `collections`: one per (tenant, name): embedding model, dimensions, a `version` that
  every change bumps by exactly one (retriever replicas check they applied every version;
  search caches key on it) and an `index_epoch` that a replica bumps when it had to repair
  its index (so no search result cached before the repair is served again).
- `documents`: one per document, with the `generation` of its visible chunks.
- `chunks`: text, metadata and vector (float32 bytes) per chunk and generation. A chunk is
  visible only while its document points at its generation, so replacing a document is one
  atomic single-document write (the portable subset: no transactions needed).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from ragline_core.errors import InvalidArgumentError, NotFoundError

COLLECTIONS = "collections"
DOCUMENTS = "documents"
CHUNKS = "chunks"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_DOC_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")

Doc = dict[str, Any]


def database(client: AsyncMongoClient[Doc], name: str) -> AsyncDatabase[Doc]:
    return client[name]


def check_collection_name(name: str, field: str = "collection") -> str:
    if not name:
        raise InvalidArgumentError(f"{field} is required", field=field)
    if not _NAME.match(name):
        raise InvalidArgumentError(
            f"{field} must be 1-63 letters, digits, '_', '.' or '-', starting with a letter "
            "or digit",
            reason="BAD_COLLECTION_NAME",
            field=field,
        )
    return name


def check_document_id(doc_id: str, field: str = "document_id") -> str:
    if not _DOC_ID.match(doc_id):
        raise InvalidArgumentError(
            f"{field} must be 1-128 letters, digits, '_', '.', ':' or '-'",
            reason="BAD_DOCUMENT_ID",
            field=field,
        )
    return doc_id


def collection_key(tenant: str, collection: str) -> str:
    return f"{tenant}/{collection}"


def document_key(tenant: str, collection: str, document_id: str) -> str:
    return f"{tenant}/{collection}/{document_id}"


def chunk_key(tenant: str, collection: str, document_id: str, generation: int, index: int) -> str:
    """The _id of one chunk of a document at one generation.

    Hot paths address chunks by _id: FerretDB's SQLite backend serves only a filter with
    an `_id` equality from an index (with the fixes in scripts/install_ferretdb.sh); any
    other filter reads and decodes every document of the collection.
    """
    return f"{document_key(tenant, collection, document_id)}/{generation}/{index}"


def chunk_id_hash(chunk_id: str) -> int:
    """48 bits of a chunk id's hash: XORed over a collection's chunk ids they make a
    checksum that is exact as a Prometheus sample (a float64 holds 53 bits)."""
    return int.from_bytes(hashlib.blake2b(chunk_id.encode(), digest_size=6).digest(), "big")


def chunk_keys(
    tenant: str, collection: str, document_id: str, generation: int, count: int
) -> list[str]:
    """The _ids of a document's chunks at one generation, in order."""
    return [chunk_key(tenant, collection, document_id, generation, i) for i in range(count)]


@dataclass(frozen=True)
class CollectionInfo:
    tenant: str
    name: str
    embedding_model: str
    dimensions: int
    version: int
    index_epoch: int = 0


def _info(doc: Doc) -> CollectionInfo:
    return CollectionInfo(
        doc["tenant"],
        doc["name"],
        doc["embedding_model"],
        int(doc["dimensions"]),
        int(doc.get("version", 0)),
        int(doc.get("index_epoch", 0)),
    )


async def get_collection(db: AsyncDatabase[Doc], tenant: str, name: str) -> CollectionInfo:
    """The collection, or 404 (also for another tenant's collection of that name)."""
    doc = await db[COLLECTIONS].find_one({"_id": collection_key(tenant, name)})
    if doc is None:
        raise NotFoundError(f"collection {name!r} not found", reason="COLLECTION_NOT_FOUND")
    return _info(doc)


async def list_collections(db: AsyncDatabase[Doc]) -> list[CollectionInfo]:
    """Every collection of every tenant (for a retriever replica's start-up)."""
    return [_info(doc) async for doc in db[COLLECTIONS].find({})]


async def bump_version(db: AsyncDatabase[Doc], tenant: str, name: str) -> int:
    """The collection's next version: every caller gets a distinct one, one more than the
    last (single-document atomicity; on FerretDB: scripts/ferretdb-atomic-writes.patch)."""
    doc = await db[COLLECTIONS].find_one_and_update(
        {"_id": collection_key(tenant, name)},
        {"$inc": {"version": 1}},
        return_document=ReturnDocument.AFTER,
    )
    return int(doc["version"]) if doc else 0


async def bump_index_epoch(db: AsyncDatabase[Doc], tenant: str, name: str) -> None:
    """Retires every search result cached for the collection (they key on the epoch)."""
    await db[COLLECTIONS].update_one(
        {"_id": collection_key(tenant, name)}, {"$inc": {"index_epoch": 1}}
    )


@dataclass(frozen=True)
class DocumentState:
    """Which chunks of a document are visible: its generation and how many."""

    generation: int
    chunk_count: int


async def document_states(
    db: AsyncDatabase[Doc],
) -> dict[tuple[str, str], dict[str, DocumentState]]:
    """(tenant, collection) -> document_id -> visible state, for every collection in one
    pass over the documents (on FerretDB any filter but `_id` reads the whole table anyway)."""
    out: dict[tuple[str, str], dict[str, DocumentState]] = {}
    projection = {"tenant": 1, "collection": 1, "document_id": 1, "generation": 1, "chunk_count": 1}
    async for d in db[DOCUMENTS].find({}, projection):
        out.setdefault((d["tenant"], d["collection"]), {})[d["document_id"]] = DocumentState(
            int(d["generation"]), int(d.get("chunk_count", 0))
        )
    return out


async def document_state(
    db: AsyncDatabase[Doc], tenant: str, collection: str, document_id: str
) -> DocumentState | None:
    d = await db[DOCUMENTS].find_one(
        {"_id": document_key(tenant, collection, document_id)},
        {"generation": 1, "chunk_count": 1},
    )
    return None if d is None else DocumentState(int(d["generation"]), int(d.get("chunk_count", 0)))


@dataclass(frozen=True)
class StoredChunk:
    """A visible chunk as the retriever indexes it."""

    chunk_id: str
    document_id: str
    generation: int
    chunk_index: int
    title: str
    text: str
    metadata: dict[str, Any]
    vector: npt.NDArray[np.float32]


def chunk_from_doc(doc: Doc) -> StoredChunk:
    return StoredChunk(
        chunk_id=str(doc["_id"]),
        document_id=doc["document_id"],
        generation=int(doc["generation"]),
        chunk_index=int(doc["chunk_index"]),
        title=doc.get("title", ""),
        text=doc["text"],
        metadata=doc.get("metadata") or {},
        vector=np.frombuffer(doc["vector"], dtype="<f4").astype(np.float32),
    )


async def visible_generations(
    db: AsyncDatabase[Doc], tenant: str, collection: str
) -> dict[str, int]:
    """document_id -> generation of its visible chunks, for one collection."""
    cursor = db[DOCUMENTS].find(
        {"tenant": tenant, "collection": collection}, {"document_id": 1, "generation": 1}
    )
    return {d["document_id"]: int(d["generation"]) async for d in cursor}


async def visible_chunks(
    db: AsyncDatabase[Doc], tenant: str, collection: str
) -> AsyncIterator[StoredChunk]:
    """The visible chunks of a collection (one pass over its documents and chunks)."""
    generations = await visible_generations(db, tenant, collection)
    async for doc in db[CHUNKS].find({"tenant": tenant, "collection": collection}):
        if generations.get(doc["document_id"]) == doc["generation"]:
            yield chunk_from_doc(doc)


async def generation_chunks(
    db: AsyncDatabase[Doc],
    tenant: str,
    collection: str,
    document_id: str,
    generation: int,
    count: int,
) -> list[StoredChunk] | None:
    """A document's chunks at one generation in order, by _id; None if any is gone
    (the generation was superseded and removed)."""
    keys = chunk_keys(tenant, collection, document_id, generation, count)
    docs = await asyncio.gather(*(db[CHUNKS].find_one({"_id": key}) for key in keys))
    if any(d is None for d in docs):
        return None
    return [chunk_from_doc(d) for d in docs if d is not None]


async def visible_document_chunks(
    db: AsyncDatabase[Doc], tenant: str, collection: str, document_id: str
) -> list[StoredChunk]:
    """One document's visible chunks in order (none when it does not exist)."""
    for _ in range(3):  # a concurrent replacement may remove what we are reading: retry
        doc = await db[DOCUMENTS].find_one(
            {"_id": document_key(tenant, collection, document_id)},
            {"generation": 1, "chunk_count": 1},
        )
        if doc is None:
            return []
        chunks = await generation_chunks(
            db,
            tenant,
            collection,
            document_id,
            int(doc["generation"]),
            int(doc.get("chunk_count", 0)),
        )
        if chunks is not None:
            return chunks
    # Still racing with writers: one consistent pass over the collection's chunks.
    return sorted(
        [c async for c in visible_chunks(db, tenant, collection) if c.document_id == document_id],
        key=lambda c: c.chunk_index,
    )


async def ensure_indexes(db: AsyncDatabase[Doc]) -> None:
    await db[DOCUMENTS].create_index([("tenant", 1), ("collection", 1), ("document_id", 1)])
    await db[CHUNKS].create_index(
        [("tenant", 1), ("collection", 1), ("document_id", 1), ("generation", 1)]
    )
    await db[COLLECTIONS].create_index([("tenant", 1), ("name", 1)])
