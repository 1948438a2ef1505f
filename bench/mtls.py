"""What mutual TLS between Envoy and the services costs per request (part of `bench gateway`).

    .venv/bin/python -m bench gateway --mtls-only [--seconds 5] [--concurrency 32] [--rounds 3]

Two throwaway stacks side by side, the same but for INTERNAL_TLS: one plaintext behind its
Envoy, one with every hop on mutual TLS (ragline_stack.local_ca). Each round loads both,
alternating which goes first, with an API key:
  - GET /api/v1/embedding-models: one hop on TLS (Envoy → embedder; the key check is
    cached by the gateway).
  - POST /api/v1/search: two hops (Envoy → retriever → embedder for the query vector),
    the collection holding a few documents and the same query every time.
Connections are long-lived HTTP/2 on both sides, so the figure is the record encryption
per request, not handshakes. Server CPU per request is summed over every process of a stack.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from pathlib import Path

import httpx

from bench.gateway import Cell, _load, _session_cpu
from bench.stack import DEV_HEADERS, bench_stack
from ragline_stack.stack import Stack

_SEARCH = "/api/v1/search"
_MODELS = "/api/v1/embedding-models"
_COLLECTION = "mtls-bench"
_DOCS = [
    {"title": f"note {i}", "content": f"Envoy forwards request {i} to the retriever over TLS."}
    for i in range(20)
]


def _prepare(stack: Stack, body_file: Path) -> None:
    """A small collection, searched once so both stacks serve the query warm."""
    base = stack.cfg.base_url
    reply = httpx.post(
        base + "/api/v1/ingest",
        json={"collection": _COLLECTION, "documents": _DOCS},
        headers=DEV_HEADERS,
        timeout=120,
    )
    reply.raise_for_status()
    query = json.loads(body_file.read_text())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = httpx.post(base + _SEARCH, json=query, headers=DEV_HEADERS, timeout=30)
        if found.status_code == 200 and found.json().get("hits"):
            return
        time.sleep(0.3)
    raise SystemExit(f"{base}: the bench collection never became searchable")


def _stack_pids(stack: Stack) -> list[int]:
    return [pid for name in stack.components() if (pid := stack.pid(name))]


def measure(args: argparse.Namespace) -> dict[str, Cell]:
    cells: dict[str, Cell] = {}
    with contextlib.ExitStack() as running:
        stacks = {
            "plaintext": running.enter_context(bench_stack()),
            "mutual TLS": running.enter_context(bench_stack(internal_tls=True)),
        }
        body_file = stacks["plaintext"].cfg.run_dir / "search.json"
        body_file.write_text(
            json.dumps({"query": "which request goes over TLS", "collection": _COLLECTION})
        )
        for stack in stacks.values():
            _prepare(stack, body_file)
        routes = {
            "GET models (1 hop)": (_MODELS, None),
            "POST search (2 hops)": (_SEARCH, body_file),
        }
        for route in routes:
            for mode in stacks:
                cells[f"{route}, {mode}"] = Cell()
        for round_no in range(args.rounds):
            order = list(stacks) if round_no % 2 == 0 else list(reversed(stacks))
            for route, (path, body) in routes.items():
                for mode in order:
                    stack = stacks[mode]
                    pids = _stack_pids(stack)
                    before = _session_cpu()
                    done, rps, p50, p99 = _load(
                        stack.cfg.base_url, DEV_HEADERS, args.seconds, args.concurrency, body, path
                    )
                    time.sleep(1.0)  # the usage log's batch belongs to this cell
                    after = _session_cpu()
                    cell = cells[f"{route}, {mode}"]
                    cell.rps.append(rps)
                    cell.p50_ms.append(p50)
                    cell.p99_ms.append(p99)
                    used = sum(after.get(p, 0) - before.get(p, 0) for p in pids)
                    cell.cpu.setdefault("all", []).append(used / done)
    return cells


def report(cells: dict[str, Cell], args: argparse.Namespace) -> None:
    med = statistics.median
    print(
        f"\nMutual TLS between Envoy and the services, API key, bombardier concurrency "
        f"{args.concurrency}, {args.rounds} rounds x {args.seconds:g}s (median of rounds)\n"
    )
    print(
        f"{'route, hops':<42}{'req/s':>8}{'vs plain':>10}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'CPU µs/req':>12}{'vs plain':>10}"
    )
    names = list(cells)
    for name in names:
        cell = cells[name]
        plain = cells[name.rsplit(", ", 1)[0] + ", plaintext"]
        rps, cpu = med(cell.rps), med(cell.cpu["all"])
        print(
            f"{name:<42}{rps:>8.0f}{rps / med(plain.rps) - 1:>+10.1%}{med(cell.p50_ms):>8.2f}"
            f"{med(cell.p99_ms):>8.2f}{cpu * 1e6:>12.0f}{cpu / med(plain.cpu['all']) - 1:>+10.1%}"
        )
