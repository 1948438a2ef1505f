"""Redis cache of embeddings, keyed by tenant, model and a hash of the text.

Redis being down never fails a request: lookups count as errors and the service carries
on uncached, skipping Redis for a short while instead of paying its timeout every call.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ragline_core.metrics import CACHE_REQUESTS

log = logging.getLogger("ragline.embedder.cache")

_HEADER = struct.Struct("<IB")  # token count, truncated flag
_BACKOFF_S = 5.0


@dataclass(frozen=True)
class CachedEmbedding:
    vector: npt.NDArray[np.float32]
    token_count: int
    truncated: bool


class EmbeddingCache:
    def __init__(self, redis: aioredis.Redis, ttl_s: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self._down_until = 0.0

    @staticmethod
    def key(tenant: str, model: str, text: str) -> str:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return f"ragline:emb:v1:{tenant}:{model}:{digest}"

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _mark_down(self, exc: Exception) -> None:
        if self._available():
            log.warning(
                "redis unavailable; embedding cache bypassed", extra={"error": type(exc).__name__}
            )
        self._down_until = time.monotonic() + _BACKOFF_S

    async def get_many(
        self, tenant: str, model: str, texts: list[str]
    ) -> list[CachedEmbedding | None]:
        if not self._available():
            CACHE_REQUESTS.labels("embeddings", "error").inc(len(texts))
            return [None] * len(texts)
        try:
            raw = await self.redis.mget([self.key(tenant, model, t) for t in texts])
        except (RedisError, OSError) as exc:
            self._mark_down(exc)
            CACHE_REQUESTS.labels("embeddings", "error").inc(len(texts))
            return [None] * len(texts)
        found = [_decode(value) if isinstance(value, bytes) else None for value in raw]
        hits = sum(1 for f in found if f is not None)
        CACHE_REQUESTS.labels("embeddings", "hit").inc(hits)
        CACHE_REQUESTS.labels("embeddings", "miss").inc(len(texts) - hits)
        return found

    async def put_many(
        self, tenant: str, model: str, texts: list[str], entries: list[CachedEmbedding]
    ) -> None:
        if not texts or not self._available():
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for text, entry in zip(texts, entries, strict=True):
                    pipe.set(self.key(tenant, model, text), _encode(entry), ex=self.ttl_s)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._mark_down(exc)


def _encode(entry: CachedEmbedding) -> bytes:
    header = _HEADER.pack(entry.token_count, int(entry.truncated))
    return header + np.asarray(entry.vector, dtype="<f4").tobytes()


def _decode(raw: bytes) -> CachedEmbedding | None:
    if len(raw) < _HEADER.size:
        return None
    tokens, truncated = _HEADER.unpack_from(raw)
    vector = np.frombuffer(raw, dtype="<f4", offset=_HEADER.size).astype(np.float32)
    return CachedEmbedding(vector, int(tokens), bool(truncated))
