"""The embedder service as its callers use it: batches of vectors (ingest), one query vector
that must come from the requested model (retriever), one call with its usage and the model
list (chat's OpenAI-compatible edge)."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import numpy as np
import numpy.typing as npt

from ragline.embedder.v1 import embedder_service_pb2 as emb_pb
from ragline.embedder.v1 import embedder_service_pb2_grpc as emb_grpc
from ragline_core import caller
from ragline_core.embedding_models import MODELS
from ragline_core.errors import UnavailableError, from_rpc_error

# Pages of the model list a caller follows at most: the list is a deployment's
# configuration, a few entries; the cap only stops a server that never ends it.
MAX_MODEL_PAGES = 100


@dataclass(frozen=True)
class EmbeddingCall:
    """One CreateEmbeddings answer with the usage the embedder reported."""

    reply: emb_pb.CreateEmbeddingsResponse
    # The embedder's x-ragline-usage-* metadata, for a caller that passes it on.
    usage_headers: tuple[tuple[str, str], ...]


class EmbedderClient:
    def __init__(self, channel: grpc.aio.Channel, batch_size: int) -> None:
        self.stub = emb_grpc.EmbedderServiceStub(channel)
        self.batch_size = batch_size

    async def embed(
        self, tenant: str, model: str, texts: list[str]
    ) -> tuple[npt.NDArray[np.float32], str, int]:
        """Vectors for `texts` (in order), the model that made them, and its dimensions."""
        parts: list[npt.NDArray[np.float32]] = []
        used_model, dimensions = model, 0
        for start in range(0, len(texts), self.batch_size):
            request = emb_pb.CreateEmbeddingsRequest(
                texts=texts[start : start + self.batch_size], model=model
            )
            try:
                reply = await self.stub.CreateEmbeddings(request, metadata=caller.outgoing(tenant))
            except grpc.aio.AioRpcError as exc:
                raise from_rpc_error(exc, upstream="embedder") from None
            used_model, dimensions = reply.model, reply.dimensions
            parts.append(np.asarray([e.values for e in reply.embeddings], dtype=np.float32))
        if not parts:
            return np.zeros((0, 0), dtype=np.float32), used_model, dimensions
        return np.concatenate(parts), used_model, dimensions

    async def embed_query(self, tenant: str, model: str, text: str) -> npt.NDArray[np.float32]:
        """One vector from exactly `model`: a fallback model's vectors live in another space.
        A model trained with a query instruction (bge) gets it here, documents never do."""
        spec = MODELS.get(model)
        prefix = spec.query_prefix if spec is not None else ""
        vectors, used_model, _ = await self.embed(tenant, model, [prefix + text])
        if used_model != model:
            raise UnavailableError(
                f"the collection's embedding model {model!r} is unavailable",
                reason="EMBEDDING_MODEL_UNAVAILABLE",
            )
        vector: npt.NDArray[np.float32] = vectors[0]
        return vector

    async def embed_once(
        self, tenant: str, texts: list[str], model: str, timeout: float
    ) -> EmbeddingCall:
        """One CreateEmbeddings call (the embedder enforces its own batch limit) with usage."""
        call = self.stub.CreateEmbeddings(
            emb_pb.CreateEmbeddingsRequest(texts=texts, model=model),
            metadata=caller.outgoing(tenant),
            timeout=timeout,
        )
        try:
            reply = await call
            metadata = await call.initial_metadata()
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, upstream="embedder") from None
        usage = tuple(
            (str(k), str(v))
            for k, v in (metadata or ())
            if str(k).startswith("x-ragline-usage-") and isinstance(v, str)
        )
        return EmbeddingCall(reply, usage)

    async def list_models(self, tenant: str, timeout: float) -> list[emb_pb.EmbeddingModel]:
        """Every model the embedder knows, default first (all pages)."""
        found: list[emb_pb.EmbeddingModel] = []
        token = ""
        for _ in range(MAX_MODEL_PAGES):
            try:
                reply = await self.stub.ListEmbeddingModels(
                    emb_pb.ListEmbeddingModelsRequest(page_token=token),
                    metadata=caller.outgoing(tenant),
                    timeout=timeout,
                )
            except grpc.aio.AioRpcError as exc:
                raise from_rpc_error(exc, upstream="embedder") from None
            found.extend(reply.models)
            token = reply.next_page_token
            if not token:
                break
        return found
