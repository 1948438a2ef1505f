"""python -m bench.memory [chunks ...]: resident memory of one retriever index per chunk.

Each size runs in a fresh process that builds a ragline_retriever CollectionIndex (the
VECTOR_BACKEND=local index: chunk texts and metadata, BM25 postings, 384-dim float32
vectors, and the HNSW graph once a collection passes ann_min_chunks) from synthetic
chunks of the ingest default size (200 tokens, ~150 words drawn from a Zipf-distributed
30,000-word vocabulary, 10 chunks per document, two metadata fields), and reports its RSS
growth. The slope between the smallest and largest size is the cost per chunk, without
the process' fixed part (interpreter, numpy, faiss); docs/deployment.md quotes it.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import time
from pathlib import Path

DIMENSIONS = 384
WORDS_PER_CHUNK = 150
CHUNKS_PER_DOCUMENT = 10
VOCABULARY = 30_000
# Just under capacities the index's arrays grow to (64 * 2**k slots), so the slope counts
# no half-empty growth.
DEFAULT_SIZES = (32_000, 128_000)
# A size is at most this many chunks: the measurement must fit the machine it runs on.
MAX_CHUNKS = 1_000_000


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def measure(chunks: int) -> dict[str, float]:
    """Builds one index of `chunks` chunks in this process; RSS before and after."""
    import numpy as np

    from ragline_core.corpus import StoredChunk
    from ragline_retriever.index import CollectionIndex, IndexParams

    rng = np.random.default_rng(7)
    vocabulary = np.array([f"w{i:05d}" for i in range(VOCABULARY)])
    ranks = np.arange(1, VOCABULARY + 1)
    zipf = (1.0 / ranks) / (1.0 / ranks).sum()
    # Word choices drawn at once (per-chunk draws with p= cost more than the index).
    drawn = rng.choice(VOCABULARY, size=(chunks, WORDS_PER_CHUNK), p=zipf).astype(np.int32)
    index = CollectionIndex(DIMENSIONS, IndexParams())
    gc.collect()
    before = rss_bytes()
    started = time.perf_counter()
    for doc in range(0, chunks, CHUNKS_PER_DOCUMENT):
        batch = []
        for i in range(min(CHUNKS_PER_DOCUMENT, chunks - doc)):
            words = vocabulary[drawn[doc + i]]
            vector = rng.standard_normal(DIMENSIONS).astype(np.float32)
            batch.append(
                StoredChunk(
                    chunk_id=f"d{doc}-{i}",
                    document_id=f"d{doc}",
                    generation=1,
                    chunk_index=i,
                    title=f"document {doc}",
                    text=" ".join(words) + ".",
                    metadata={"category": f"c{doc % 7}", "year": 2000 + doc % 25},
                    vector=vector / np.linalg.norm(vector),
                )
            )
        index.replace_document(f"d{doc}", batch)
    gc.collect()
    return {
        "chunks": chunks,
        "rss_growth_bytes": rss_bytes() - before,
        "build_s": time.perf_counter() - started,
        "ann": index.ann is not None,
    }


def run(sizes: tuple[int, ...]) -> list[dict[str, float]]:
    results = []
    for size in sizes:
        if not 0 < size <= MAX_CHUNKS:
            raise SystemExit(f"a size is 1..{MAX_CHUNKS} chunks, got {size}")
        out = subprocess.run(
            [sys.executable, "-m", "bench.memory", "--one", str(size)],
            check=True,
            capture_output=True,
            text=True,
        )
        results.append(json.loads(out.stdout))
    return results


def main(argv: list[str]) -> None:
    if argv[:1] == ["--one"]:
        print(json.dumps(measure(int(argv[1]))))
        return
    sizes = tuple(int(a) for a in argv) or DEFAULT_SIZES
    results = run(sizes)
    print(f"{'chunks':>10} {'RSS growth MiB':>15} {'build s':>8} {'HNSW':>5}")
    for r in results:
        mib = r["rss_growth_bytes"] / 2**20
        print(f"{r['chunks']:>10,} {mib:>15.1f} {r['build_s']:>8.1f} {r['ann']!s:>5}")
    if len(results) > 1:
        low, high = results[0], results[-1]
        per_chunk = (high["rss_growth_bytes"] - low["rss_growth_bytes"]) / (
            high["chunks"] - low["chunks"]
        )
        print(
            f"per chunk: {per_chunk / 1024:.2f} KiB; "
            f"per million chunks: {per_chunk * 1e6 / 2**30:.2f} GiB"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
