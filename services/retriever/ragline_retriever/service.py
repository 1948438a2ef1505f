"""Search: validate, find the collection, serve from the cache or rank (dense, keyword,
hybrid), optionally rerank, page, and count facets."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis
from pymongo.asynchronous.database import AsyncDatabase
from redis.exceptions import RedisError

from ragline_core.corpus import CollectionInfo, check_collection_name, get_collection
from ragline_core.embedder_client import EmbedderClient
from ragline_core.errors import InvalidArgumentError
from ragline_core.metrics import CACHE_REQUESTS
from ragline_retriever import ranking
from ragline_retriever.atlas import AtlasDense
from ragline_retriever.filters import compile_filter
from ragline_retriever.index import CollectionIndex
from ragline_retriever.registry import IndexRegistry
from ragline_retriever.rerank import Reranker

log = logging.getLogger("ragline.retriever")

MODES = ("hybrid", "dense", "keyword")
MAX_FACETS = 10
Doc = dict[str, Any]


@dataclass(frozen=True)
class SearchQuery:
    query: str
    collection: str
    limit: int | None = None
    filters: dict[str, Any] = field(default_factory=dict)
    rerank: bool = False
    mode: str = "hybrid"
    page_size: int = 0
    page_token: str = ""
    facets: tuple[str, ...] = ()


@dataclass
class Hit:
    chunk_id: str
    document_id: str
    title: str
    text: str
    score: float
    metadata: dict[str, Any]
    chunk_index: int


@dataclass
class SearchResult:
    hits: list[Hit]
    next_page_token: str
    facets: dict[str, list[tuple[str, int]]]
    mode: str
    corrections: dict[str, str]
    reranked: bool


@dataclass(frozen=True)
class SearchLimits:
    max_limit: int
    max_query_chars: int
    candidates: int
    rrf_k: int
    dense_weight: float
    keyword_weight: float
    cache_ttl_s: int


class SearchService:
    def __init__(
        self,
        db: AsyncDatabase[Doc],
        registry: IndexRegistry,
        embedder: grpc.aio.Channel,
        redis: aioredis.Redis,
        limits: SearchLimits,
        reranker: Reranker,
        atlas: AtlasDense | None = None,
    ) -> None:
        self.db = db
        self.registry = registry
        self.embedder = EmbedderClient(embedder, batch_size=1)
        self.redis = redis
        self.limits = limits
        self.reranker = reranker
        self.atlas = atlas

    def validate(self, q: SearchQuery) -> SearchQuery:
        if not q.query.strip():
            raise InvalidArgumentError("query must not be empty", field="query")
        if len(q.query) > self.limits.max_query_chars:
            raise InvalidArgumentError(
                f"query is longer than {self.limits.max_query_chars} characters",
                reason="QUERY_TOO_LONG",
                field="query",
            )
        check_collection_name(q.collection)
        limit = 10 if q.limit is None else q.limit
        if not 1 <= limit <= self.limits.max_limit:
            raise InvalidArgumentError(
                f"limit must be between 1 and {self.limits.max_limit}",
                reason="BAD_LIMIT",
                field="limit",
            )
        mode = q.mode or "hybrid"
        if mode not in MODES:
            raise InvalidArgumentError(
                f"mode must be one of {', '.join(MODES)}", reason="BAD_MODE", field="mode"
            )
        if q.page_size < 0 or q.page_size > self.limits.max_limit:
            raise InvalidArgumentError(
                f"page_size must be between 1 and {self.limits.max_limit}", field="page_size"
            )
        if len(q.facets) > MAX_FACETS:
            raise InvalidArgumentError(f"at most {MAX_FACETS} facets", field="facets")
        compile_filter(q.filters)  # raises 400 on a bad filter
        return SearchQuery(
            q.query,
            q.collection,
            limit,
            q.filters,
            q.rerank,
            mode,
            q.page_size or limit,
            q.page_token,
            q.facets,
        )

    async def search(self, tenant: str, request: SearchQuery) -> SearchResult:
        q = self.validate(request)
        info = await get_collection(self.db, tenant, q.collection)
        fingerprint = _fingerprint(tenant, info, q)
        cached = await self._cache_get(fingerprint)
        if cached is None:
            index = await self.registry.current(info)
            cached = await self._rank(tenant, info.embedding_model, index, q)
            await self._cache_put(fingerprint, cached)
        hits = [Hit(**h) for h in cached["hits"]]
        offset = ranking.decode_page(q.page_token, fingerprint[:16])
        page = hits[offset : offset + q.page_size]
        more = offset + q.page_size < len(hits)
        return SearchResult(
            hits=page,
            next_page_token=ranking.encode_page(offset + q.page_size, fingerprint[:16])
            if more
            else "",
            facets={k: [tuple(v) for v in vs] for k, vs in cached["facets"].items()},
            mode=q.mode,
            corrections=cached["corrections"],
            reranked=cached["reranked"],
        )

    async def _rank(self, tenant: str, model: str, index: CollectionIndex, q: SearchQuery) -> Doc:
        """Ranks in three steps. Every await (query vector, Atlas, Voyage) happens before
        the index is read or after its chunks are taken out of it: the change feed updates
        the index between awaits, and slots read across one could point at other chunks."""
        limit = q.limit or 10
        k = max(self.limits.candidates, limit)
        local_rerank = q.rerank and not self.reranker.voyage_key
        query_vector: npt.NDArray[np.float32] | None = None
        if q.mode in ("dense", "hybrid") or local_rerank:
            query_vector = await self._embed(tenant, model, q.query)
        atlas_found: list[tuple[str, float]] = []
        if self.atlas is not None and query_vector is not None and q.mode != "keyword":
            atlas_found = await self.atlas.search(query_vector, k, tenant, q.collection, q.filters)
        # From here to the chunks taken out: no await.
        allowed = index.mask(compile_filter(q.filters))
        dense: ranking.Ranked = []
        keyword: ranking.Ranked = []
        corrections: dict[str, str] = {}
        if q.mode in ("dense", "hybrid"):
            assert query_vector is not None
            dense = self._dense(index, query_vector, k, allowed, atlas_found)
        if q.mode in ("keyword", "hybrid"):
            terms, corrections = ranking.fuzzy_terms(q.query, index.postings, index.surface)
            keyword = index.bm25(terms, k, allowed)
        if q.mode == "dense":
            ranked = dense
        elif q.mode == "keyword":
            ranked = keyword
        else:
            ranked = ranking.rrf(
                [(dense, self.limits.dense_weight), (keyword, self.limits.keyword_weight)],
                self.limits.rrf_k,
            )
        reranked = bool(q.rerank and ranked)
        if reranked and local_rerank:
            assert query_vector is not None
            ranked = self.reranker.local(q.query, index, ranked[:k], query_vector)
        chunks = [(index.chunk(slot), score) for slot, score in ranked]
        if reranked and not local_rerank:
            chunks = await self.reranker.rerank_chunks(q.query, chunks[:k], tenant, model, index)
        facets = ranking.facet_counts([c.metadata for c, _ in chunks], q.facets)
        hits = [
            asdict(
                Hit(
                    c.chunk_id,
                    c.document_id,
                    c.title,
                    c.text,
                    float(score),
                    c.metadata,
                    c.chunk_index,
                )
            )
            for c, score in chunks[:limit]
        ]
        return {"hits": hits, "facets": facets, "corrections": corrections, "reranked": reranked}

    def _dense(
        self,
        index: CollectionIndex,
        vector: npt.NDArray[np.float32],
        k: int,
        allowed: npt.NDArray[np.bool_],
        atlas_found: list[tuple[str, float]],
    ) -> ranking.Ranked:
        if self.atlas is None:
            return index.dense(vector, k, allowed)
        # Keep only chunks this replica knows as visible (and allowed).
        slots = [(index.slot_of_chunk.get(cid), score) for cid, score in atlas_found]
        return [(s, score) for s, score in slots if s is not None and allowed[s]]

    async def _embed(self, tenant: str, model: str, text: str) -> npt.NDArray[np.float32]:
        return await self.embedder.embed_query(tenant, model, text)

    async def _cache_get(self, fingerprint: str) -> Doc | None:
        try:
            raw = await self.redis.get(f"ragline:search:v1:{fingerprint}")
        except (RedisError, OSError):
            CACHE_REQUESTS.labels("search", "error").inc()
            return None
        CACHE_REQUESTS.labels("search", "hit" if raw else "miss").inc()
        return json.loads(raw) if raw else None

    async def _cache_put(self, fingerprint: str, value: Doc) -> None:
        try:
            await self.redis.set(
                f"ragline:search:v1:{fingerprint}", json.dumps(value), ex=self.limits.cache_ttl_s
            )
        except (RedisError, OSError):
            log.debug("search cache unavailable")


def _fingerprint(tenant: str, info: CollectionInfo, q: SearchQuery) -> str:
    """Everything that changes the ranked list (not the page), per tenant and version; the
    index epoch retires every result computed before a replica repaired its index."""
    key = json.dumps(
        [
            tenant,
            q.collection,
            info.version,
            info.index_epoch,
            q.query,
            q.limit,
            q.mode,
            q.rerank,
            q.filters,
            sorted(q.facets),
        ],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(key.encode()).hexdigest()
