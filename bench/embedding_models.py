"""The local embedding models side by side on BEIR SciFact: gain beside cost.

    .venv/bin/python -m bench embedding-models [--queries 300] [--api] [--models a,b]

1. In process, the published protocol (MTEB): each whole document (title + " " + text, cut
   at the model's token limit) and each test query (with the model's query instruction) is
   embedded once, exact cosine search, nDCG@10 and recall@100 beside the published MTEB
   figure. This is the check that the shipped weights are the published model: a model is
   trusted only within 0.005 of its figure. Cost: documents/s (one thread, as the service
   runs) and p50 latency of one query.
2. With --api, through the product (REST, a throwaway stack): ingest per model (chunked, as a
   user's documents are), then dense, keyword, hybrid and hybrid+rerank nDCG@10, with the
   ingest rate.

Nothing here was tuned: the models run with their published settings.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import httpx
import numpy as np

from bench.retrieval import forget_query_vectors, ingest, load, ndcg_at_10, recall_at_100
from bench.stack import DEV_HEADERS, bench_stack
from ragline_core.embedding_models import BGE_MODEL, LOCAL_MODEL, resolve
from ragline_embedder.bge import BgeEncoder
from ragline_embedder.minilm import MiniLMEncoder

# Published SciFact test nDCG@10 (MTEB results repository).
PUBLISHED = {
    LOCAL_MODEL: 0.645,  # sentence-transformers/all-MiniLM-L6-v2
    BGE_MODEL: 0.71273,  # BAAI/bge-small-en-v1.5 @5c38ec7, mteb 1.20.0
}
TOLERANCE = 0.005


def encoder(model: str) -> MiniLMEncoder | BgeEncoder:
    return BgeEncoder(threads=1) if model == BGE_MODEL else MiniLMEncoder("fp32", threads=1)


def in_process(
    model: str, queries: dict[str, str], qrels: dict[str, dict[str, int]]
) -> dict[str, float]:
    corpus, _, _ = load()
    enc = encoder(model)
    prefix = resolve(model).query_prefix
    texts = [f"{d['title']} {d['text']}".strip() for d in corpus]
    started = time.perf_counter()
    docs = np.concatenate([enc.encode(texts[s : s + 64]).vectors for s in range(0, len(texts), 64)])
    docs_per_s = len(texts) / (time.perf_counter() - started)
    latencies, ndcgs, recalls = [], [], []
    ids = [d["_id"] for d in corpus]
    for qid, text in queries.items():
        t0 = time.perf_counter()
        vector = enc.encode([prefix + text]).vectors[0]
        latencies.append(time.perf_counter() - t0)
        ranked = [ids[i] for i in np.argsort(-(docs @ vector))[:100]]
        ndcgs.append(ndcg_at_10(ranked, qrels[qid]))
        recalls.append(recall_at_100(ranked, qrels[qid]))
    return {
        "ndcg": statistics.fmean(ndcgs),
        "recall": statistics.fmean(recalls),
        "docs_per_s": docs_per_s,
        "p50_ms": statistics.median(latencies) * 1e3,
    }


def through_api(
    models: Sequence[str], queries: dict[str, str], qrels: dict[str, dict[str, int]]
) -> dict[str, dict[str, float]]:
    from bench.retrieval import run_queries

    corpus, _, _ = load()
    out: dict[str, dict[str, float]] = {}
    with (
        bench_stack() as stack,
        httpx.Client(base_url=stack.cfg.base_url, timeout=900, headers=DEV_HEADERS) as client,
    ):
        for model in models:
            collection = f"scifact-{model.lower().replace('.', '-')}"
            seconds, chunks = ingest(client, collection, corpus, model)
            row = {"docs_per_s": len(corpus) / seconds, "chunks_per_s": chunks / seconds}
            prefix = resolve(model).query_prefix
            for label, mode, rerank in (
                ("dense", "dense", False),
                ("keyword", "keyword", False),
                ("hybrid", "hybrid", False),
                ("hybrid+rerank", "hybrid", True),
            ):
                # Each pass embeds its queries (the embedder caches what it received).
                forget_query_vectors(stack, model, {q: prefix + t for q, t in queries.items()})
                latencies: list[float] = []
                row[label], _ = run_queries(
                    client, collection, queries, qrels, mode, rerank, latencies
                )
                if label == "hybrid":
                    row["hybrid_p50_ms"] = statistics.median(latencies) * 1e3
            out[model] = row
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="local embedding models on SciFact")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--models", default=f"{LOCAL_MODEL},{BGE_MODEL}")
    parser.add_argument("--api", action="store_true", help="also ingest and search via REST")
    args = parser.parse_args(argv)
    models = args.models.split(",")
    _, queries, qrels = load()
    queries = dict(list(queries.items())[: args.queries])

    print(f"SciFact test, {len(queries)} queries, in process (MTEB protocol: whole documents)")
    print(
        f"  {'model':<20}{'nDCG@10':>9}{'published':>11}{'diff':>8}  {'verified':<9}"
        f"{'recall@100':>11}{'docs/s':>8}{'query p50 ms':>14}"
    )
    for model in models:
        r = in_process(model, queries, qrels)
        diff = r["ndcg"] - PUBLISHED[model]
        ok = "yes" if abs(diff) <= TOLERANCE and len(queries) == 300 else "no"
        print(
            f"  {model:<20}{r['ndcg']:>9.4f}{PUBLISHED[model]:>11.4f}{diff:>+8.4f}  {ok:<9}"
            f"{r['recall']:>11.3f}{r['docs_per_s']:>8.1f}{r['p50_ms']:>14.1f}"
        )
    if not args.api:
        return
    rows = through_api(models, queries, qrels)
    print("\nthrough the API (chunked ingest, document-level metrics), nDCG@10")
    labels = ("dense", "keyword", "hybrid", "hybrid+rerank")
    print(
        f"  {'model':<20}"
        + "".join(f"{x:>15}" for x in labels)
        + f"{'ingest docs/s':>15}{'hybrid p50 ms':>15}"
    )
    for model, row in rows.items():
        print(
            f"  {model:<20}"
            + "".join(f"{row[x]:>15.3f}" for x in labels)
            + f"{row['docs_per_s']:>15.1f}{row['hybrid_p50_ms']:>15.1f}"
        )


if __name__ == "__main__":
    main()
