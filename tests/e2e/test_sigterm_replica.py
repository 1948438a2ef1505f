"""A rolling restart loses nothing: one of two retriever replicas behind the gateway gets
SIGTERM under steady search load, three times over, and not one search fails.

What makes it hold (docs/reliability.md, "SIGTERM"): the service reports NOT_SERVING and
keeps serving for DRAIN_DELAY (5 s) so Envoy's health check takes it out first, finishes
its calls in flight, and Envoy retries a search that races the closing listener (reset,
refused-stream, connect-failure) on the other replica. It runs on its own stack (the fault
battery's harness) so the gateway balances over two retriever processes."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import httpx
import pytest

from chaos.harness import (
    ChaosStack,
    Ledger,
    Outcome,
    new_tenant,
    now,
    recorder,
    run_load,
    wait_for,
)
from chaos.scenarios import own, search, seed, wait_serving
from ragline_stack.stack import free_port

pytestmark = pytest.mark.e2e

ROUNDS = 3
CLIENTS = 6


async def _healthy_hosts(admin_port: int, cluster: str) -> int:
    """Hosts of the cluster that Envoy's active health check currently passes."""
    async with httpx.AsyncClient(timeout=5) as client:
        reply = await client.get(f"http://127.0.0.1:{admin_port}/clusters?format=json")
    for status in reply.json().get("cluster_statuses", []):
        if status["name"] == cluster:
            return sum(
                1
                for host in status.get("host_statuses", [])
                if not any(v is True for v in host.get("health_status", {}).values())
            )
    return 0


async def test_sigterm_of_one_replica_loses_no_request(tmp_path: Path) -> None:
    cs = ChaosStack(tmp_path / "stack")
    port, metrics_port = free_port(), free_port()
    cs.cfg.replicas = {"retriever": [f"127.0.0.1:{port}"]}
    rounds: list[str] = []
    try:
        cs.voyage.start()
        cs.openai.start()
        await asyncio.to_thread(cs.stack.start_all, 300)
        cs.start_extra("retriever", port, metrics_port)

        async def both_healthy() -> bool:
            return await _healthy_hosts(cs.cfg.admin_port, "retriever") == 2

        async with recorder(cs.cfg.base_url) as rec:
            tenant = await new_tenant(rec, "drain")
            await seed(rec, tenant, Ledger(), 8)
            for _ in range(ROUNDS):
                await wait_for(both_healthy, 180, "both retriever replicas healthy in Envoy")
                stop = asyncio.Event()
                since = now()
                load = asyncio.create_task(
                    run_load([lambda: search(rec, tenant)], CLIENTS, stop, 300, 0.02)
                )
                try:
                    # Signal while searches are in flight (load has started by then).
                    await wait_for(
                        lambda: _true(rec.inflight["search"] > 0), 30, "a search in flight", 0.005
                    )
                    old = cs.stack.child_pid("retriever")
                    assert old is not None
                    signalled = now()
                    os.kill(old, signal.SIGTERM)
                    back = await wait_serving(cs, "retriever", old, timeout=180)
                    await wait_for(both_healthy, 180, "the restarted replica healthy in Envoy")
                finally:
                    stop.set()
                    await load
                outcomes = [o for o in own(rec, tenant, since) if o.op == "search"]
                in_flight = [o for o in outcomes if o.started < signalled < o.ended]
                failed = [_describe(o) for o in outcomes if o.verdict != "ok"]
                rounds.append(
                    f"{len(outcomes)} searches, {len(in_flight)} in flight at the signal, "
                    f"{len(failed)} failed, replica back in {back:.1f}s"
                )
                assert in_flight, "no search was in flight at the signal"
                assert not failed, f"lost under SIGTERM: {failed[:5]} ({rounds[-1]})"
        print("sigterm one of two retriever replicas:", "; ".join(rounds))
    finally:
        await asyncio.to_thread(cs.stop_all)


def _describe(o: Outcome) -> str:
    return f"{o.status} {o.reason} {o.message[:80]}"


async def _true(value: bool) -> bool:
    return value
