"""Local-embedder throughput in process vs through the REST API, side by side.

    make bench            (or: .venv/bin/python -m bench embedder [--seconds 4])

For short queries (~12 words) and passages (~200 words) at batch sizes 1, 16 and 64, prints
texts/s of MiniLMEncoder.encode in this process and of POST /api/v1/embeddings through Envoy
(one request in flight, as a single client sees it), for fp32 and int8, with ratios. The
service path runs on a throwaway stack with the same one inference thread; its Redis cache
is flushed before each cell and no text repeats within a cell, so nothing is served cached.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import httpx
import redis

from bench.minilm_inprocess import PASSAGE_WORDS, QUERY_WORDS, encoder, measure, sample_texts
from bench.stack import DEV_HEADERS, bench_stack

BATCH_SIZES = (1, 16, 64)
MODELS = {"fp32": "all-MiniLM-L6-v2", "int8": "all-MiniLM-L6-v2-int8"}


def measure_rest(
    client: httpx.Client, model: str, texts: Sequence[str], batch_size: int, seconds_budget: float
) -> float:
    """Texts/s through the API; stops at the budget or when the distinct texts run out."""
    client.post("/api/v1/embeddings", json={"text": "warm up", "model": model})
    done = 0
    start = time.perf_counter()
    for offset in range(0, len(texts) - batch_size + 1, batch_size):
        batch = list(texts[offset : offset + batch_size])
        response = client.post("/api/v1/embeddings", json={"texts": batch, "model": model})
        response.raise_for_status()
        assert response.json()["cached_count"] == 0, "benchmark texts must not be cached"
        done += len(batch)
        if time.perf_counter() - start >= seconds_budget:
            break
    return done / (time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="embedder throughput: in process vs REST")
    parser.add_argument("--seconds", type=float, default=4.0, help="budget per cell")
    args = parser.parse_args(argv)
    workloads = {
        f"query ~{QUERY_WORDS}w": sample_texts(QUERY_WORDS, 3000),
        f"passage ~{PASSAGE_WORDS}w": sample_texts(PASSAGE_WORDS, 400),
    }
    for variant in MODELS:
        encoder(variant)  # type: ignore[arg-type]
    with (
        bench_stack() as stack,
        httpx.Client(base_url=stack.cfg.base_url, timeout=300, headers=DEV_HEADERS) as client,
    ):
        cache = redis.Redis(port=stack.cfg.redis_port)
        print("\nembedder throughput, texts/s (1 inference thread; REST = one request in flight)")
        header = (
            f"{'workload':<16}{'batch':>6}{'fp32 proc':>11}{'fp32 REST':>11}{'REST/proc':>10}"
            f"{'int8 proc':>11}{'int8 REST':>11}{'REST/proc':>10}{'int8/fp32':>10}"
        )
        print(header)
        print("-" * len(header))
        for name, texts in workloads.items():
            for batch in BATCH_SIZES:
                row = {}
                for variant, model in MODELS.items():
                    # In process and REST back to back, so machine noise hits both alike.
                    proc = measure(variant, texts, batch, args.seconds)  # type: ignore[arg-type]
                    cache.flushdb()
                    rest = measure_rest(client, model, texts, batch, args.seconds)
                    row[variant] = (proc, rest)
                (fp_p, fp_r), (i8_p, i8_r) = row["fp32"], row["int8"]
                print(
                    f"{name:<16}{batch:>6}{fp_p:>11.1f}{fp_r:>11.1f}{fp_r / fp_p:>9.0%} "
                    f"{i8_p:>11.1f}{i8_r:>11.1f}{i8_r / i8_p:>9.0%} {i8_p / fp_p:>9.2f}x",
                    flush=True,
                )


if __name__ == "__main__":
    main()
