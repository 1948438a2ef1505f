"""Retriever settings: limits, ranking and the index."""

from __future__ import annotations

from pydantic import Field

from ragline_core.settings import CoreSettings


class RetrieverSettings(CoreSettings):
    MAX_SEARCH_LIMIT: int = Field(default=100, ge=1, le=1000)
    MAX_QUERY_CHARS: int = Field(default=2000, ge=1)
    # Candidates taken from each of dense and keyword search before fusion.
    SEARCH_CANDIDATES: int = Field(default=100, ge=10, le=2000)
    # Reciprocal rank fusion constant and per-list weights (hybrid mode).
    RRF_K: int = Field(default=60, ge=1)
    HYBRID_DENSE_WEIGHT: float = Field(default=1.0, ge=0)
    HYBRID_KEYWORD_WEIGHT: float = Field(default=1.0, ge=0)
    ANN_MIN_CHUNKS: int = Field(default=20_000, ge=1)
    HNSW_M: int = Field(default=32, ge=4, le=128)
    HNSW_EF_SEARCH: int = Field(default=128, ge=8)
    # Voyage rerank model used for `rerank: true` when VOYAGE_AI_API_KEY is set.
    VOYAGE_RERANK_MODEL: str = "rerank-2.5-lite"
    # Seconds a replica waits for missing change-feed entries before it reloads the
    # collection from the database (the entries were lost).
    INDEX_GAP_GRACE_S: float = Field(default=2.0, gt=0, le=60)
    # Seconds between full comparisons of every index with the database (0: off).
    INDEX_RECONCILE_INTERVAL_S: float = Field(default=30.0, ge=0, le=86_400)
