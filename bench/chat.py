"""python -m bench chat — the chat models on the labelled QA set, and the local model's
time to first token and tokens/s through the whole stack (Envoy SSE) vs in process.

QA: tests/data/chat_qa/qa.json (6 fictional documents, 20 questions). Accuracy: the answer
contains an expected string. Citation correctness: the answer has citations, every quote
is verbatim in its chunk, and one cites the gold document.

Latency: the same questions, same retrieved passages and the same prompt builder, greedy
decoding, max_tokens 64. "in process" calls SmolLM2 through ragline's LocalProvider in this
process; "via Envoy" is POST /api/v1/chat with "stream": true, timed at the client from
sending the request to the first `delta` event (so it includes Envoy, the transcoder, the
chat service, query embedding and retrieval).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Sequence
from typing import Any

import httpx

from bench.stack import bench_stack
from ragline_chat.domain import ChatInput, Passage
from ragline_chat.models import ModelRegistry
from ragline_chat.providers.local import LocalProvider
from ragline_chat.service import ChatService, Limits, Prepared
from tests.support.chat_qa import Score, load_qa, score_answer

HEADERS = {"Authorization": "Bearer dev-key-1"}
MAX_TOKENS = 64


def ingest(client: httpx.Client, collection: str, docs: list[dict[str, str]]) -> dict[str, Any]:
    reply = client.post("/api/v1/ingest", json={"collection": collection, "documents": docs})
    reply.raise_for_status()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        hits = client.post(
            "/api/v1/search",
            json={
                "query": "any",
                "collection": collection,
                "limit": 100,
                "mode": "SEARCH_MODE_DENSE",
            },
        )
        if hits.status_code == 200:
            found = {h["chunk_id"]: h for h in hits.json()["hits"]}
            if len({h["document_id"] for h in found.values()}) >= len(docs):
                return found
        time.sleep(0.5)
    raise SystemExit("the QA documents never became searchable")


def evaluate(
    client: httpx.Client, collection: str, chunks: dict[str, Any], model: str
) -> tuple[Score, float]:
    qa = load_qa()
    texts = {cid: h["text"] for cid, h in chunks.items()}
    titles = {h["document_id"]: h["title"] for h in chunks.values()}
    score = Score()
    times = []
    for q in qa["questions"]:
        started = time.perf_counter()
        reply = client.post(
            "/api/v1/chat",
            json={
                "message": q["question"],
                "collection": collection,
                "model": model,
                "temperature": 0,
            },
        )
        times.append(time.perf_counter() - started)
        reply.raise_for_status()
        score_answer(score, q, reply.json(), texts, titles)
    return score, statistics.median(times)


def stream_via_envoy(
    client: httpx.Client, collection: str, question: str, model: str = "local"
) -> tuple[float, float, int]:
    """(time to first delta, tokens/s after it, completion tokens)."""
    body = {
        "message": question,
        "collection": collection,
        "model": model,
        "stream": True,
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
    }
    started = time.perf_counter()
    first = last = 0.0
    tokens = 0
    with client.stream("POST", "/api/v1/chat", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            if "delta" in event:
                last = time.perf_counter() - started
                first = first or last
            elif "usage" in event:
                tokens = int(event["usage"]["completion_tokens"])
    return first, (tokens - 1) / max(1e-9, last - first), tokens


async def stream_in_process(service: ChatService, prepared: Prepared) -> tuple[float, float, int]:
    model = service.registry.resolve("local")
    request = service._request(prepared, model)
    provider = service.providers["local"]
    started = time.perf_counter()
    first = last = 0.0
    tokens = 0
    async for chunk in provider.stream(request, 120):
        if chunk.text:
            last = time.perf_counter() - started
            first = first or last
        if chunk.completion_tokens is not None:
            tokens = chunk.completion_tokens
    return first, (tokens - 1) / max(1e-9, last - first), tokens


def passages(client: httpx.Client, collection: str, question: str) -> list[Passage]:
    reply = client.post(
        "/api/v1/search",
        json={
            "query": question,
            "collection": collection,
            "limit": Limits().default_retrieval_limit,
        },
    )
    reply.raise_for_status()
    return [
        Passage(
            i + 1,
            h["chunk_id"],
            h["document_id"],
            h["title"],
            h["text"],
            h["score"],
            h["chunk_index"],
        )
        for i, h in enumerate(reply.json()["hits"])
    ]


def main(args: Sequence[str]) -> None:
    rounds = int(args[0]) if args else 8
    qa = load_qa()
    local = LocalProvider(None, 1, 2048)
    local.load()
    if not local.configured:
        raise SystemExit(f"local model unavailable: {local.error}")
    registry = ModelRegistry()
    service = ChatService(
        registry,
        {"local": local},
        None,  # type: ignore[arg-type]  # generation only: no conversations are stored
        None,  # type: ignore[arg-type]  # and no retrieval (the context is given)
        Limits(),
        "extractive",
        [],
        "default",
    )
    with (
        bench_stack(CHAT_KEEPALIVE_SECONDS="30") as stack,
        httpx.Client(base_url=stack.cfg.base_url, timeout=300, headers=HEADERS) as client,
    ):
        collection = f"chatqa-{uuid.uuid4().hex[:6]}"
        chunks = ingest(client, collection, qa["documents"])
        questions = [q["question"] for q in qa["questions"]]
        # The stack's own share: first delta of the extractive model (no LLM) via Envoy SSE.
        overhead = [
            stream_via_envoy(client, collection, questions[i % len(questions)], "extractive")[0]
            for i in range(20)
        ]
        envoy: list[tuple[float, float, int]] = []
        inproc: list[tuple[float, float, int]] = []
        # Latency first, both sides cold to the same prompts; one warm-up each (not counted).
        for i in range(rounds + 1):
            q = questions[(i * 7) % len(questions)]
            prepared = Prepared(
                ChatInput(message=q, model="local", max_tokens=MAX_TOKENS, temperature=0.0),
                "bench",
                registry.resolve("local"),
                MAX_TOKENS,
                0.0,
                collection,
                q,
                passages(client, collection, q),
                [],
                "",
                None,
            )
            e = stream_via_envoy(client, collection, q)
            p = asyncio.run(stream_in_process(service, prepared))
            if i:
                envoy.append(e)
                inproc.append(p)
        print(f"\nchat QA set: {len(questions)} questions over {len(qa['documents'])} documents")
        print(f"{'model':<12}{'accuracy':>10}{'citations ok':>14}{'p50 answer s':>14}")
        for model in ("extractive", "local"):
            score, p50 = evaluate(client, collection, chunks, model)
            print(
                f"{model:<12}{score.accuracy:>10.0%}{score.citation_correctness:>14.0%}{p50:>14.2f}"
            )
    ttft_e = statistics.median(r[0] for r in envoy) * 1e3
    ttft_i = statistics.median(r[0] for r in inproc) * 1e3
    tps_e = statistics.median(r[1] for r in envoy)
    tps_i = statistics.median(r[1] for r in inproc)
    print(f"\nlocal model (SmolLM2-135M Q4_1, 1 thread), {rounds} questions, median")
    print(f"{'':<22}{'in process':>12}{'via Envoy SSE':>15}{'difference':>12}")
    print(
        f"{'time to first token':<22}{ttft_i:>10.0f}ms{ttft_e:>13.0f}ms{ttft_e - ttft_i:>10.0f}ms"
    )
    print(f"{'tokens/s after it':<22}{tps_i:>12.1f}{tps_e:>15.1f}{tps_e / tps_i:>11.0%}")
    print(
        "whole-stack path to the first event without a model (extractive via Envoy SSE): "
        f"p50 {statistics.median(overhead) * 1e3:.0f} ms, "
        f"p90 {statistics.quantiles(overhead, n=10)[-1] * 1e3:.0f} ms"
    )
    print("target: time to first token through the stack within 50 ms of the model's own")
