"""The usage sink on a real auth process and FerretDB: Envoy's access-log stream in,
hourly buckets out, exactly N for N entries, including what is still in memory when the
process is told to stop."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import grpc
from envoy_api.envoy.data.accesslog.v3 import accesslog_pb2 as log_pb
from envoy_api.envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from google.protobuf import wrappers_pb2
from pymongo import MongoClient

from tests.conftest import free_port
from tests.support.processes import extra_service


def unique_tenant() -> str:
    return f"sink-{secrets.token_hex(4)}"


def _entry(tenant: str, status: int = 200) -> log_pb.HTTPAccessLogEntry:
    entry = log_pb.HTTPAccessLogEntry(
        common_properties=log_pb.AccessLogCommon(route_name="/api/v1/embeddings"),
        request=log_pb.HTTPRequestProperties(
            request_method=3,  # POST
            path="/ragline.embedder.v1.EmbedderService/Embed",
            original_path="/api/v1/embeddings",
            request_headers={"x-ragline-tenant": tenant, "content-type": "application/json"},
        ),
        response=log_pb.HTTPResponseProperties(
            response_code=wrappers_pb2.UInt32Value(value=status),
            response_headers={"x-ragline-usage-tokens-in": "3"},
        ),
    )
    entry.common_properties.start_time.GetCurrentTime()
    return entry


def _messages(tenant: str, batches: int, size: int) -> Iterator[als_pb2.StreamAccessLogsMessage]:
    for i in range(batches):
        message = als_pb2.StreamAccessLogsMessage()
        if i == 0:
            message.identifier.log_name = "ragline_usage"
        # Every tenth entry an error; entries without a tenant are not usage.
        message.http_logs.log_entry.extend(
            _entry(tenant, 500 if j % 10 == 0 else 200) for j in range(size)
        )
        message.http_logs.log_entry.append(_entry(""))
        yield message


def _counted(stack, tenant: str) -> dict[str, int]:
    with MongoClient(f"mongodb://127.0.0.1:{stack.cfg.mongo_port}") as client:
        docs = list(client[stack.cfg.database]["usage_hourly"].find({"tenant": tenant}))
    return {k: sum(int(d.get(k, 0)) for d in docs) for k in ("requests", "errors", "tokens_in")}


def _stream(port: int, tenant: str, batches: int, size: int) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        als_pb2_grpc.AccessLogServiceStub(channel).StreamAccessLogs(
            _messages(tenant, batches, size), timeout=30
        )


def test_every_entry_is_counted_once_in_batched_writes(stack, tmp_path):
    tenant = unique_tenant()
    port, metrics = free_port(), free_port()
    log = tmp_path / "auth-usage.log"
    with extra_service(stack, "auth", port, metrics, log, USAGE_FLUSH_INTERVAL="0.2"):
        _stream(port, tenant, batches=20, size=50)
        deadline = time.monotonic() + 15
        while _counted(stack, tenant)["requests"] < 1000 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.6)  # a few more flushes: nothing is written twice
        assert _counted(stack, tenant) == {"requests": 1000, "errors": 100, "tokens_in": 3000}


def test_counters_in_memory_are_written_at_shutdown(stack, tmp_path):
    tenant = unique_tenant()
    port, metrics = free_port(), free_port()
    log = tmp_path / "auth-drain.log"
    # No timed flush during the test: only the drain can write these.
    with extra_service(stack, "auth", port, metrics, log, USAGE_FLUSH_INTERVAL="60"):
        _stream(port, tenant, batches=3, size=40)
        time.sleep(0.5)
        assert _counted(stack, tenant)["requests"] == 0
    assert _counted(stack, tenant) == {"requests": 120, "errors": 12, "tokens_in": 360}
