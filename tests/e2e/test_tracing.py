"""One search through Envoy yields one OpenTelemetry trace spanning the gateway and the
services it touched, exported over OTLP to a collector (here: a local OTLP receiver)."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from ragline_stack.stack import Stack, free_port, free_port_config
from tests.support.auth import DEV_KEY

pytestmark = pytest.mark.e2e


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """Collects (trace id, service name, span name) of every exported span."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, str]] = []

    async def Export(self, request, context):
        for resource_spans in request.resource_spans:
            service = next(
                (
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                ),
                "?",
            )
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.spans.append((span.trace_id.hex(), service, span.name))
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, int]]:
    server = grpc.aio.server()
    collector = Receiver()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    yield collector, port
    await server.stop(0)


async def test_one_search_is_one_trace_across_gateway_and_services(receiver, tmp_path):
    collector, port = receiver
    cfg = free_port_config(
        tmp_path,
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
        OTEL_BSP_SCHEDULE_DELAY="200",
        LOG_LEVEL="INFO",
    )
    stack = Stack(cfg)
    try:
        await asyncio.to_thread(stack.start_all, 300)
        headers = {"Authorization": f"Bearer {DEV_KEY}"}
        async with httpx.AsyncClient(base_url=cfg.base_url, headers=headers, timeout=60) as api:
            reply = await api.post(
                "/api/v1/ingest",
                json={"collection": "traced", "documents": [{"title": "t", "content": "trace me"}]},
            )
            assert reply.status_code == 200, reply.text
            collector.spans.clear()
            search = await api.post(
                "/api/v1/search", json={"query": "trace", "collection": "traced"}
            )
            assert search.status_code == 200, search.text
        by_trace: dict[str, set[str]] = collections.defaultdict(set)
        for _ in range(150):  # batch exporters flush every 200 ms; allow a slow machine
            await asyncio.sleep(0.2)
            by_trace.clear()
            for trace_id, service, _name in collector.spans:
                by_trace[trace_id].add(service)
            if any(
                {"ragline-gateway", "ragline-retriever", "ragline-embedder"} <= s
                for s in by_trace.values()
            ):
                break
        # The search's trace: the one with the retriever's Search span (spans of the ingest
        # before it, which also reach the retriever, may still be arriving).
        [trace_id] = {
            t
            for t, service, name in collector.spans
            if service == "ragline-retriever" and name.endswith("RetrieverService/Search")
        }
        assert {"ragline-gateway", "ragline-retriever", "ragline-embedder"} <= by_trace[trace_id]
        # The retriever's database and cache calls are spans of the same trace.
        names = {name for t, _service, name in collector.spans if t == trace_id}
        assert any(
            n.startswith(("find", "ragline_bench", "rag_production")) or "find" in n for n in names
        ), names
        # Trace ids reach the JSON logs.
        assert trace_id in (cfg.log_dir / "retriever.log").read_text()
    finally:
        await asyncio.to_thread(stack.stop_all)
