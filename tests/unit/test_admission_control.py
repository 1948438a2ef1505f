"""Admission control (MAX_IN_FLIGHT): a process at its cap refuses one more call at once
with RESOURCE_EXHAUSTED SERVER_BUSY and retry-after, instead of queueing it; probes are
never refused; the count goes down when calls end, however they end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from ragline_core.interceptors import ServerInterceptor

SLOW = "/test.Slow/Wait"
FAIL = "/test.Slow/Fail"
PROBE = "/grpc.health.v1.Health/Check"


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, asyncio.Event, ServerInterceptor, asyncio.Event]]:
    release, full = asyncio.Event(), asyncio.Event()
    waiting = 0

    async def wait(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        nonlocal waiting
        waiting += 1
        if waiting == 2:
            full.set()
        await release.wait()
        return b"done"

    async def fail(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise ValueError("boom")

    handlers = {
        "Wait": grpc.unary_unary_rpc_method_handler(wait),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
    }
    interceptor = ServerInterceptor("test", None, max_in_flight=2)
    srv = grpc.aio.server(interceptors=[interceptor])
    srv.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler("test.Slow", handlers),
            grpc.method_handlers_generic_handler(
                "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(wait)}
            ),
        )
    )
    port = srv.add_insecure_port("127.0.0.1:0")
    await srv.start()
    yield f"127.0.0.1:{port}", release, interceptor, full
    release.set()
    await srv.stop(0)


def _reason(err: grpc.aio.AioRpcError) -> str:
    raw = dict(err.trailing_metadata() or ())["grpc-status-details-bin"]
    info = error_details_pb2.ErrorInfo()
    status_pb2.Status.FromString(raw).details[0].Unpack(info)
    return info.reason


async def test_one_call_over_the_cap_is_refused_at_once_and_probes_never(server):
    address, release, interceptor, full = server
    async with grpc.aio.insecure_channel(address) as channel:
        slow = channel.unary_unary(SLOW)
        held = [asyncio.ensure_future(slow(b"", timeout=10)) for _ in range(2)]
        await asyncio.wait_for(full.wait(), 10)
        assert interceptor.in_flight == 2
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await slow(b"", timeout=5)
        err = refused.value
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert _reason(err) == "SERVER_BUSY" and "limit of 2 calls" in (err.details() or "")
        assert dict(err.trailing_metadata() or ())["retry-after"] == "1"
        probe = asyncio.ensure_future(channel.unary_unary(PROBE)(b"", timeout=10))
        await asyncio.sleep(0.1)
        assert not probe.done()  # admitted (waiting like the others), not refused
        release.set()
        assert await asyncio.gather(*held, probe) == [b"done"] * 3
        assert interceptor.in_flight == 0
        assert await slow(b"", timeout=5) == b"done"  # room again


async def test_failed_calls_leave_the_count(server):
    address, _, interceptor, _ = server
    async with grpc.aio.insecure_channel(address) as channel:
        for _ in range(5):
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await channel.unary_unary(FAIL)(b"", timeout=5)
            assert failed.value.code() == grpc.StatusCode.INTERNAL
    assert interceptor.in_flight == 0
