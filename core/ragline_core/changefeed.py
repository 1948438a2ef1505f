"""The index change feed: ingest tells every retriever replica what changed.

A Redis stream carries one entry per document change. It is a hint, not the source of
truth. Each announcement bumps the collection's version in the database by exactly one and
publishes its entries with that version and their number (`batch`), so a replica knows
which versions it has applied in full. A replica that misses entries (Redis down, stream
trimmed, a writer that died between the bump and the publish) is left with a version it
never completes: it notices the gap and reloads the collection from the database. Entries
of different versions may arrive out of order (two writers bump, then publish); applying
an entry re-reads the document's current state, so the order does not matter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

import redis.asyncio as aioredis

STREAM = "ragline:index-changes:v1"
# Keep about this many entries; a replica further behind reloads from the database.
MAX_LEN = 100_000

Op = Literal["upsert", "delete", "drop"]


@dataclass(frozen=True)
class Change:
    """One change: a document upserted at `generation`, deleted, or a collection dropped."""

    op: Op
    tenant: str
    collection: str
    document_id: str
    generation: int
    # The collection's version after this change.
    version: int
    # Chunks of an upsert's generation (0: unknown), so readers fetch them by _id.
    chunks: int = 0
    # How many entries carry this collection's `version` (0: unknown, an older writer).
    batch: int = 0

    def fields(self) -> dict[str, str]:
        return {
            "op": self.op,
            "tenant": self.tenant,
            "collection": self.collection,
            "document_id": self.document_id,
            "generation": str(self.generation),
            "version": str(self.version),
            "chunks": str(self.chunks),
            "batch": str(self.batch),
        }

    @classmethod
    def from_fields(cls, raw: dict[bytes, bytes]) -> Change:
        f = {k.decode(): v.decode() for k, v in raw.items()}
        op = f["op"]
        if op not in ("upsert", "delete", "drop"):
            raise ValueError(f"unknown change op {op!r}")
        return cls(
            cast(Op, op),
            f["tenant"],
            f["collection"],
            f["document_id"],
            int(f["generation"]),
            int(f["version"]),
            int(f.get("chunks", "0")),
            int(f.get("batch", "0")),
        )


class ChangeFeed:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def publish(self, *changes: Change) -> None:
        """Appends the changes in order, in one round trip."""
        if not changes:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for change in changes:
                pipe.xadd(
                    STREAM,
                    change.fields(),  # type: ignore[arg-type]
                    maxlen=MAX_LEN,
                    approximate=True,
                )
            await pipe.execute()

    async def last_id(self) -> str:
        """Id of the newest entry ("0-0" when empty): where a fresh reader starts."""
        newest = await self.redis.xrevrange(STREAM, count=1)
        if not newest:
            return "0-0"
        entry_id = newest[0][0]
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def read(
        self, after: str, *, block_ms: int | None = None, count: int = 1000
    ) -> list[tuple[str, Change]]:
        """Entries after `after`, waiting up to block_ms for the first one."""
        reply: Any = await self.redis.xread({STREAM: after}, count=count, block=block_ms)
        out: list[tuple[str, Change]] = []
        for _stream, entries in reply or []:
            for entry_id, raw in entries:
                key = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                out.append((key, Change.from_fields(raw)))
        return out
