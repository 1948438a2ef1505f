"""The shared embedder client follows the model list across pages (chat's GET /v1/models read
only the first page), against a real gRPC server that pages its answer."""

from __future__ import annotations

import grpc
import pytest

from ragline.embedder.v1 import embedder_service_pb2 as emb_pb
from ragline.embedder.v1 import embedder_service_pb2_grpc as emb_grpc
from ragline_core import caller
from ragline_core.embedder_client import EmbedderClient
from ragline_core.errors import UnavailableError
from tests.support.identity import TEST_INTERNAL_KEY

NAMES = [f"model-{i}" for i in range(7)]


class PagedEmbedder(emb_grpc.EmbedderServiceServicer):
    """Three models per page; the token is the next offset."""

    def __init__(self) -> None:
        self.calls = 0

    async def ListEmbeddingModels(
        self, request: emb_pb.ListEmbeddingModelsRequest, context: grpc.aio.ServicerContext
    ) -> emb_pb.ListEmbeddingModelsResponse:
        self.calls += 1
        start = int(request.page_token or 0)
        end = min(start + 3, len(NAMES))
        return emb_pb.ListEmbeddingModelsResponse(
            models=[emb_pb.EmbeddingModel(name=n, available=True) for n in NAMES[start:end]],
            next_page_token=str(end) if end < len(NAMES) else "",
        )


@pytest.fixture
async def paged() -> tuple[EmbedderClient, PagedEmbedder, grpc.aio.Server]:
    caller.install(caller.Authenticator(caller.InternalTokens([TEST_INTERNAL_KEY]), None), "chat")
    server = grpc.aio.server()
    servicer = PagedEmbedder()
    emb_grpc.add_EmbedderServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    return EmbedderClient(channel, batch_size=0), servicer, server


async def test_every_page_of_the_model_list_is_read(paged):
    client, servicer, server = paged
    try:
        models = await client.list_models("t", timeout=5)
    finally:
        await server.stop(None)
    assert [m.name for m in models] == NAMES
    assert servicer.calls == 3


async def test_an_unreachable_embedder_is_a_clear_unavailable(paged):
    client, _, server = paged
    await server.stop(None)
    with pytest.raises(UnavailableError) as raised:
        await client.list_models("t", timeout=2)
    assert "embedder" in str(raised.value)
