"""Which filters FerretDB serves from its _id index, on one table, side by side.

    .venv/bin/python -m bench ferretdb [--docs 5000] [--ops 200]

FerretDB's SQLite backend answers a filter from an index only through the _id lookup that
scripts/install_ferretdb.sh patches in (the stock build scans for any filter with more
than `_id` in it); anything else reads and parses every document. The table shows the
median time of one operation on a collection of `--docs` documents (~1 KB each) for:
  - `{_id}`:            find_one by _id alone;
  - `{_id, state}`:     find_one by _id plus another field (a compare-and-set's filter);
  - `update {_id, state}`: update_one with that filter (what ingest and jobs do);
  - `{state}`:          a filter without _id: a full read of the table, what every filter
                        with more than _id cost before the patch.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from ragline_stack.stack import Stack, free_port_config


def _median_ms(op: Callable[[int], Any], ops: int) -> float:
    times = []
    for i in range(ops):
        started = time.perf_counter()
        op(i)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="FerretDB filters with and without _id")
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--ops", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ragline-bench-ferretdb-") as tmp:
        stack = Stack(free_port_config(Path(tmp)))
        try:
            stack.start_ferretdb()
            stack.wait_port("ferretdb", stack.cfg.mongo_port, 60)
            client: MongoClient[dict[str, Any]] = MongoClient(
                f"mongodb://127.0.0.1:{stack.cfg.mongo_port}"
            )
            with client:
                rows = _measure(client["bench"]["docs"], args.docs, args.ops)
        finally:
            stack.stop_all()
    base = rows[0][1]
    print(f"\nFerretDB (SQLite), {args.docs} documents, median of {args.ops} operations\n")
    print(f"{'filter':<24}{'ms':>8}{'vs {_id}':>10}")
    for name, ms in rows:
        print(f"{name:<24}{ms:>8.2f}{ms / base:>9.1f}x")


def _measure(docs: Any, count: int, ops: int) -> list[tuple[str, float]]:
    payload = "x" * 1000
    docs.insert_many(
        [{"_id": f"doc/{i}", "state": "open", "n": i, "payload": payload} for i in range(count)]
    )

    def key(i: int) -> str:
        return f"doc/{(i * 7919) % count}"

    scan_ops = max(5, ops // 20)  # a full read is slow: fewer samples
    by_id = _median_ms(lambda i: docs.find_one({"_id": key(i)}), ops)
    by_id_and = _median_ms(lambda i: docs.find_one({"_id": key(i), "state": "open"}), ops)
    update = _median_ms(
        lambda i: docs.update_one({"_id": key(i), "state": "open"}, {"$inc": {"n": 1}}), ops
    )
    scan = _median_ms(lambda i: docs.find_one({"state": f"no-{i}"}), scan_ops)
    return [
        ("{_id}", by_id),
        ("{_id, state}", by_id_and),
        ("update {_id, state}", update),
        ("{state} (full read)", scan),
    ]


if __name__ == "__main__":
    main()
