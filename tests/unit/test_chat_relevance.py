"""The relevance floor around retrieval, with the embedder replaced by fixed vectors (the
real model's floor is measured end to end in tests/e2e/test_qa_quality.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from ragline_chat.domain import Passage
from ragline_chat.relevance import GATE, RelevanceGatedRetriever
from ragline_chat.similarity import cosine
from ragline_core.embedding_models import LOCAL_MODEL
from ragline_core.errors import UnavailableError

PASSAGES = [
    Passage(1, "c1", "d1", "Rust", "Rust was created by Graydon Hoare.", 0.03, 0),
    Passage(2, "c2", "d2", "Go", "Go was designed at Google.", 0.02, 0),
]
# Unit vectors: the question along x; a chunk at cos 0.6 or 0.1 from it.
VECTORS = {
    "who created rust": [1.0, 0.0],
    "Rust\nRust was created by Graydon Hoare.": [0.6, 0.8],
    "Go\nGo was designed at Google.": [0.1, 0.99498744],
}


@dataclass
class Reply:
    vectors: list[list[float]]


class FakeEmbedder:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, list[str], str]] = []
        self.fail = fail

    async def embed(self, tenant: str, texts: list[str], model: str, timeout: float) -> Reply:
        self.calls.append((tenant, texts, model))
        if self.fail:
            raise UnavailableError("embedder down", reason="EMBEDDER_UNAVAILABLE")
        return Reply([VECTORS[t] for t in texts])


class FixedRetriever:
    def __init__(self, passages: list[Passage]) -> None:
        self.passages = passages

    async def search(
        self, tenant: str, query: str, collection: str, limit: int, filters: dict[str, Any] | None
    ) -> list[Passage]:
        return self.passages


def search(gate: RelevanceGatedRetriever, tenant: str = "t1") -> list[Passage]:
    return asyncio.run(gate.search(tenant, "who created rust", "c", 4, None))


def outcome(name: str) -> float:
    return GATE.labels(name)._value.get()


def test_cosine():
    assert cosine([1.0, 0.0], [0.6, 0.8]) == pytest.approx(0.6)
    assert cosine([0.0, 0.0], [1.0, 0.0]) == 0.0


def test_passages_above_the_floor_pass_whole():
    embedder = FakeEmbedder()
    before = outcome("passed")
    gate = RelevanceGatedRetriever(FixedRetriever(PASSAGES), embedder, floor=0.5)
    assert search(gate) == PASSAGES
    assert outcome("passed") == before + 1
    # The best chunk is measured with the keyless model, as the ingest service embeds it.
    assert embedder.calls == [
        ("t1", ["who created rust", "Rust\nRust was created by Graydon Hoare."], LOCAL_MODEL)
    ]


def test_best_chunk_below_the_floor_gives_no_passages():
    before = outcome("below_floor")
    gate = RelevanceGatedRetriever(FixedRetriever(PASSAGES[::-1]), FakeEmbedder(), floor=0.5)
    assert search(gate) == []
    assert outcome("below_floor") == before + 1


def test_floor_zero_and_empty_results_skip_the_embedder():
    embedder = FakeEmbedder()
    assert search(RelevanceGatedRetriever(FixedRetriever(PASSAGES), embedder, 0.0)) == PASSAGES
    assert search(RelevanceGatedRetriever(FixedRetriever([]), embedder, 0.5)) == []
    assert embedder.calls == []


def test_embedder_failure_lets_the_passages_through_and_counts():
    before = outcome("error")
    gate = RelevanceGatedRetriever(FixedRetriever(PASSAGES), FakeEmbedder(fail=True), 0.99)
    assert search(gate) == PASSAGES
    assert outcome("error") == before + 1


def test_chunk_vectors_are_cached_per_tenant():
    embedder = FakeEmbedder()
    gate = RelevanceGatedRetriever(FixedRetriever(PASSAGES), embedder, 0.5)
    search(gate, "t1")
    search(gate, "t1")
    search(gate, "t2")
    texts = [texts for _, texts, _ in embedder.calls]
    assert [len(t) for t in texts] == [2, 1, 2]  # t2 does not reuse t1's chunk vector
