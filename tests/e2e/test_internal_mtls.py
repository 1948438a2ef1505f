"""Mutual TLS behind the gateway (INTERNAL_TLS_DIR; issue 12): a stack of its own with a
local CA, as `make run` starts it and the production manifests deploy it.

What a user sees must not change (REST, native gRPC, the WebSocket and the chains between
services all work), while a process beside the services gets nowhere without a
certificate from the CA — not even with a valid signed identity — and Envoy's own calls to
the auth service are accepted only from the gateway's certificate.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import grpc
import httpx
import pytest
from envoy_api.envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from envoy_api.envoy.service.auth.v3 import external_auth_pb2 as authz_pb
from envoy_api.envoy.service.auth.v3 import external_auth_pb2_grpc as authz_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ragline.embedder.v1 import embedder_service_pb2 as emb_pb
from ragline.embedder.v1 import embedder_service_pb2_grpc as emb_grpc
from ragline.retriever.v1 import retriever_service_pb2 as ret_pb
from ragline.retriever.v1 import retriever_service_pb2_grpc as ret_grpc
from ragline_stack.local_ca import LocalCa
from ragline_stack.stack import Stack, free_port
from tests.conftest import stack_config
from tests.support.auth import DEV_KEY, DEV_TENANT, bearer_interceptors
from tests.support.identity import as_tenant
from tests.support.websocket import ask

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    cfg = stack_config(tmp_path_factory.mktemp("mtls"))
    cfg.internal_tls = True
    cfg.health_ports = {"retriever": free_port()}
    stack = Stack(cfg)
    try:
        stack.start_all(timeout=240)
        yield stack
    finally:
        stack.stop_all()


def _credentials(folder: Path) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        (folder / "ca.crt").read_bytes(),
        (folder / "tls.key").read_bytes(),
        (folder / "tls.crt").read_bytes(),
    )


def _workload(stack: Stack, name: str) -> Path:
    return stack.tls_folders()[name]


def _embed(channel: grpc.aio.Channel) -> object:
    return emb_grpc.EmbedderServiceStub(channel).CreateEmbeddings(
        emb_pb.CreateEmbeddingsRequest(text="x"), metadata=as_tenant(DEV_TENANT), timeout=20
    )


async def test_the_api_works_end_to_end_over_mutual_tls(tls_stack):
    """Ingest (ingest → embedder), search (retriever → embedder), chat (chat → retriever),
    the OpenAI-compatible embeddings (chat → embedder) over REST, the same search over native
    gRPC, and the WebSocket (HTTP/1.1 upstream)."""
    headers = {"authorization": f"Bearer {DEV_KEY}"}
    async with httpx.AsyncClient(base_url=tls_stack.cfg.base_url, timeout=60) as api:
        assert (await api.get("/health")).status_code == 200
        doc = {"title": "Wren", "content": "The wren is a small bird that sings loudly."}
        ingested = await api.post(
            "/api/v1/ingest", json={"collection": "birds", "documents": [doc]}, headers=headers
        )
        assert ingested.status_code == 200, ingested.text
        query = {"query": "which bird sings", "collection": "birds"}
        deadline = time.monotonic() + 60
        while True:  # until the retriever has applied the ingest
            found = await api.post("/api/v1/search", json=query, headers=headers)
            if (found.status_code == 200 and found.json()["hits"]) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert found.status_code == 200, found.text
        assert "wren" in found.text.lower()
        chat = await api.post(
            "/api/v1/chat",
            json={"message": "Which bird sings loudly?", "collection": "birds"},
            headers=headers,
        )
        assert chat.status_code == 200, chat.text
        assert chat.json()["citations"], chat.text
        # The chat edge's OpenAI-compatible embeddings (chat → embedder).
        embedded = await api.post(
            "/v1/embeddings", json={"input": ["wren"], "model": "all-MiniLM-L6-v2"}, headers=headers
        )
        assert embedded.status_code == 200, embedded.text
        assert len(embedded.json()["data"][0]["embedding"]) == 384

    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{tls_stack.cfg.api_port}", interceptors=bearer_interceptors(DEV_KEY)
    ) as gateway:
        reply = await ret_grpc.RetrieverServiceStub(gateway).Search(
            ret_pb.SearchRequest(query="which bird sings", collection="birds"), timeout=30
        )
        assert reply.hits

    url = f"ws://127.0.0.1:{tls_stack.cfg.api_port}/api/v1/chat/ws"
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.ws_connect(url, protocols=("ragline.chat.v1",)) as ws,
    ):
        events = await ask(ws, {"message": "Which bird sings?", "collection": "birds"})
        assert "done" in events[-1], events


async def test_a_service_port_refuses_plaintext_even_with_a_valid_identity(tls_stack):
    async with grpc.aio.insecure_channel(tls_stack.cfg.service_addr("embedder")) as plain:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _embed(plain)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_service_port_refuses_tls_without_a_certificate_from_the_ca(tls_stack, tmp_path):
    ca_cert = (_workload(tls_stack, "gateway") / "ca.crt").read_bytes()
    no_client_cert = grpc.ssl_channel_credentials(ca_cert)
    # A certificate claiming to be the gateway, from a CA of the attacker's own.
    forged = LocalCa.create("attacker CA").write_workload(tmp_path / "forged", "gateway")
    forged_creds = grpc.ssl_channel_credentials(
        ca_cert, (forged / "tls.key").read_bytes(), (forged / "tls.crt").read_bytes()
    )
    for creds in (no_client_cert, forged_creds):
        async with grpc.aio.secure_channel(tls_stack.cfg.service_addr("embedder"), creds) as ch:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _embed(ch)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_peer_with_a_certificate_still_needs_a_signed_identity(tls_stack):
    """Transport identity says which workload called, not for which tenant: a service's
    certificate with no identity token is UNAUTHENTICATED, with one it is served."""
    creds = _credentials(_workload(tls_stack, "chat"))
    async with grpc.aio.secure_channel(tls_stack.cfg.service_addr("embedder"), creds) as ch:
        stub = emb_grpc.EmbedderServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.CreateEmbeddings(emb_pb.CreateEmbeddingsRequest(text="x"), timeout=20)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert (await _embed(ch)).embeddings  # type: ignore[attr-defined]


async def test_envoys_calls_to_the_auth_service_are_for_the_gateway_only(tls_stack):
    """ext_authz Check and the usage access log carry no caller token: under mutual TLS the
    auth service takes them from the gateway's certificate only (a compromised retriever
    cannot ask it to vet keys or write usage)."""
    check = authz_pb.CheckRequest()
    check.attributes.request.http.headers["authorization"] = f"Bearer {DEV_KEY}"
    check.attributes.request.http.path = "/api/v1/search"
    check.attributes.request.http.method = "POST"
    for workload, allowed in (("retriever", False), ("gateway", True)):
        creds = _credentials(_workload(tls_stack, workload))
        async with grpc.aio.secure_channel(tls_stack.cfg.service_addr("auth"), creds) as ch:
            call = authz_grpc.AuthorizationStub(ch).Check(check, timeout=10)
            if allowed:
                assert (await call).status.code == 0
                continue
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await call
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "gateway only" in (denied.value.details() or "")
            with pytest.raises(grpc.aio.AioRpcError) as denied_log:
                await als_pb2_grpc.AccessLogServiceStub(ch).StreamAccessLogs(
                    iter([als_pb2.StreamAccessLogsMessage()]), timeout=10
                )
            assert denied_log.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_the_health_port_answers_probes_in_plaintext_and_nothing_else(tls_stack):
    port = tls_stack.cfg.health_ports["retriever"]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as probe:
        reply = await health_pb2_grpc.HealthStub(probe).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await ret_grpc.RetrieverServiceStub(probe).Search(
                ret_pb.SearchRequest(query="x", collection="birds"),
                metadata=as_tenant(DEV_TENANT),
                timeout=5,
            )
        assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED
    # The container health check finds it the same way.
    env = {**os.environ, "HEALTH_ADDR": f"127.0.0.1:{port}"}
    probe_cli = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "ragline_core.healthcheck"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert probe_cli.returncode == 0 and "SERVING" in probe_cli.stdout, probe_cli


def _start_refused(stack: Stack, folder: str) -> subprocess.CompletedProcess[str]:
    """The retriever started with INTERNAL_TLS_DIR=`folder`, on a port of its own."""
    env = {
        **stack.cfg.env(),
        "INTERNAL_TLS_DIR": folder,
        "RETRIEVER_ADDR": f"127.0.0.1:{free_port()}",
        "RETRIEVER_METRICS_PORT": str(free_port()),
    }
    return subprocess.run(
        [sys.executable, "-m", "ragline_retriever"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_service_refuses_to_start_with_a_certificate_it_cannot_use(tls_stack, tmp_path):
    """Another workload's certificate, or a folder without one, stops start-up naming
    INTERNAL_TLS_DIR and the problem, instead of serving something no peer accepts."""
    other = _start_refused(tls_stack, str(_workload(tls_stack, "chat")))
    assert other.returncode != 0
    assert "INTERNAL_TLS_DIR" in other.stderr and "'chat', not 'retriever'" in other.stderr
    missing = _start_refused(tls_stack, str(tmp_path / "nothing"))
    assert missing.returncode != 0
    assert "INTERNAL_TLS_DIR" in missing.stderr and "tls.crt" in missing.stderr
