"""The local embedding models side by side on BEIR SciFact, or on the SQuAD open-book set
as a second public retrieval set: gain beside cost.

    .venv/bin/python -m bench embedding-models [--set scifact|squad] [--queries N] [--api]
                                               [--api-only] [--models a,b]

1. In process, the published protocol (MTEB): each whole document (title + " " + text, cut
   at the model's token limit) and each test query (with the model's query instruction) is
   embedded once, exact cosine search, nDCG@10 and recall@100 beside the published MTEB
   figure. This is the check that the shipped weights are the published model: a model is
   trusted only within 0.005 of its figure. Cost: documents/s (one thread, as the service
   runs) and p50 latency of one query.
2. With --api, through the product (REST, a throwaway stack): ingest per model (chunked, as a
   user's documents are), then dense, keyword, hybrid and hybrid+rerank nDCG@10, with the
   ingest rate. `--api-only` skips step 1 (on SciFact it encodes the whole corpus once more
   per model: about an hour for bge on 2 cores).

`--set squad` (../shared/datasets/squad-rag, its 414 paragraphs as the corpus, each question a
query whose one relevant document is its gold paragraph) is a set neither model, nor the
hybrid fusion or the reranker, was chosen on. It has no published figure to verify against.

Nothing here was tuned: the models run with their published settings.
"""

from __future__ import annotations

import argparse
import re
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
from tests.support import squad_qa

# Published SciFact test nDCG@10 (MTEB results repository).
PUBLISHED = {
    LOCAL_MODEL: 0.645,  # sentence-transformers/all-MiniLM-L6-v2
    BGE_MODEL: 0.71273,  # BAAI/bge-small-en-v1.5 @5c38ec7, mteb 1.20.0
}
TOLERANCE = 0.005

Corpus = list[dict[str, str]]
Queries = dict[str, str]
Qrels = dict[str, dict[str, int]]


def load_set(name: str) -> tuple[Corpus, Queries, Qrels]:
    """A retrieval set in BEIR's shape: SciFact's test split, or the SQuAD set's paragraphs
    as documents and its questions as queries (one relevant document each)."""
    if name == "scifact":
        return load()
    if not squad_qa.available():
        raise SystemExit(f"the QA set is not at {squad_qa.DATASET}")
    qa = squad_qa.load()

    def doc_id(paragraph_id: str) -> str:  # "Normans#3": the API's ids take no "#"
        return re.sub(r"[^A-Za-z0-9_.-]", "_", paragraph_id)

    corpus = [{"_id": doc_id(p.id), "title": p.title, "text": p.text} for p in qa.paragraphs]
    queries = {q.id: q.question for q in qa.questions}
    qrels = {q.id: {doc_id(q.paragraph_id): 1} for q in qa.questions}
    return corpus, queries, qrels


def encoder(model: str) -> MiniLMEncoder | BgeEncoder:
    return BgeEncoder(threads=1) if model == BGE_MODEL else MiniLMEncoder("fp32", threads=1)


def in_process(model: str, corpus: Corpus, queries: Queries, qrels: Qrels) -> dict[str, float]:
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
    models: Sequence[str], corpus: Corpus, queries: Queries, qrels: Qrels, name: str
) -> dict[str, dict[str, float]]:
    from bench.retrieval import run_queries

    out: dict[str, dict[str, float]] = {}
    with (
        bench_stack() as stack,
        httpx.Client(base_url=stack.cfg.base_url, timeout=900, headers=DEV_HEADERS) as client,
    ):
        for model in models:
            collection = f"{name}-{model.lower().replace('.', '-')}"
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
    parser = argparse.ArgumentParser(description="local embedding models, gain beside cost")
    parser.add_argument("--set", choices=("scifact", "squad"), default="scifact")
    parser.add_argument("--queries", type=int, default=0, help="0 = every query of the set")
    parser.add_argument("--models", default=f"{LOCAL_MODEL},{BGE_MODEL}")
    parser.add_argument("--api", action="store_true", help="also ingest and search via REST")
    parser.add_argument("--api-only", action="store_true", help="only the REST part (step 2)")
    args = parser.parse_args(argv)
    models = args.models.split(",")
    corpus, queries, qrels = load_set(args.set)
    if args.queries:
        queries = dict(list(queries.items())[: args.queries])
    # Only SciFact's full test split has published figures to verify the weights against.
    published = PUBLISHED if args.set == "scifact" and len(queries) == 300 else {}
    if not args.api_only:
        _print_in_process(args.set, models, corpus, queries, qrels, published)
    if args.api or args.api_only:
        _print_api(through_api(models, corpus, queries, qrels, args.set))


def _print_in_process(
    name: str,
    models: Sequence[str],
    corpus: Corpus,
    queries: Queries,
    qrels: Qrels,
    published: dict[str, float],
) -> None:
    print(
        f"{name}: {len(corpus)} documents, {len(queries)} queries, in process (MTEB "
        "protocol: whole documents, exact cosine)"
    )
    print(
        f"  {'model':<20}{'nDCG@10':>9}{'published':>11}{'diff':>8}  {'verified':<9}"
        f"{'recall@100':>11}{'docs/s':>8}{'query p50 ms':>14}"
    )
    for model in models:
        r = in_process(model, corpus, queries, qrels)
        if model in published:
            diff = r["ndcg"] - published[model]
            ok = "yes" if abs(diff) <= TOLERANCE else "no"
            versus = f"{published[model]:>11.4f}{diff:>+8.4f}  {ok:<9}"
        else:
            versus = f"{'-':>11}{'-':>8}  {'-':<9}"
        print(
            f"  {model:<20}{r['ndcg']:>9.4f}{versus}"
            f"{r['recall']:>11.3f}{r['docs_per_s']:>8.1f}{r['p50_ms']:>14.1f}"
        )


def _print_api(rows: dict[str, dict[str, float]]) -> None:
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
