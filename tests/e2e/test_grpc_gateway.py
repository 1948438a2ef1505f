"""Native gRPC through Envoy, on the same port as REST."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from ragline.embedder.v1 import embedder_service_pb2 as pb
from ragline.embedder.v1 import embedder_service_pb2_grpc as pb_grpc
from ragline.system.v1 import system_service_pb2, system_service_pb2_grpc

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
    fake_voyage.reset(delay_s=1.5)
    try:
        stub = pb_grpc.EmbedderServiceStub(gateway_channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CreateEmbeddings(
                pb.CreateEmbeddingsRequest(text="deadline test", model="voyage-3.5"), timeout=0.7
            )
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        fake_voyage.reset()


async def test_system_health_over_grpc(gateway_channel):
    stub = system_service_pb2_grpc.SystemServiceStub(gateway_channel)
    reply = await stub.GetHealth(system_service_pb2.GetHealthRequest(), timeout=10)
    assert reply.status == "SERVING"
    assert reply.components["mongodb"] == "SERVING"
