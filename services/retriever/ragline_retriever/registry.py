"""Every collection's index in this replica, built from the database at start-up and kept
current from the change feed.

The invariant (docs/retrieval.md, "Replica consistency"): once writes stop, this replica's
index of every collection holds exactly the chunks the database shows as visible (same
ids, same generations). How it is kept:
- Applying a feed entry re-reads the document's current state from the database (by
  `_id`), so entries may arrive in any order and be applied twice.
- A collection's watermark (watermark.py) counts which versions were applied in full; a
  search needs the watermark at the database's version, else it waits for the feed and
  then reloads the collection.
- A (re)load reads the collection's version *before* scanning it, so the scan holds at
  least every change up to that version; entries that arrive during the load are applied
  after it instead of being dropped.
- A watcher reloads a collection whose watermark is still behind the database (or behind
  entries it applied) once the replica has read the whole feed and stayed idle for the
  grace: those entries were lost (Redis down, a writer that died between its version bump
  and its publish). A replica that is merely slow to apply a busy feed is never "idle".
- A periodic reconciliation compares every document's generation and chunk count with the
  database and repairs what differs (`ragline_index_gap_chunks`,
  `ragline_index_repairs_total`).
Every reload but the first retires the collection's cached search results (index_epoch).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from redis.exceptions import RedisError

from ragline_core.changefeed import Change, ChangeFeed
from ragline_core.corpus import (
    CollectionInfo,
    DocumentState,
    bump_index_epoch,
    document_state,
    document_states,
    get_collection,
    list_collections,
    visible_chunks,
    visible_document_chunks,
)
from ragline_core.errors import NotFoundError
from ragline_core.metrics import (
    INDEX_CHECKSUM,
    INDEX_CHUNKS,
    INDEX_GAP_CHUNKS,
    INDEX_REPAIRS,
    INDEX_VERSION_LAG,
)
from ragline_retriever.index import CollectionIndex, IndexParams
from ragline_retriever.watermark import VersionWatermark

log = logging.getLogger("ragline.retriever.index")

Doc = dict[str, Any]
Key = tuple[str, str]
# How long a search waits for the feed to deliver a change the database already shows.
CATCH_UP_WAIT_S = 0.3
# How often the watcher compares watermarks with the database's versions.
WATCH_EVERY_S = 1.0
# How long one read of the feed waits for entries: under the Redis client's socket timeout
# (0.5 s, ragline_core.stores), or every idle read would end in a timeout error.
FOLLOW_BLOCK_MS = 300


@dataclass(frozen=True)
class IndexState:
    """This replica's index of one collection, for GET .../indexStatus."""

    loaded: bool
    index_version: int
    indexed_chunks: int
    # At the last reconciliation that compared the collection, and when (epoch seconds).
    gap_chunks: int
    reconciled_at: float | None


def gap_chunks(index: dict[str, DocumentState], stored: dict[str, DocumentState]) -> int:
    """How many chunk ids one side has and the other lacks."""
    gap = 0
    for doc in index.keys() | stored.keys():
        mine, theirs = index.get(doc), stored.get(doc)
        if mine == theirs:
            continue
        if mine is not None and theirs is not None and mine.generation == theirs.generation:
            gap += abs(mine.chunk_count - theirs.chunk_count)
        else:
            gap += (mine.chunk_count if mine else 0) + (theirs.chunk_count if theirs else 0)
    return gap


class IndexRegistry:
    def __init__(
        self,
        db: AsyncDatabase[Doc],
        feed: ChangeFeed,
        params: IndexParams,
        *,
        gap_grace_s: float = 2.0,
        reconcile_every_s: float = 30.0,
    ) -> None:
        self.db = db
        self.feed = feed
        self.params = params
        self.gap_grace_s = gap_grace_s
        self.reconcile_every_s = reconcile_every_s
        self.indexes: dict[Key, CollectionIndex] = {}
        self.watermarks: dict[Key, VersionWatermark] = {}
        self.cursor = "0-0"
        self._feed_lock = asyncio.Lock()
        self._locks: dict[Key, asyncio.Lock] = {}
        # Collections being (re)loaded -> feed entries that arrived meanwhile.
        self._loading: dict[Key, list[Change]] = {}
        # Since when the last read of the feed found nothing new (None: entries are flowing).
        self._idle_since: float | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.build_seconds = 0.0
        # The last reconciliation's gap per collection, and when it was found.
        self.reconciled: dict[Key, tuple[int, float]] = {}

    async def start(self) -> None:
        """Builds every index, then follows the feed from where it stood before the build."""
        started = time.perf_counter()
        try:
            self.cursor = await self.feed.last_id()
        except Exception:
            log.warning("change feed unavailable at start-up")
        for info in await list_collections(self.db):
            async with self.lock((info.tenant, info.name)):
                await self._load((info.tenant, info.name))
        self.build_seconds = time.perf_counter() - started
        log.info(
            "indexes built",
            extra={"collections": len(self.indexes), "seconds": round(self.build_seconds, 2)},
        )
        self._tasks = [
            asyncio.create_task(self._follow()),
            asyncio.create_task(self._watch()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def lock(self, key: Key) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    # -- loading ----------------------------------------------------------------------
    async def _load(self, key: Key) -> CollectionIndex | None:
        """Rebuilds the collection's index from the database; the caller holds its lock."""
        self._loading[key] = []
        try:
            try:
                # The version first: the scan below then holds every change up to it.
                info = await get_collection(self.db, *key)
            except NotFoundError:
                self._forget(key)
                return None
            index = CollectionIndex(info.dimensions, self.params)
            by_doc: dict[str, list[Any]] = {}
            async for chunk in visible_chunks(self.db, *key):
                by_doc.setdefault(chunk.document_id, []).append(chunk)
            for doc_id, chunks in by_doc.items():
                index.replace_document(doc_id, sorted(chunks, key=lambda c: c.chunk_index))
            index.version = info.version
            self.indexes[key] = index
            self.watermarks[key] = VersionWatermark(info.version)
            arrived = self._loading.pop(key)
        finally:
            self._loading.pop(key, None)
        for change in arrived:
            await self._apply_locked(key, change)
        self._export(key)
        return index

    async def _repair(self, key: Key, reason: str) -> None:
        """Reloads a collection this replica got wrong and retires its cached results."""
        async with self.lock(key):
            log.warning(
                "repairing a collection's index", extra={"collection": key[1], "reason": reason}
            )
            INDEX_REPAIRS.labels(reason).inc()
            await self._load(key)
        with contextlib.suppress(Exception):
            await bump_index_epoch(self.db, *key)

    def _forget(self, key: Key) -> None:
        self.indexes.pop(key, None)
        self.watermarks.pop(key, None)
        for gauge in (INDEX_CHUNKS, INDEX_CHECKSUM, INDEX_GAP_CHUNKS, INDEX_VERSION_LAG):
            with contextlib.suppress(KeyError):
                gauge.remove(*key)

    def _export(self, key: Key) -> None:
        index = self.indexes.get(key)
        if index is not None:
            INDEX_CHUNKS.labels(*key).set(index.live_count)
            INDEX_CHECKSUM.labels(*key).set(index.checksum)

    # -- searching ---------------------------------------------------------------------
    def state(self, key: Key) -> IndexState:
        index = self.indexes.get(key)
        gap, at = self.reconciled.get(key, (0, None))
        if index is None:
            return IndexState(False, 0, 0, gap, at)
        chunks = sum(s.chunk_count for s in index.document_states().values())
        return IndexState(True, index.version, chunks, gap, at)

    async def current(self, info: CollectionInfo) -> CollectionIndex:
        """The collection's index, complete at least up to `info.version`."""
        key = (info.tenant, info.name)
        if self._fresh(key, info):
            return self.indexes[key]
        deadline = time.monotonic() + CATCH_UP_WAIT_S
        while key in self.indexes and time.monotonic() < deadline:
            try:
                await self.drain()
            except (RedisError, OSError):
                # The feed is unreadable (Redis down): the database decides, below, so a
                # search still answers (found by the fault battery: it was a 500).
                log.warning("change feed unreadable; reloading from the database")
                break
            if self._fresh(key, info):
                return self.indexes[key]
            await asyncio.sleep(0.02)
        first = key not in self.indexes
        reloaded = False
        async with self.lock(key):
            if not self._fresh(key, info):
                log.info("reloading collection from the database", extra={"collection": info.name})
                await self._load(key)
                reloaded = True
        if reloaded and not first:
            INDEX_REPAIRS.labels("behind_at_search").inc()
            with contextlib.suppress(Exception):
                await bump_index_epoch(self.db, *key)
        index = self.indexes.get(key)
        if index is None:
            raise NotFoundError(
                f"collection {info.name!r} not found", reason="COLLECTION_NOT_FOUND"
            )
        return index

    def _fresh(self, key: Key, info: CollectionInfo) -> bool:
        index = self.indexes.get(key)
        return (
            index is not None
            and index.dimensions == info.dimensions
            and index.version >= info.version
        )

    # -- following the feed --------------------------------------------------------------
    async def drain(self, block_ms: int | None = None) -> None:
        """Applies feed entries not yet seen (one reader at a time)."""
        async with self._feed_lock:
            entries = await self.feed.read(self.cursor, block_ms=block_ms)
            if not entries:
                if self._idle_since is None:
                    self._idle_since = time.monotonic()
            else:
                self._idle_since = None
            for entry_id, change in entries:
                await self.apply(change)
                self.cursor = entry_id

    async def _follow(self) -> None:
        while True:
            try:
                await self.drain(block_ms=FOLLOW_BLOCK_MS)
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(1.0)

    async def apply(self, change: Change) -> None:
        key = (change.tenant, change.collection)
        if change.op == "drop":
            self._forget(key)
            return
        if key in self._loading:
            self._loading[key].append(change)  # applied when the load ends
            return
        if key not in self.indexes:
            return  # not loaded here: its first load reads the database
        async with self.lock(key):
            await self._apply_locked(key, change)
        self._export(key)

    async def _apply_locked(self, key: Key, change: Change) -> None:
        index, watermark = self.indexes.get(key), self.watermarks.get(key)
        if index is None or watermark is None:
            return
        # Whatever the entry says, the database's current state of the document decides:
        # an older entry arriving late must not bring back a superseded generation.
        chunks = await visible_document_chunks(self.db, *key, change.document_id)
        if chunks:
            index.replace_document(change.document_id, chunks)
        else:
            index.remove_document(change.document_id)
        watermark.record(change.version, change.batch)
        index.version = watermark.version

    # -- watching and reconciling --------------------------------------------------------
    async def _watch(self) -> None:
        last_reconcile = time.monotonic()
        while True:
            await asyncio.sleep(WATCH_EVERY_S)
            try:
                await self.check_versions()
                due = time.monotonic() - last_reconcile >= self.reconcile_every_s
                if self.reconcile_every_s > 0 and due:
                    last_reconcile = time.monotonic()
                    await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("index check failed", exc_info=True)

    async def check_versions(self) -> None:
        """Loads collections this replica lacks and reloads those still behind once the
        whole feed has been read (their entries were lost)."""
        infos = {(i.tenant, i.name): i for i in await list_collections(self.db)}
        for key in list(self.indexes):
            if key not in infos and key not in self._loading:
                self._forget(key)  # dropped while the feed was down
        idle = self._idle_since is not None and (
            time.monotonic() - self._idle_since > self.gap_grace_s
        )
        for key, info in infos.items():
            index = self.indexes.get(key)
            if index is None:
                async with self.lock(key):
                    if key not in self.indexes:
                        await self._load(key)
                continue
            INDEX_VERSION_LAG.labels(*key).set(max(0, info.version - index.version))
            behind = index.version < info.version or self.watermarks[key].gap
            if behind and idle:
                await self._repair(key, "lost_entries")

    async def reconcile(self) -> dict[Key, int]:
        """Compares every document's generation and chunk count with the database and
        repairs the collections that differ; returns the gap found per collection."""
        before = {(i.tenant, i.name): i.version for i in await list_collections(self.db)}
        stored = await document_states(self.db)
        after = {(i.tenant, i.name): i.version for i in await list_collections(self.db)}
        gaps: dict[Key, int] = {}
        for key, index in list(self.indexes.items()):
            version = after.get(key)
            # Skip collections being written: their state moves under the comparison.
            if version is None or before.get(key) != version or index.version != version:
                continue
            mine, theirs = index.document_states(), stored.get(key, {})
            if gap_chunks(mine, theirs):
                gap = await self._confirm_gap(key, mine, theirs)
            else:
                gap = 0
            gaps[key] = gap
            self.reconciled[key] = (gap, time.time())
            INDEX_GAP_CHUNKS.labels(*key).set(gap)
            if gap:
                log.error(
                    "index differs from the database",
                    extra={"collection": key[1], "gap_chunks": gap},
                )
                await self._repair(key, "reconcile")
        return gaps

    async def _confirm_gap(
        self, key: Key, mine: dict[str, DocumentState], theirs: dict[str, DocumentState]
    ) -> int:
        """Re-reads the documents that differed after the feed caught up: a write between
        its flip and its version bump differs for a moment without being a gap."""
        await asyncio.sleep(self.gap_grace_s)
        await self.drain()
        index = self.indexes.get(key)
        if index is None:
            return 0
        differing = [d for d in mine.keys() | theirs.keys() if mine.get(d) != theirs.get(d)]
        now_mine = index.document_states()
        states = await asyncio.gather(*(document_state(self.db, *key, d) for d in differing))
        return gap_chunks(
            {d: s for d in differing if (s := now_mine.get(d)) is not None},
            {d: s for d, s in zip(differing, states, strict=True) if s is not None},
        )
