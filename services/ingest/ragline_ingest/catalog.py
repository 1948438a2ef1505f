"""Reading and deleting documents and collections (paginated, tenant-scoped)."""

from __future__ import annotations

import base64
import contextlib
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from ragline_core.changefeed import Change
from ragline_core.corpus import (
    COLLECTIONS,
    DOCUMENTS,
    CollectionInfo,
    check_collection_name,
    collection_key,
    document_key,
    get_collection,
)
from ragline_core.errors import InvalidArgumentError, NotFoundError
from ragline_ingest.service import IngestService
from ragline_ingest.store import CorpusWriter

Doc = dict[str, Any]
MAX_PAGE = 1000
DEFAULT_PAGE = 50


@dataclass(frozen=True)
class CollectionStats:
    info: CollectionInfo
    documents: int
    chunks: int


def page_size(requested: int) -> int:
    if requested < 0 or requested > MAX_PAGE:
        raise InvalidArgumentError(f"page_size must be between 1 and {MAX_PAGE}", field="page_size")
    return requested or DEFAULT_PAGE


def decode_token(token: str, prefix: str) -> str | None:
    """The key a page token resumes after; it must be one of this listing's keys (a
    malformed token was read as an empty key: page one again, silently)."""
    if not token:
        return None
    try:
        key = base64.urlsafe_b64decode(token.encode("ascii", "strict")).decode()
        if encode_token(key) != token or not key.startswith(prefix) or len(key) == len(prefix):
            raise ValueError(token)
    except (ValueError, UnicodeError):
        raise InvalidArgumentError(
            "page_token is not a token from a previous page of this listing",
            reason="INVALID_PAGE_TOKEN",
            field="page_token",
        ) from None
    return key


def encode_token(last_key: str) -> str:
    return base64.urlsafe_b64encode(last_key.encode()).decode()


class Catalog:
    def __init__(
        self, db: AsyncDatabase[Doc], writer: CorpusWriter, service: IngestService
    ) -> None:
        self.db = db
        self.writer = writer
        self.service = service

    async def list_documents(
        self, tenant: str, collection: str, size: int, token: str
    ) -> tuple[list[Doc], str]:
        await get_collection(self.db, tenant, check_collection_name(collection))
        query: Doc = {"tenant": tenant, "collection": collection}
        after = decode_token(token, document_key(tenant, collection, ""))
        if after is not None:
            query["_id"] = {"$gt": after}
        limit = page_size(size)
        docs = [
            d
            async for d in self.db[DOCUMENTS]
            .find(query, {"content": 0})
            .sort("_id", 1)
            .limit(limit + 1)
        ]
        more = len(docs) > limit
        docs = docs[:limit]
        return docs, encode_token(docs[-1]["_id"]) if more else ""

    async def get_document(self, tenant: str, collection: str, document_id: str) -> Doc:
        doc = await self.db[DOCUMENTS].find_one(
            {"_id": document_key(tenant, collection, document_id)}
        )
        if doc is None:
            raise NotFoundError(
                f"document {document_id!r} not found in {collection!r}", reason="DOCUMENT_NOT_FOUND"
            )
        return doc

    async def delete_document(self, tenant: str, collection: str, document_id: str) -> int:
        deleted = await self.writer.delete_document(tenant, collection, document_id)
        if deleted < 0:
            raise NotFoundError(
                f"document {document_id!r} not found in {collection!r}", reason="DOCUMENT_NOT_FOUND"
            )
        await self.service.announce(Change("delete", tenant, collection, document_id, 0, 0))
        return deleted

    async def stats(self, info: CollectionInfo) -> CollectionStats:
        # One pass that counts and sums ($group/$sum of a field answers 0 on FerretDB).
        docs = chunks = 0
        async for d in self.db[DOCUMENTS].find(
            {"tenant": info.tenant, "collection": info.name}, {"chunk_count": 1}
        ):
            docs += 1
            chunks += int(d.get("chunk_count", 0))
        return CollectionStats(info, docs, chunks)

    async def get_collection(self, tenant: str, name: str) -> CollectionStats:
        return await self.stats(await get_collection(self.db, tenant, check_collection_name(name)))

    async def list_collections(
        self, tenant: str, size: int, token: str
    ) -> tuple[list[CollectionStats], str]:
        query: Doc = {"tenant": tenant}
        after = decode_token(token, collection_key(tenant, ""))
        if after is not None:
            query["_id"] = {"$gt": after}
        limit = page_size(size)
        docs = [d async for d in self.db[COLLECTIONS].find(query).sort("_id", 1).limit(limit + 1)]
        more = len(docs) > limit
        docs = docs[:limit]
        out = []
        for d in docs:
            out.append(await self.get_collection(tenant, d["name"]))
        return out, encode_token(collection_key(tenant, docs[-1]["name"])) if more else ""

    async def delete_collection(self, tenant: str, name: str) -> int:
        check_collection_name(name)
        deleted = await self.writer.delete_collection(tenant, name)
        if deleted < 0:
            raise NotFoundError(f"collection {name!r} not found", reason="COLLECTION_NOT_FOUND")
        # Best effort: retrievers also see the collection gone in the database.
        with contextlib.suppress(Exception):
            await self.service.feed.publish(Change("drop", tenant, name, "", 0, 0))
        return deleted
