"""The Python SDK's cost on a REST search, and its gRPC transport against REST.

    .venv/bin/python -m bench gateway --sdk-only [--rounds 5] [--requests 200]

One request in flight at a time (a user's call, not a load test) of `POST /api/v1/search`
(hybrid, 10 hits with metadata) on a small collection, through the same Envoy, from this
process, in four columns interleaved request by request (each turn starting one column
later, so a shared machine's load swings hit every column alike):
  - `raw httpx`:   httpx.Client.post(...).json(): the floor any Python REST client pays.
  - `SDK REST`:    ragline_client.Client.search: request building, retries' bookkeeping,
                   decoding into SearchResults dataclasses.
  - `raw gRPC`:    the generated stub (ragline_client._proto) on a grpc channel.
  - `SDK gRPC`:    Client(prefer_grpc=True).search, into the same SearchResults.
p50/p95 in ms over every request of every round; target: SDK REST p50 <= 1.10 x raw httpx.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import httpx

from ragline_client import Client, DocumentInput
from ragline_client._proto.ragline.retriever.v1 import (
    retriever_service_pb2 as pb,
)
from ragline_client._proto.ragline.retriever.v1 import (
    retriever_service_pb2_grpc as pb_grpc,
)
from ragline_stack.stack import Stack

KEY = "dev-key-1"
QUERY = "how do proxies translate JSON into gRPC calls?"
TOPICS = ["proxy", "store", "search", "model", "queue"]


def _documents(n: int) -> list[DocumentInput]:
    return [
        DocumentInput(
            f"Document {i} explains how component {i} handles JSON, gRPC and {TOPICS[i % 5]} "
            f"traffic; it also covers retries, deadlines and back-off number {i}.",
            title=f"Doc {i}",
            metadata={"topic": TOPICS[i % 5], "rank": i},
        )
        for i in range(n)
    ]


def measure(stack: Stack, rounds: int, requests: int) -> dict[str, list[float]]:
    """Latencies (seconds) per column."""
    base = stack.cfg.base_url
    collection = f"bench-sdk-{uuid.uuid4().hex[:6]}"
    body = {"query": QUERY, "collection": collection, "limit": 10}
    headers = {"authorization": f"Bearer {KEY}"}
    with (
        Client(base, KEY) as rest,
        Client(base, KEY, prefer_grpc=True) as over_grpc,
        httpx.Client(base_url=base, headers=headers) as raw,
        grpc.insecure_channel(f"127.0.0.1:{stack.cfg.api_port}") as channel,
    ):
        rest.ingest(collection, _documents(60), wait=True)
        stub = pb_grpc.RetrieverServiceStub(channel)
        metadata = (("authorization", f"Bearer {KEY}"),)
        request = pb.SearchRequest(query=QUERY, collection=collection, limit=10)

        def raw_httpx() -> Any:
            reply = raw.post("/api/v1/search", json=body, timeout=30)
            reply.raise_for_status()
            return reply.json()

        columns: dict[str, Callable[[], Any]] = {
            "raw httpx": raw_httpx,
            "SDK REST": lambda: rest.search(QUERY, collection, limit=10),
            "raw gRPC": lambda: stub.Search(request, metadata=metadata, timeout=30),
            "SDK gRPC": lambda: over_grpc.search(QUERY, collection, limit=10),
        }
        # Same answers first: the columns do the same work.
        assert len(rest.search(QUERY, collection, limit=10).hits) == 10
        assert rest.search(QUERY, collection, limit=10) == over_grpc.search(
            QUERY, collection, limit=10
        )
        for call in columns.values():  # warm connections and caches
            for _ in range(20):
                call()
        times: dict[str, list[float]] = {name: [] for name in columns}
        names = list(columns)
        # Interleaved request by request (each turn starting one column later): on a shared
        # machine the load swings within seconds, and blocks of one column would see it
        # unevenly; this way every column meets the same load.
        for turn in range(rounds * requests):
            shift = turn % len(names)
            for name in names[shift:] + names[:shift]:
                call = columns[name]
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
        rest.delete_collection(collection)
    return times


def report(times: dict[str, list[float]], rounds: int, requests: int) -> None:
    def p(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=100)[int(q) - 1] * 1000 if q < 100 else 0.0

    p50 = {name: statistics.median(v) * 1000 for name, v in times.items()}
    print(
        f"\nPython SDK: POST /api/v1/search (10 hits), one request in flight, "
        f"{rounds * requests} requests per column, interleaved"
    )
    print("| client | p50 ms | p95 ms | p50 vs raw httpx | p50 vs SDK REST |")
    print("|---|---|---|---|---|")
    for name, values in times.items():
        print(
            f"| {name} | {p50[name]:.2f} | {p(values, 95):.2f} | "
            f"{p50[name] / p50['raw httpx']:.2f}x | {p50[name] / p50['SDK REST']:.2f}x |"
        )
    overhead = p50["SDK REST"] / p50["raw httpx"] - 1
    verdict = "met" if overhead <= 0.10 else "MISSED"
    print(f"SDK REST adds {overhead:+.1%} to raw httpx's p50 (target <= +10%: {verdict})")
