"""Reranking the fused candidates.

With VOYAGE_AI_API_KEY set, Voyage's rerank API (a cross-encoder) reorders them. Without
it, a local method re-scores every candidate on both signals exactly — its cosine to the
query and its BM25 score, each min-max normalised over the candidates — and orders by a
weighted sum. Rank fusion throws the scores away; this keeps them, which measurably helps
on the retrieval benchmark (bench/retrieval.py reports hybrid vs hybrid+rerank).

A Voyage failure falls back to the local method (the search still says `reranked`) and is
counted: ragline_provider_requests_total{provider="voyage", model=<rerank model>,
outcome="error"} is the number of searches that fell back.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import numpy as np
import numpy.typing as npt
import voyageai

from ragline_core.corpus import StoredChunk
from ragline_core.metrics import PROVIDER_REQUESTS
from ragline_retriever.index import CollectionIndex
from ragline_retriever.ranking import Ranked
from ragline_retriever.text import analyze

log = logging.getLogger("ragline.retriever.rerank")

EmbedQuery = Callable[[str, str, str], Awaitable[npt.NDArray[np.float32]]]


def _minmax(values: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    span = float(values.max() - values.min()) if len(values) else 0.0
    if span <= 0:
        return np.ones_like(values)  # all equal: equally good
    scaled: npt.NDArray[np.float32] = (values - values.min()) / span
    return scaled


class Reranker:
    def __init__(
        self,
        embed_query: EmbedQuery,
        dense_weight: float,
        voyage_key: str | None,
        voyage_base_url: str | None,
        voyage_model: str,
        timeout_s: float,
    ) -> None:
        self.embed_query = embed_query
        self.dense_weight = dense_weight
        self.voyage_key = voyage_key
        self.voyage_base_url = voyage_base_url
        self.voyage_model = voyage_model
        self.timeout_s = timeout_s

    async def rerank_chunks(
        self,
        query: str,
        candidates: list[tuple[StoredChunk, float]],
        tenant: str,
        model: str,
        index: CollectionIndex,
    ) -> list[tuple[StoredChunk, float]]:
        """Voyage's order of the candidates (chunks already taken out of the index, which
        may change while the API answers); the local method if Voyage fails."""
        try:
            order = await self._voyage(query, [c.text for c, _ in candidates])
        except Exception:
            PROVIDER_REQUESTS.labels("voyage", self.voyage_model, "error").inc()
            log.warning("voyage rerank failed; using the local reranker", exc_info=True)
        else:
            PROVIDER_REQUESTS.labels("voyage", self.voyage_model, "ok").inc()
            return [(candidates[i][0], score) for i, score in order]
        vector = await self.embed_query(tenant, model, query)
        # Back in the index, with no await until the chunks are out again.
        slots = [(index.slot_of_chunk.get(c.chunk_id), s) for c, s in candidates]
        present = [(slot, s) for slot, s in slots if slot is not None]
        return [(index.chunk(slot), s) for slot, s in self.local(query, index, present, vector)]

    def local(
        self,
        query: str,
        index: CollectionIndex,
        candidates: Ranked,
        query_vector: npt.NDArray[np.float32],
    ) -> Ranked:
        slots = np.asarray([s for s, _ in candidates], dtype=np.int64)
        dense = index.vectors[slots] @ query_vector
        allowed = np.zeros(len(index.chunks), dtype=bool)
        allowed[slots] = True
        bm25 = dict(index.bm25(analyze(query), len(slots), allowed))
        keyword = np.asarray([bm25.get(int(s), 0.0) for s in slots], dtype=np.float32)
        score = self.dense_weight * _minmax(dense) + (1 - self.dense_weight) * _minmax(keyword)
        order = np.argsort(-score, kind="stable")
        return [(int(slots[i]), float(score[i])) for i in order]

    async def _voyage(self, query: str, texts: list[str]) -> list[tuple[int, float]]:
        """(position in `texts`, relevance), best first."""
        client = voyageai.AsyncClient(
            api_key=self.voyage_key,
            max_retries=0,
            timeout=self.timeout_s,
            base_url=self.voyage_base_url,
        )
        reply = await client.rerank(query, texts, model=self.voyage_model)
        return [(r.index, float(r.relevance_score)) for r in reply.results]
