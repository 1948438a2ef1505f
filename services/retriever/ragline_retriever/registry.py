"""Every collection's index in this replica, built from the database at start-up and kept
current from the change feed. Before a search, the collection's version in the database
is compared with the index's: a replica that is behind applies pending feed entries and,
if that is not enough (Redis down, entries trimmed), reloads the collection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from ragline_core.changefeed import Change, ChangeFeed
from ragline_core.corpus import (
    CollectionInfo,
    generation_chunks,
    list_collections,
    visible_chunks,
    visible_document_chunks,
)
from ragline_core.metrics import INDEX_CHUNKS
from ragline_retriever.index import CollectionIndex, IndexParams

log = logging.getLogger("ragline.retriever.index")

Doc = dict[str, Any]
Key = tuple[str, str]
# How long a search waits for the feed to deliver a change the database already shows.
CATCH_UP_WAIT_S = 0.3


class IndexRegistry:
    def __init__(self, db: AsyncDatabase[Doc], feed: ChangeFeed, params: IndexParams) -> None:
        self.db = db
        self.feed = feed
        self.params = params
        self.indexes: dict[Key, CollectionIndex] = {}
        self.cursor = "0-0"
        self._feed_lock = asyncio.Lock()
        self._locks: dict[Key, asyncio.Lock] = {}
        self._follower: asyncio.Task[None] | None = None
        self.build_seconds = 0.0

    async def start(self) -> None:
        """Builds every index, then follows the feed from where it stood before the build."""
        started = time.perf_counter()
        try:
            self.cursor = await self.feed.last_id()
        except Exception:
            log.warning("change feed unavailable at start-up")
        for info in await list_collections(self.db):
            await self._load(info)
        self.build_seconds = time.perf_counter() - started
        log.info(
            "indexes built",
            extra={"collections": len(self.indexes), "seconds": round(self.build_seconds, 2)},
        )
        self._follower = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower

    def lock(self, key: Key) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def _load(self, info: CollectionInfo) -> CollectionIndex:
        index = CollectionIndex(info.dimensions, self.params)
        by_doc: dict[str, list[Any]] = {}
        async for chunk in visible_chunks(self.db, info.tenant, info.name):
            by_doc.setdefault(chunk.document_id, []).append(chunk)
        for doc_id, chunks in by_doc.items():
            index.replace_document(doc_id, sorted(chunks, key=lambda c: c.chunk_index))
        index.version = info.version
        self.indexes[(info.tenant, info.name)] = index
        INDEX_CHUNKS.labels(info.tenant, info.name).set(index.live_count)
        return index

    async def current(self, info: CollectionInfo) -> CollectionIndex:
        """The collection's index, at least as new as `info.version`."""
        key = (info.tenant, info.name)
        index = self.indexes.get(key)
        if (
            index is not None
            and index.dimensions == info.dimensions
            and index.version >= info.version
        ):
            return index
        deadline = time.monotonic() + CATCH_UP_WAIT_S
        while time.monotonic() < deadline:
            await self.drain()
            index = self.indexes.get(key)
            if index is not None and index.version >= info.version:
                return index
            await asyncio.sleep(0.02)
        async with self.lock(key):
            index = self.indexes.get(key)
            if index is None or index.version < info.version or index.dimensions != info.dimensions:
                log.info("reloading collection from the database", extra={"collection": info.name})
                index = await self._load(info)
        return index

    async def drain(self, block_ms: int | None = None) -> None:
        """Applies feed entries not yet seen (one reader at a time)."""
        async with self._feed_lock:
            entries = await self.feed.read(self.cursor, block_ms=block_ms)
            for entry_id, change in entries:
                await self.apply(change)
                self.cursor = entry_id

    async def _follow(self) -> None:
        while True:
            try:
                await self.drain(block_ms=1000)
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(1.0)

    async def apply(self, change: Change) -> None:
        key = (change.tenant, change.collection)
        if change.op == "drop":
            if self.indexes.pop(key, None) is not None:
                INDEX_CHUNKS.remove(*key)
            return
        index = self.indexes.get(key)
        if index is None:
            return  # not loaded yet: the first search loads it from the database
        async with self.lock(key):
            if change.op == "delete":
                index.remove_document(change.document_id)
            else:
                chunks = None
                if change.chunks:
                    chunks = await generation_chunks(
                        self.db,
                        change.tenant,
                        change.collection,
                        change.document_id,
                        change.generation,
                        change.chunks,
                    )
                if chunks is None:
                    # Superseded already (or an old entry without a count): take whatever
                    # is visible now.
                    chunks = await visible_document_chunks(
                        self.db, change.tenant, change.collection, change.document_id
                    )
                if chunks:
                    index.replace_document(change.document_id, chunks)
                else:
                    index.remove_document(change.document_id)
            index.version = max(index.version, change.version)
            INDEX_CHUNKS.labels(*key).set(index.live_count)
