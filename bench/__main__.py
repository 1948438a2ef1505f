"""python -m bench [name ...] — runs the named benchmarks (default: all)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from bench import chat, embedder, embedding_models, ferretdb, gateway, qa, retrieval

BENCHMARKS: dict[str, Callable[[Sequence[str]], None]] = {
    "embedder": embedder.main,
    "retrieval": retrieval.main,
    "chat": chat.main,
    "gateway": gateway.main,
    "ferretdb": ferretdb.main,
    "qa": qa.main,
    "embedding-models": embedding_models.main,
}


def main() -> None:
    names = sys.argv[1:2] or list(BENCHMARKS)
    rest = sys.argv[2:]
    for name in names:
        if name not in BENCHMARKS:
            raise SystemExit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
        BENCHMARKS[name](rest)


if __name__ == "__main__":
    main()
