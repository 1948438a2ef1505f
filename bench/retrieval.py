"""Retrieval quality and speed on BEIR SciFact, through the REST API.

    .venv/bin/python -m bench retrieval [--queries 300] [--skip-int8]

1. Ingests the corpus (title + text) through POST /api/v1/ingest on a throwaway stack, into
   an fp32 collection and an int8 one, as requests of 50 documents, 4 in flight (the jobs
   overlap), and reports documents/s and chunks/s next to the raw in-process embedder
   throughput on the same chunk texts; then whether the retriever's index holds exactly the
   database's chunks, and its reconciliation's gap metric (bench/consistency.py).
2. Runs the test queries in each mode and prints nDCG@10 and recall@100 (document level,
   a document ranked by its best chunk) beside the published figures.
3. Search latency p50/p95 through Envoy vs the same ranking in process, query embedding
   included in both: before every pass the embedder's cached vectors of the queries are
   deleted, or a pass would reuse the vectors an earlier pass (dense) cached.
4. ANN: faiss HNSW vs exact search on 100k vectors: recall@10, p50 latency, build time.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import faiss
import httpx
import numpy as np

from bench import consistency
from bench.minilm_inprocess import encoder
from bench.stack import DEV_HEADERS, bench_stack

INGEST_BATCH = 50
INGEST_IN_FLIGHT = 4
# The retriever reconciles its indexes with the database this often during the benchmark.
RECONCILE_S = 5.0
DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "scifact"
# The dev key's tenant (DEV_HEADERS): the embedder caches query vectors under it.
TENANT = "dev-1"
# 503s met while polling jobs (retried, and reported with the results).
TRANSIENT_503S: list[str] = []
PUBLISHED = {
    "dense": "0.645 (MTEB)",
    "keyword": "0.665-0.679 (BEIR/Pyserini BM25)",
    "hybrid": "0.713 (BM25+MiniLM RRF)",
    "hybrid+rerank": "-",
}


def load() -> tuple[list[dict[str, str]], dict[str, str], dict[str, dict[str, int]]]:
    corpus = [json.loads(line) for line in (DATA / "corpus.jsonl").open()]
    queries = {q["_id"]: q["text"] for q in map(json.loads, (DATA / "queries.jsonl").open())}
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    for line in list((DATA / "qrels" / "test.tsv").open())[1:]:
        qid, did, score = line.split()
        qrels[qid][did] = int(score)
    return corpus, {q: queries[q] for q in qrels}, qrels


def ndcg_at_10(ranked: Sequence[str], relevant: dict[str, int]) -> float:
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted(relevant.values(), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_100(ranked: Sequence[str], relevant: dict[str, int]) -> float:
    hits = sum(1 for d in ranked[:100] if relevant.get(d, 0) > 0)
    return hits / max(1, sum(1 for g in relevant.values() if g > 0))


def ingest(
    client: httpx.Client, collection: str, corpus: list[dict[str, str]], model: str
) -> tuple[float, int]:
    """Seconds to ingest the corpus and the chunks written: requests of INGEST_BATCH
    documents, INGEST_IN_FLIGHT at a time, so their jobs overlap as a busy client's would."""
    started = time.perf_counter()

    def post(start: int) -> str:
        docs = [
            {"id": d["_id"], "title": d["title"], "content": d["text"]}
            for d in corpus[start : start + INGEST_BATCH]
        ]
        reply = client.post(
            "/api/v1/ingest",
            json={"documents": docs, "collection": collection, "embedding_model": model},
        )
        reply.raise_for_status()
        return str(reply.json()["job_id"])

    # The first request alone: it creates the collection.
    job_ids = [post(0)]
    with ThreadPoolExecutor(INGEST_IN_FLIGHT) as pool:
        job_ids += pool.map(post, range(INGEST_BATCH, len(corpus), INGEST_BATCH))
    chunks = 0
    for job_id in job_ids:
        while True:
            reply = client.get(f"/api/v1/jobs/{job_id}")
            if reply.status_code == 503:
                TRANSIENT_503S.append(reply.text)
                time.sleep(1.0)  # as a client would: retry a poll that hit a 503
                continue
            if reply.status_code != 200:
                raise RuntimeError(f"GET job: {reply.status_code} {reply.text[:500]}")
            job = reply.json()  # the Job itself (API v1)
            if job["state"] in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED"):
                if job["state"] == "JOB_STATE_FAILED":
                    raise RuntimeError(
                        f"ingest failed: {job.get('failure_reason')}: {job.get('errors', [])[:3]}"
                    )
                chunks += int(job.get("chunks_done") or 0)  # int64: a JSON string
                break
            time.sleep(0.5)
    return time.perf_counter() - started, chunks


def raw_throughput(stack: Any, collection: str, variant: str, sample: int = 600) -> float:
    """Texts/s of the encoder in this process (one thread, like the service) on the texts
    ingest embedded for `collection` (title + chunk), in the service's batch size."""
    from pymongo import MongoClient

    mongo: MongoClient[dict[str, Any]] = MongoClient(f"mongodb://127.0.0.1:{stack.cfg.mongo_port}")
    with mongo:
        rows = mongo[stack.cfg.database]["chunks"].find(
            {"collection": collection}, {"title": 1, "text": 1}
        )
        texts = [f"{r['title']}\n{r['text']}" if r.get("title") else r["text"] for r in rows]
    texts = texts[:sample]
    enc = encoder(variant)  # type: ignore[arg-type]
    enc.encode(texts[:8])  # warm up
    started = time.perf_counter()
    for start in range(0, len(texts), 100):
        enc.encode(texts[start : start + 100])
    return len(texts) / (time.perf_counter() - started)


def forget_query_vectors(stack: Any, model: str, queries: dict[str, str]) -> int:
    """Deletes the embedder's cached vectors of `queries` (its Redis keys, by the key
    function it uses itself); returns how many there were."""
    import redis

    from ragline_embedder.cache import EmbeddingCache

    keys = [EmbeddingCache.key(TENANT, model, text) for text in queries.values()]
    client = redis.Redis(port=stack.cfg.redis_port)
    try:
        return int(client.delete(*keys)) if keys else 0
    finally:
        client.close()


def run_queries(
    client: httpx.Client,
    collection: str,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    mode: str,
    rerank: bool,
    latencies: list[float] | None = None,
) -> tuple[float, float]:
    ndcgs, recalls = [], []
    for qid, text in queries.items():
        started = time.perf_counter()
        reply = client.post(
            "/api/v1/search",
            json={
                "query": text,
                "collection": collection,
                "limit": 100,
                "mode": f"SEARCH_MODE_{mode.upper()}",
                "rerank": rerank,
            },
        )
        if latencies is not None:
            latencies.append(time.perf_counter() - started)
        reply.raise_for_status()
        ranked: list[str] = []
        for hit in reply.json()["hits"]:
            if hit["document_id"] not in ranked:
                ranked.append(hit["document_id"])
        ndcgs.append(ndcg_at_10(ranked, qrels[qid]))
        recalls.append(recall_at_100(ranked, qrels[qid]))
    return statistics.fmean(ndcgs), statistics.fmean(recalls)


def in_process_latency(
    mongo_port: int, database: str, collection: str, queries: dict[str, str]
) -> list[float]:
    """The same hybrid ranking on an index built in this process (query embedding
    included, as in the service), without the network, Envoy or the cache."""
    import asyncio

    from pymongo import AsyncMongoClient

    from ragline_core.corpus import visible_chunks
    from ragline_retriever.index import CollectionIndex, IndexParams
    from ragline_retriever.ranking import fuzzy_terms, rrf

    async def build() -> CollectionIndex:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            f"mongodb://127.0.0.1:{mongo_port}"
        )
        index = CollectionIndex(384, IndexParams())
        by_doc: dict[str, list[Any]] = defaultdict(list)
        async for chunk in visible_chunks(client[database], "dev-1", collection):
            by_doc[chunk.document_id].append(chunk)
        for doc, chunks in by_doc.items():
            index.replace_document(doc, chunks)
        await client.close()
        return index

    index = asyncio.run(build())
    enc = encoder("fp32")
    allowed = index.mask(None)
    times = []
    for text in queries.values():
        started = time.perf_counter()
        vector = enc.encode([text]).vectors[0]
        dense = index.dense(vector, 100, allowed)
        terms, _ = fuzzy_terms(text, index.postings, index.surface)
        keyword = index.bm25(terms, 100, allowed)
        rrf([(dense, 1.0), (keyword, 1.0)], 60)
        times.append(time.perf_counter() - started)
    return times


def ann_benchmark(base: np.ndarray, n: int = 100_000, queries: int = 500) -> dict[str, float]:
    """HNSW (the retriever's settings) vs exact on n vectors shaped like real embeddings."""
    rng = np.random.default_rng(7)
    picks = base[rng.integers(0, len(base), n)]
    vectors = picks + rng.normal(0, 0.05, picks.shape).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    qs = vectors[rng.integers(0, n, queries)] + rng.normal(0, 0.05, (queries, base.shape[1]))
    qs = (qs / np.linalg.norm(qs, axis=1, keepdims=True)).astype(np.float32)
    faiss.omp_set_num_threads(1)
    started = time.perf_counter()
    index = faiss.IndexHNSWFlat(base.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 80
    index.add(vectors)
    build = time.perf_counter() - started
    index.hnsw.efSearch = 128
    exact = np.argsort(-(qs @ vectors.T), axis=1)[:, :10]
    times, recalls = [], []
    for i, q in enumerate(qs):
        t = time.perf_counter()
        _, ids = index.search(q.reshape(1, -1), 10)
        times.append(time.perf_counter() - t)
        recalls.append(len(set(ids[0]) & set(exact[i])) / 10)
    t_exact = []
    for q in qs[:100]:
        t = time.perf_counter()
        np.argsort(-(vectors @ q))[:10]
        t_exact.append(time.perf_counter() - t)
    return {
        "recall@10": statistics.fmean(recalls),
        "p50_ms": statistics.median(times) * 1e3,
        "exact_p50_ms": statistics.median(t_exact) * 1e3,
        "build_s": build,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="SciFact retrieval benchmark")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--skip-int8", action="store_true")
    args = parser.parse_args(argv)
    corpus, queries, qrels = load()
    queries = dict(list(queries.items())[: args.queries])
    variants = {"fp32": "all-MiniLM-L6-v2"}
    if not args.skip_int8:
        variants["int8"] = "all-MiniLM-L6-v2-int8"
    results: dict[str, dict[str, tuple[float, float]]] = {}
    with (
        bench_stack(INDEX_RECONCILE_INTERVAL_S=str(RECONCILE_S)) as stack,
        httpx.Client(base_url=stack.cfg.base_url, timeout=600, headers=DEV_HEADERS) as client,
    ):
        throughput: dict[str, tuple[float, float, float]] = {}
        for variant, model in variants.items():
            seconds, chunks = ingest(client, f"scifact-{variant}", corpus, model)
            raw = raw_throughput(stack, f"scifact-{variant}", variant)
            throughput[variant] = (len(corpus) / seconds, chunks / seconds, raw)
        # Writes have stopped: let the reconciliation run twice, then compare.
        time.sleep(2 * RECONCILE_S + 3)
        checked = {v: consistency.check(stack, f"scifact-{v}") for v in variants}
        enc = encoder("fp32")
        latencies: list[float] = []
        for variant in variants:
            results[variant] = {}
            for label, mode, rerank in (
                ("dense", "dense", False),
                ("keyword", "keyword", False),
                ("hybrid", "hybrid", False),
                ("hybrid+rerank", "hybrid", True),
            ):
                if variant == "int8" and label != "dense":
                    continue
                lat = latencies if (variant, label) == ("fp32", "hybrid") else None
                # Each pass embeds its queries (the previous pass cached them).
                forget_query_vectors(stack, variants[variant], queries)
                results[variant][label] = run_queries(
                    client, f"scifact-{variant}", queries, qrels, mode, rerank, lat
                )
        local = in_process_latency(
            stack.cfg.mongo_port, stack.cfg.database, "scifact-fp32", queries
        )
    print(f"\nSciFact test ({len(queries)} queries), document-level metrics")
    print(f"{'mode':<16}{'nDCG@10':>9}{'recall@100':>12}   published nDCG@10")
    for label, (ndcg, recall) in results["fp32"].items():
        print(f"{label:<16}{ndcg:>9.3f}{recall:>12.3f}   {PUBLISHED[label]}")
    if "int8" in results:
        ndcg, recall = results["int8"]["dense"]
        print(
            f"{'dense int8':<16}{ndcg:>9.3f}{recall:>12.3f}   "
            f"(fp32 - int8 = {results['fp32']['dense'][0] - ndcg:+.3f})"
        )
    print(
        "\ningest through REST (title + text, chunked) vs the raw embedder in process on "
        "the same chunk texts"
    )
    print(f"  {'model':<8}{'documents/s':>13}{'chunks/s':>10}{'raw texts/s':>13}{'ratio':>8}")
    for variant, (docs_s, chunks_s, raw) in throughput.items():
        print(f"  {variant:<8}{docs_s:>13.1f}{chunks_s:>10.1f}{raw:>13.1f}{chunks_s / raw:>8.2f}")
    if TRANSIENT_503S:
        print(
            f"  ({len(TRANSIENT_503S)} job polls got a 503 and were retried; the first: "
            f"{TRANSIENT_503S[0]})"
        )
    print("\nthe retriever's index vs the database once ingest stopped (overlapping jobs)")
    print(
        f"  {'model':<8}{'db chunks':>10}{'index chunks':>14}{'same ids':>10}"
        f"{'gap metric':>12}   repairs"
    )
    for variant, c in checked.items():
        print(
            f"  {variant:<8}{c.db_chunks:>10}{c.index_chunks:>14}{c.same_ids!s:>10}"
            f"{c.gap_metric if c.gap_metric is not None else '-':>12}   {c.repairs or 'none'}"
        )
    print("\nhybrid search latency (query embedding included), ms:")
    print(f"  {'path':<26}{'p50':>8}{'p95':>8}")
    for label, values in (("through Envoy (REST)", latencies), ("in process", local)):
        print(
            f"  {label:<26}{statistics.median(values) * 1e3:>8.1f}"
            f"{np.percentile(values, 95) * 1e3:>8.1f}"
        )
    base = enc.encode([f"{d['title']}\n{d['text']}" for d in corpus[:2000]]).vectors
    ann = ann_benchmark(base)
    print(
        f"\nANN (faiss HNSW M=32 efC=80 efS=128, 1 thread) on 100k vectors: recall@10 "
        f"{ann['recall@10']:.4f} vs exact, p50 {ann['p50_ms']:.3f} ms (exact "
        f"{ann['exact_p50_ms']:.2f} ms), build {ann['build_s']:.1f} s"
    )


if __name__ == "__main__":
    main()
