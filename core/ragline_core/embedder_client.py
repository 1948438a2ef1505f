"""The embedder service as its callers (ingest, retriever) use it: batches of vectors, or
one query vector that must come from the requested model."""

from __future__ import annotations

import grpc
import numpy as np
import numpy.typing as npt

from ragline.embedder.v1 import embedder_service_pb2 as emb_pb
from ragline.embedder.v1 import embedder_service_pb2_grpc as emb_grpc
from ragline_core import caller
from ragline_core.errors import UnavailableError, from_rpc_error


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
        """One vector from exactly `model`: a fallback model's vectors live in another space."""
        vectors, used_model, _ = await self.embed(tenant, model, [text])
        if used_model != model:
            raise UnavailableError(
                f"the collection's embedding model {model!r} is unavailable",
                reason="EMBEDDING_MODEL_UNAVAILABLE",
            )
        vector: npt.NDArray[np.float32] = vectors[0]
        return vector
