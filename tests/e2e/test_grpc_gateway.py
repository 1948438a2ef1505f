"""Native gRPC through Envoy, on the same port as REST."""

from __future__ import annotations

import json
import uuid

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from ragline.embedder.v1 import embedder_service_pb2 as pb
from ragline.embedder.v1 import embedder_service_pb2_grpc as pb_grpc
from ragline.system.v1 import system_service_pb2, system_service_pb2_grpc
from tests.support.fake_providers import Call
from tests.support.gateway import wait_until

pytestmark = pytest.mark.e2e


def error_info(exc: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info
    raise AssertionError("no ErrorInfo in the status details")


async def test_embed_over_native_grpc(gateway_channel):
    stub = pb_grpc.EmbedderServiceStub(gateway_channel)
    reply = await stub.CreateEmbeddings(pb.CreateEmbeddingsRequest(texts=["a", "b"]), timeout=30)
    assert len(reply.embeddings) == 2 and reply.dimensions == 384
    assert len(reply.embeddings[1].values) == 384


async def test_grpc_error_carries_rich_status(gateway_channel):
    stub = pb_grpc.EmbedderServiceStub(gateway_channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateEmbeddings(pb.CreateEmbeddingsRequest(text="x", model="nope"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(caught.value)
    assert info.reason == "UNKNOWN_MODEL" and info.domain == "ragline.dev"


async def test_client_deadline_propagates_to_the_provider_call(gateway_channel, fake_voyage):
    """The client's deadline reaches the embedder's call to Voyage: the fake sees the
    embedder hang up while it is still delaying, and no call (no retry) after that.
    Without the deadline the embedder would wait out the 1.5 s delay (its own attempt
    timeout is 2 s) and the fake would answer. DEADLINE_EXCEEDED alone proves nothing: the
    client produces it itself."""
    text = f"deadline test {uuid.uuid4().hex[:8]}"
    fake_voyage.reset(delay_s=1.5)
    try:
        stub = pb_grpc.EmbedderServiceStub(gateway_channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CreateEmbeddings(
                pb.CreateEmbeddingsRequest(text=text, model="voyage-3.5"), timeout=0.7
            )
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

        def ours() -> list[Call]:
            return [c for c in fake_voyage.script.calls if text in json.dumps(c.body)]

        async def settled() -> bool:
            calls = ours()
            return bool(calls) and all(c.answered_at or c.hung_up_at for c in calls)

        # Conditions, not clocks: wait (generously) until the fake has finished with it.
        await wait_until(settled, timeout=30, interval=0.1)
        [call] = ours()  # one attempt: nothing retried once the deadline had passed
        assert call.answered_at is None, "the provider call outlived the caller's deadline"
        assert call.hung_up_at is not None
    finally:
        fake_voyage.reset()


async def test_system_health_over_grpc(gateway_channel):
    stub = system_service_pb2_grpc.SystemServiceStub(gateway_channel)
    reply = await stub.GetHealth(system_service_pb2.GetHealthRequest(), timeout=10)
    assert reply.status == "SERVING"
    assert reply.components["mongodb"] == "SERVING"
