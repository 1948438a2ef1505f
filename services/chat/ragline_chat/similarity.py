"""Question-to-text similarity with the keyless local embedding model, over the embedder.

The chat service uses it twice: the relevance floor (is the best chunk about the question?)
and the extractive answer's sentence choice (which candidate sentence answers it?). The
keyless model is used whatever the collection's own model, so thresholds and weights chosen
once hold for every collection.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

from ragline_core.embedding_models import LOCAL_MODEL

EMBED_TIMEOUT_S = 5.0


class Embedder(Protocol):
    async def embed(self, tenant: str, texts: list[str], model: str, timeout: float) -> Any:
        """An object with `.vectors`, one per text."""


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


async def embed(embedder: Embedder, tenant: str, texts: list[str]) -> list[list[float]]:
    reply = await embedder.embed(tenant, texts, LOCAL_MODEL, EMBED_TIMEOUT_S)
    return [list(v) for v in reply.vectors]


class SentenceSimilarity:
    """Cosine of a question with each of a few candidate sentences (one embedder call)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    async def __call__(self, tenant: str, question: str, texts: Sequence[str]) -> list[float]:
        vectors = await embed(self.embedder, tenant, [question, *texts])
        return [cosine(vectors[0], v) for v in vectors[1:]]
