"""The relevance floor: retrieval always returns its best chunks, even for a question the
collection says nothing about. Before they become a model's context, the best one must be
about the question: the cosine between the question and that chunk, both embedded by the
keyless local model, must reach the floor; otherwise the model gets no passages, so it
says it does not know and has nothing to cite.

The similarity is measured with the keyless model whatever the collection's own embedding
model, so one floor holds for every collection. The floor was chosen on the QA set's tune
split (docs/chat.md). A failed embedder call lets the passages through: the floor sharpens
answers, it does not guard anything.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from typing import Any

from prometheus_client import Counter

from ragline_chat.domain import Passage
from ragline_chat.retrieval import Retriever
from ragline_chat.similarity import Embedder, cosine, embed
from ragline_core.errors import RaglineError

log = logging.getLogger(__name__)

GATE = Counter(
    "ragline_chat_relevance_gate_total",
    "Retrievals checked against the relevance floor, by outcome "
    "(passed, below_floor: answered 'I don't know', error: let through unchecked).",
    ["outcome"],
)
# Chunk vectors kept per process (per tenant and text): 384 floats each, about 6 MB.
CACHE_ENTRIES = 4096


class RelevanceGatedRetriever:
    """A Retriever whose result is empty when its best chunk is below the floor."""

    def __init__(self, inner: Retriever, embedder: Embedder, floor: float) -> None:
        self.inner = inner
        self.embedder = embedder
        self.floor = floor
        # Keyed by tenant too: one tenant's timing never tells whether another holds a text.
        self._chunks: OrderedDict[str, list[float]] = OrderedDict()

    async def search(
        self, tenant: str, query: str, collection: str, limit: int, filters: dict[str, Any] | None
    ) -> list[Passage]:
        passages = await self.inner.search(tenant, query, collection, limit, filters)
        if not passages or self.floor <= 0:
            return passages
        try:
            similarity = await self.similarity(tenant, query, passages[0])
        except (RaglineError, OSError):
            GATE.labels("error").inc()
            log.warning("relevance floor not checked: the embedder failed", exc_info=True)
            return passages
        if similarity < self.floor:
            GATE.labels("below_floor").inc()
            return []
        GATE.labels("passed").inc()
        return passages

    async def similarity(self, tenant: str, query: str, passage: Passage) -> float:
        # The text the ingest service embeds for a chunk.
        text = f"{passage.title}\n{passage.text}" if passage.title else passage.text
        key = hashlib.sha256(f"{tenant}\0{text}".encode()).hexdigest()
        cached = self._chunks.get(key)
        texts = [query] if cached is not None else [query, text]
        vectors = await embed(self.embedder, tenant, texts)
        if cached is None:
            cached = vectors[1]
            self._chunks[key] = cached
            if len(self._chunks) > CACHE_ENTRIES:
                self._chunks.popitem(last=False)
        else:
            self._chunks.move_to_end(key)
        return cosine(vectors[0], cached)
