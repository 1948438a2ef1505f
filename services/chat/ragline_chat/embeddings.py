"""Adapter to the embedder's CreateEmbeddings and ListEmbeddingModels over gRPC, for the
OpenAI-compatible POST /v1/embeddings and GET /v1/models of the HTTP edge.

The call carries the caller's verified identity (an internal token minted for the current
caller, as chat → retriever does) over the service channel (mutual TLS when configured),
and brings back the usage the embedder reported, which the edge returns as response
headers for the gateway's usage log."""

from __future__ import annotations

import time
from dataclasses import dataclass

import grpc

from ragline.embedder.v1 import embedder_service_pb2 as epb
from ragline.embedder.v1 import embedder_service_pb2_grpc as epb_grpc
from ragline_core import caller
from ragline_core.errors import RaglineError, from_rpc_error

# The embedder's model list changes only with its configuration: asked again after this.
MODELS_TTL_S = 30.0


@dataclass(frozen=True)
class Embeddings:
    vectors: list[list[float]]
    model: str
    prompt_tokens: int
    total_tokens: int
    # The embedder's x-ragline-usage-* metadata, passed on to the gateway.
    usage_headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class EmbeddingModelInfo:
    name: str
    available: bool


class GrpcEmbedder:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = epb_grpc.EmbedderServiceStub(channel)
        self._models: tuple[float, list[EmbeddingModelInfo]] | None = None

    async def embed(self, tenant: str, texts: list[str], model: str, timeout: float) -> Embeddings:
        call = self.stub.CreateEmbeddings(
            epb.CreateEmbeddingsRequest(texts=texts, model=model),
            metadata=caller.outgoing(tenant),
            timeout=timeout,
        )
        try:
            reply = await call
            metadata = await call.initial_metadata()
        except grpc.aio.AioRpcError as exc:
            raise _map(exc) from None
        usage = tuple(
            (str(k), str(v))
            for k, v in (metadata or ())
            if str(k).startswith("x-ragline-usage-") and isinstance(v, str)
        )
        return Embeddings(
            vectors=[list(e.values) for e in reply.embeddings],
            model=reply.model,
            prompt_tokens=reply.usage.prompt_tokens,
            total_tokens=reply.usage.total_tokens,
            usage_headers=usage,
        )

    async def models(self, tenant: str) -> list[EmbeddingModelInfo]:
        """The embedder's models, default first (remembered for MODELS_TTL_S)."""
        now = time.monotonic()
        if self._models is not None and now - self._models[0] < MODELS_TTL_S:
            return self._models[1]
        try:
            reply = await self.stub.ListEmbeddingModels(
                epb.ListEmbeddingModelsRequest(), metadata=caller.outgoing(tenant), timeout=10
            )
        except grpc.aio.AioRpcError as exc:
            raise _map(exc) from None
        found = [EmbeddingModelInfo(m.name, m.available) for m in reply.models]
        self._models = (now, found)
        return found


def _map(exc: grpc.aio.AioRpcError) -> RaglineError:
    return from_rpc_error(exc, upstream="embedder")
