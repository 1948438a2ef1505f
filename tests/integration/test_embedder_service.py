"""The embedder as a real gRPC server: reflection, health, fallback, drain, metrics."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.request
import uuid
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from ragline.embedder.v1 import embedder_service_pb2 as pb
from ragline.embedder.v1 import embedder_service_pb2_grpc as pb_grpc
from tests.conftest import free_port
from tests.support.fake_providers import Call
from tests.support.gateway import wait_until
from tests.support.identity import identity_channel
from tests.support.processes import extra_service


async def test_reflection_lists_the_services(embedder_channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(embedder_channel)

    async def requests():
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    names = set()
    async for reply in stub.ServerReflectionInfo(requests(), timeout=5):
        names |= {s.name for s in reply.list_services_response.service}
    assert {
        "ragline.embedder.v1.EmbedderService",
        "ragline.system.v1.SystemService",
        "grpc.health.v1.Health",
    } <= names


@pytest.mark.parametrize("service", ["retriever", "chat", "ingest"])
async def test_other_services_serve_health(stack, service):
    async with grpc.aio.insecure_channel(stack.cfg.service_addr(service)) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_provider_components_report_through_health(embedder_channel):
    stub = health_pb2_grpc.HealthStub(embedder_channel)
    local = await stub.Check(health_pb2.HealthCheckRequest(service="provider.local"), timeout=5)
    assert local.status == health_pb2.HealthCheckResponse.SERVING


async def test_embedder_metrics_count_rpcs_and_cache(stack, embedder_channel):
    stub = pb_grpc.EmbedderServiceStub(embedder_channel)
    request = pb.CreateEmbeddingsRequest(text="metrics please")
    await stub.CreateEmbeddings(request, timeout=30)
    await stub.CreateEmbeddings(request, timeout=30)
    port = stack.cfg.metrics_ports["embedder"]
    text = await asyncio.to_thread(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    )
    assert (
        'ragline_rpc_requests_total{code="OK",method="/ragline.embedder.v1.EmbedderService'
        '/CreateEmbeddings",service="embedder"}'
    ) in text
    assert 'ragline_cache_requests_total{cache="embeddings",result="hit"}' in text
    assert "ragline_rpc_duration_seconds_bucket" in text


async def test_fallback_uses_next_model_for_the_whole_batch(stack, fake_openai, tmp_path):
    port = free_port()
    fake_openai.reset(failures=[503] * 10)
    try:
        with extra_service(
            stack,
            "embedder",
            port,
            free_port(),
            tmp_path / "fallback.log",
            EMBEDDING_FALLBACK_MODELS="voyage-3.5,all-MiniLM-L6-v2",
        ):
            async with identity_channel(f"127.0.0.1:{port}") as channel:
                stub = pb_grpc.EmbedderServiceStub(channel)
                reply = await stub.CreateEmbeddings(
                    pb.CreateEmbeddingsRequest(
                        texts=["one", "two"], model="text-embedding-3-small"
                    ),
                    timeout=30,
                )
    finally:
        fake_openai.reset()
    assert reply.model == "voyage-3.5"
    assert reply.dimensions == 1024
    assert all(len(e.values) == 1024 for e in reply.embeddings)


async def test_a_provider_slower_than_its_timeout_falls_back(stack, fake_voyage, tmp_path):
    """A slow provider is an outage like a 503 while the caller's deadline still runs (the
    fault battery, chaos/ scenario 7, saw a 504 instead of the configured fallback)."""
    port = free_port()
    fake_voyage.reset(delay_s=3.0)
    try:
        with extra_service(
            stack,
            "embedder",
            port,
            free_port(),
            tmp_path / "slow.log",
            PROVIDER_TIMEOUT="1",
            EMBEDDING_FALLBACK_MODELS="all-MiniLM-L6-v2",
        ):
            async with identity_channel(f"127.0.0.1:{port}") as channel:
                stub = pb_grpc.EmbedderServiceStub(channel)
                reply = await stub.CreateEmbeddings(
                    pb.CreateEmbeddingsRequest(texts=["slow one", "slow two"], model="voyage-3.5"),
                    timeout=30,
                )
    finally:
        fake_voyage.reset()
    assert reply.model == "all-MiniLM-L6-v2"
    assert reply.dimensions == 384 and all(len(e.values) == 384 for e in reply.embeddings)


async def test_missing_key_is_503_saying_which_key(stack, tmp_path):
    port = free_port()
    with extra_service(
        stack,
        "embedder",
        port,
        free_port(),
        tmp_path / "nokey.log",
        OPENAI_API_KEY="",
        VOYAGE_AI_API_KEY="",
    ):
        async with identity_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.EmbedderServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.CreateEmbeddings(
                    pb.CreateEmbeddingsRequest(text="x", model="voyage-3-large"), timeout=10
                )
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "VOYAGE_AI_API_KEY" in (caught.value.details() or "")


async def test_sigterm_drains_in_flight_calls(stack, fake_voyage, tmp_path):
    """A call in flight at the provider when SIGTERM arrives still gets its answer, and the
    process exits 0. Conditions, not clocks: SIGTERM is sent once the fake holds the call,
    health is polled until NOT_SERVING, and the fake's answer must come after the SIGTERM."""
    port = free_port()
    text = f"slow one {uuid.uuid4().hex[:8]}"
    # Long enough for the drain delay to pass while the call waits (attempt timeout raised).
    fake_voyage.reset(delay_s=8)
    try:
        with extra_service(
            stack,
            "embedder",
            port,
            free_port(),
            tmp_path / "drain.log",
            DRAIN_DELAY="3",
            SHUTDOWN_GRACE="30",
            PROVIDER_TIMEOUT="60",
        ) as proc:
            async with identity_channel(f"127.0.0.1:{port}") as channel:
                stub = pb_grpc.EmbedderServiceStub(channel)
                health = health_pb2_grpc.HealthStub(channel)
                call = asyncio.ensure_future(
                    stub.CreateEmbeddings(
                        pb.CreateEmbeddingsRequest(text=text, model="voyage-3.5"), timeout=60
                    )
                )

                def ours() -> list[Call]:
                    return [c for c in fake_voyage.script.calls if text in json.dumps(c.body)]

                async def at_the_provider() -> bool:
                    return bool(ours())

                await wait_until(at_the_provider, timeout=30, interval=0.05)
                assert not call.done()
                sigterm_at = time.monotonic()
                proc.send_signal(signal.SIGTERM)

                async def not_serving() -> bool:
                    status = await health.Check(health_pb2.HealthCheckRequest(), timeout=2)
                    return status.status == health_pb2.HealthCheckResponse.NOT_SERVING

                await wait_until(not_serving, timeout=10, interval=0.05)
                reply = await call  # finishes despite the SIGTERM
                assert reply.model == "voyage-3.5"
                [answered] = ours()
                assert answered.answered_at is not None and answered.answered_at > sigterm_at
            assert await asyncio.to_thread(proc.wait, 60) == 0
    finally:
        fake_voyage.reset()


def workers_of(pid: int) -> list[str]:
    """Worker processes the supervisor spawned (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    cmdlines = [Path(f"/proc/{c}/cmdline").read_bytes().decode() for c in children]
    return [c for c in cmdlines if "spawn_main" in c and "resource_tracker" not in c]


async def test_api_workers_share_the_port_and_merge_their_metrics(stack, tmp_path):
    port, metrics_port = free_port(), free_port()
    with extra_service(
        stack, "embedder", port, metrics_port, tmp_path / "workers.log", API_WORKERS="2"
    ) as proc:
        assert len(await asyncio.to_thread(workers_of, proc.pid)) == 2
        async with identity_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.EmbedderServiceStub(channel)
            for i in range(6):
                await stub.CreateEmbeddings(pb.CreateEmbeddingsRequest(text=f"w{i}"), timeout=30)
        text = await asyncio.to_thread(
            lambda: (
                urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read().decode()
            )
        )
        counted = [
            line
            for line in text.splitlines()
            if line.startswith("ragline_rpc_requests_total{")
            and "CreateEmbeddings" in line
            and 'code="OK"' in line
        ]
        assert counted and float(counted[0].split()[-1]) == 6.0
