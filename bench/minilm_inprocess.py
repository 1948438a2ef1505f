"""In-process throughput of the MiniLM encoder, fp32 vs int8.

    .venv/bin/python bench/minilm_inprocess.py [--seconds 4]

Prints texts/s for short queries (~12 words) and passages (~200 words, which tokenise past
the 256-token limit) at several batch sizes. Timings include tokenisation, as a caller of
MiniLMEncoder.encode sees them. Texts come from the SciFact corpus next to the repo when it
exists, else from a seeded generator, so every run measures the same inputs.

`measure()` is importable (no work at import time) for side-by-side runs against other paths.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from ragline_embedder.minilm import MiniLMEncoder

Variant = Literal["fp32", "int8"]

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "scifact" / "corpus.jsonl"
QUERY_WORDS = 12
PASSAGE_WORDS = 200
BATCH_SIZES = (1, 16, 64)
# Seeded filler when the corpus is absent: common English plus abstract-like words.
FILLER_WORDS = (
    "the of and to in a is that for it as was with be by on not he this are or his from at "
    "which but have an they you were her she there one all we their has been if more when "
    "will would who so no protein cell expression patients study results increased analysis "
    "data model clinical mice levels associated response treatment effect significant"
)

_encoders: dict[tuple[Variant, int], MiniLMEncoder] = {}


def encoder(variant: Variant, threads: int = 1) -> MiniLMEncoder:
    """One encoder per (variant, threads), built on first use and reused across measurements."""
    key = (variant, threads)
    if key not in _encoders:
        _encoders[key] = MiniLMEncoder(variant, threads=threads)
    return _encoders[key]


def measure(
    variant: Variant,
    texts: Sequence[str],
    batch_size: int,
    seconds_budget: float,
    *,
    threads: int = 1,
) -> float:
    """Texts per second encoding `texts` in calls of batch_size, for about seconds_budget.

    Cycles through texts; always completes at least one call. A one-text warm-up call (not
    timed) creates the session first.
    """
    if not texts or batch_size < 1:
        raise ValueError("need at least one text and batch_size >= 1")
    enc = encoder(variant, threads)
    pool = list(texts)
    while len(pool) < batch_size:
        pool += texts
    batches = [pool[i : i + batch_size] for i in range(0, len(pool) - batch_size + 1, batch_size)]
    enc.encode(batches[0][:1])
    done = 0
    start = time.perf_counter()
    while True:
        batch = batches[(done // batch_size) % len(batches)]
        enc.encode(batch)
        done += len(batch)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds_budget:
            return done / elapsed


def sample_texts(words: int, count: int, corpus: Path = CORPUS) -> list[str]:
    """count texts of `words` words: the start of SciFact abstracts, or seeded filler text."""
    texts: list[str] = []
    if corpus.is_file():
        with corpus.open(encoding="utf-8") as f:
            for line in f:
                tokens = str(json.loads(line).get("text", "")).split()
                if len(tokens) >= words:
                    texts.append(" ".join(tokens[:words]))
                    if len(texts) == count:
                        return texts
    rng = random.Random(1234)
    vocabulary = FILLER_WORDS.split()
    while len(texts) < count:
        texts.append(" ".join(rng.choice(vocabulary) for _ in range(words)))
    return texts


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=4.0, help="budget per cell")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads per encoder")
    args = parser.parse_args(argv)

    workloads = {
        f"query ~{QUERY_WORDS}w": sample_texts(QUERY_WORDS, 512),
        f"passage ~{PASSAGE_WORDS}w": sample_texts(PASSAGE_WORDS, 128),
    }
    started = time.perf_counter()
    for variant in ("fp32", "int8"):
        encoder(variant, args.threads)  # build/load outside the timed cells
    print(f"encoders ready in {time.perf_counter() - started:.1f}s; threads={args.threads}")
    print(f"{'workload':<16}{'batch':>6}{'fp32 texts/s':>15}{'int8 texts/s':>15}{'int8/fp32':>11}")
    for name, texts in workloads.items():
        for batch_size in BATCH_SIZES:
            # fp32 and int8 back to back, so machine noise hits both similarly.
            fp32 = measure("fp32", texts, batch_size, args.seconds, threads=args.threads)
            int8 = measure("int8", texts, batch_size, args.seconds, threads=args.threads)
            print(
                f"{name:<16}{batch_size:>6}{fp32:>15.1f}{int8:>15.1f}{int8 / fp32:>10.2f}x",
                flush=True,
            )
    print(f"total {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
