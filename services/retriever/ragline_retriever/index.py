"""One collection's in-memory index: chunk texts and metadata, BM25, and vectors with an
approximate (HNSW, via faiss) nearest-neighbour index once the collection is large.

Chunks live in slots; a removed document's slots are tombstoned (excluded from every
search) and the arrays are compacted when tombstones pile up. Filters arrive as a boolean
mask over slots, applied inside both searches.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from ragline_core.corpus import DocumentState, StoredChunk, chunk_id_hash
from ragline_retriever.text import analyze, words

Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class IndexParams:
    # Collections with fewer live chunks are searched exactly (fast and exact anyway).
    ann_min_chunks: int = 20_000
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 128
    # Filters that keep fewer chunks than this are searched exactly over the subset.
    exact_subset_max: int = 20_000
    bm25_k1: float = 0.9
    bm25_b: float = 0.4


class CollectionIndex:
    def __init__(self, dimensions: int, params: IndexParams) -> None:
        self.dimensions = dimensions
        self.params = params
        self.chunks: list[StoredChunk | None] = []
        self.slots_of: dict[str, list[int]] = {}
        self.slot_of_chunk: dict[str, int] = {}
        self.vectors = np.zeros((0, dimensions), dtype=np.float32)
        self.alive = np.zeros(0, dtype=bool)
        self.lengths = np.zeros(0, dtype=np.float32)
        self.postings: dict[str, dict[int, int]] = defaultdict(dict)
        self.surface: Counter[str] = Counter()
        self.titles: Counter[str] = Counter()
        self.ann: faiss.IndexHNSWFlat | None = None
        self.ann_size = 0
        self.version = 0
        # XOR of chunk_id_hash over the live chunks: replicas and the database compare it.
        self.checksum = 0

    # -- updates ----------------------------------------------------------------------
    @property
    def live_count(self) -> int:
        return int(self.alive.sum())

    def replace_document(self, document_id: str, chunks: list[StoredChunk]) -> None:
        self.remove_document(document_id)
        if not chunks:
            return
        start = len(self.chunks)
        count = len(chunks)
        self._grow(start + count)
        for offset, chunk in enumerate(chunks):
            slot = start + offset
            self.chunks.append(chunk)
            self.slot_of_chunk[chunk.chunk_id] = slot
            self.checksum ^= chunk_id_hash(chunk.chunk_id)
            self.vectors[slot] = chunk.vector
            self.alive[slot] = True
            terms = analyze(f"{chunk.title}\n{chunk.text}")
            self.lengths[slot] = len(terms)
            for term, tf in Counter(terms).items():
                self.postings[term][slot] = tf
            for word in set(words(chunk.text)):
                self.surface[word] += 1
        title = chunks[0].title
        if title:
            self.titles[title] += 1
        self.slots_of[document_id] = list(range(start, start + count))
        self._maybe_index()

    def remove_document(self, document_id: str) -> None:
        slots = self.slots_of.pop(document_id, None)
        if not slots:
            return
        first = self.chunks[slots[0]]
        if first is not None and first.title:
            self.titles[first.title] -= 1
            if self.titles[first.title] <= 0:
                del self.titles[first.title]
        for slot in slots:
            chunk = self.chunks[slot]
            if chunk is None:
                continue
            for term in set(analyze(f"{chunk.title}\n{chunk.text}")):
                self.postings[term].pop(slot, None)
                if not self.postings[term]:
                    del self.postings[term]
            for word in set(words(chunk.text)):
                self.surface[word] -= 1
                if self.surface[word] <= 0:
                    del self.surface[word]
            self.chunks[slot] = None
            self.slot_of_chunk.pop(chunk.chunk_id, None)
            self.checksum ^= chunk_id_hash(chunk.chunk_id)
            self.alive[slot] = False
        if len(self.chunks) > 1000 and self.live_count < len(self.chunks) * 0.6:
            self._compact()

    def document_states(self) -> dict[str, DocumentState]:
        """document_id -> the generation and number of its chunks in this index."""
        out = {}
        for doc, slots in self.slots_of.items():
            first = self.chunks[slots[0]]
            if first is not None:
                out[doc] = DocumentState(first.generation, len(slots))
        return out

    def _grow(self, size: int) -> None:
        if size <= len(self.alive):
            return
        capacity = max(size, 2 * len(self.alive), 64)
        vectors = np.zeros((capacity, self.dimensions), dtype=np.float32)
        vectors[: len(self.vectors)] = self.vectors
        alive = np.zeros(capacity, dtype=bool)
        alive[: len(self.alive)] = self.alive
        lengths = np.zeros(capacity, dtype=np.float32)
        lengths[: len(self.lengths)] = self.lengths
        self.vectors, self.alive, self.lengths = vectors, alive, lengths

    def _compact(self) -> None:
        """Rebuilds the arrays without tombstones (slots change; the ANN index is rebuilt)."""
        documents = {
            doc: [c for s in slots if (c := self.chunks[s]) is not None]
            for doc, slots in self.slots_of.items()
        }
        fresh = CollectionIndex(self.dimensions, self.params)
        fresh.version = self.version
        for doc, chunks in documents.items():
            fresh.replace_document(doc, chunks)
        self.__dict__.update(fresh.__dict__)

    def _maybe_index(self) -> None:
        """Keeps the HNSW graph covering every slot once the collection is large."""
        size = len(self.chunks)
        if self.ann is None and self.live_count < self.params.ann_min_chunks:
            return
        if self.ann is None:
            self.ann = faiss.IndexHNSWFlat(
                self.dimensions, self.params.hnsw_m, faiss.METRIC_INNER_PRODUCT
            )
            self.ann.hnsw.efConstruction = self.params.ef_construction
            self.ann_size = 0
        if size > self.ann_size:
            self.ann.add(np.ascontiguousarray(self.vectors[self.ann_size : size]))
            self.ann_size = size

    # -- search -----------------------------------------------------------------------
    def mask(self, predicate: Callable[[dict[str, Any]], bool] | None) -> Mask:
        """Live slots whose metadata passes the filter predicate. The chunks of a document
        carry its metadata: the predicate runs once per document, not per chunk (it runs
        on the event loop, between awaits)."""
        size = len(self.chunks)
        allowed = self.alive[:size].copy()
        if predicate is None:
            return allowed
        for slots in self.slots_of.values():
            chunk = self.chunks[slots[0]]
            if chunk is None or not predicate(chunk.metadata):
                allowed[slots] = False
        return allowed

    def dense(
        self, query: npt.NDArray[np.float32], k: int, allowed: Mask
    ) -> list[tuple[int, float]]:
        """Top-k slots by cosine (vectors are normalised) among the allowed ones."""
        candidates = np.flatnonzero(allowed)
        if len(candidates) == 0:
            return []
        use_ann = self.ann is not None and len(candidates) > self.params.exact_subset_max
        if not use_ann:
            scores = self.vectors[candidates] @ query
            top = np.argsort(-scores)[:k]
            return [(int(candidates[i]), float(scores[i])) for i in top]
        assert self.ann is not None
        params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
        params.efSearch = max(self.params.ef_search, k)
        selector = None
        if len(candidates) < self.ann_size:
            selector = faiss.IDSelectorBatch(candidates.astype(np.int64))
            params.sel = selector
        distances, ids = self.ann.search(query.reshape(1, -1), k, params=params)
        return [(int(i), float(d)) for i, d in zip(ids[0], distances[0], strict=True) if i >= 0]

    def bm25(self, terms: Iterable[str], k: int, allowed: Mask) -> list[tuple[int, float]]:
        size = len(self.chunks)
        live = max(1, self.live_count)
        avg = float(self.lengths[:size][self.alive[:size]].mean()) if live else 1.0
        k1, b = self.params.bm25_k1, self.params.bm25_b
        scores = np.zeros(size, dtype=np.float32)
        for term in terms:
            posting = self.postings.get(term)
            if not posting:
                continue
            idf = math.log(1 + (live - len(posting) + 0.5) / (len(posting) + 0.5))
            slots = np.fromiter(posting.keys(), dtype=np.int64, count=len(posting))
            tfs = np.fromiter(posting.values(), dtype=np.float32, count=len(posting))
            norm = k1 * (1 - b + b * self.lengths[slots] / avg)
            scores[slots] += idf * tfs * (k1 + 1) / (tfs + norm)
        scores[~allowed] = 0
        hits = np.flatnonzero(scores > 0)
        top = hits[np.argsort(-scores[hits])][:k]
        return [(int(s), float(scores[s])) for s in top]

    def chunk(self, slot: int) -> StoredChunk:
        chunk = self.chunks[slot]
        assert chunk is not None
        return chunk
