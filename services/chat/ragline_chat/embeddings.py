"""The embedder as the OpenAI-compatible POST /v1/embeddings and GET /v1/models of the HTTP
edge use it, over the shared embedder client (core/ragline_core/embedder_client.py).

The call carries the caller's verified identity (an internal token minted for the current
caller, as chat → retriever does) over the service channel (mutual TLS when configured),
and brings back the usage the embedder reported, which the edge returns as response
headers for the gateway's usage log."""

from __future__ import annotations

import time
from dataclasses import dataclass

import grpc

from ragline_core.embedder_client import EmbedderClient

# The embedder's model list changes only with its configuration: asked again after this.
MODELS_TTL_S = 30.0
MODELS_TIMEOUT_S = 10.0


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
        # One call per request: the embedder refuses a batch above its own limit.
        self.client = EmbedderClient(channel, batch_size=0)
        self._models: tuple[float, list[EmbeddingModelInfo]] | None = None

    async def embed(self, tenant: str, texts: list[str], model: str, timeout: float) -> Embeddings:
        call = await self.client.embed_once(tenant, texts, model, timeout)
        reply = call.reply
        return Embeddings(
            vectors=[list(e.values) for e in reply.embeddings],
            model=reply.model,
            prompt_tokens=reply.usage.prompt_tokens,
            total_tokens=reply.usage.total_tokens,
            usage_headers=call.usage_headers,
        )

    async def models(self, tenant: str) -> list[EmbeddingModelInfo]:
        """The embedder's models, default first (remembered for MODELS_TTL_S)."""
        now = time.monotonic()
        if self._models is not None and now - self._models[0] < MODELS_TTL_S:
            return self._models[1]
        listed = await self.client.list_models(tenant, MODELS_TIMEOUT_S)
        found = [EmbeddingModelInfo(m.name, m.available) for m in listed]
        self._models = (now, found)
        return found
