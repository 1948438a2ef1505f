"""EmbedderService gRPC servicer: validate, convert, call the domain, convert back."""

from __future__ import annotations

from ragline.embedder.v1 import embedder_service_pb2 as pb
from ragline.embedder.v1 import embedder_service_pb2_grpc as pb_grpc
from ragline_core import embedding_models as models
from ragline_core import pages
from ragline_core.errors import InvalidArgumentError
from ragline_core.identity import tenant_of
from ragline_core.rpc_types import Context
from ragline_core.usage import Usage, report_usage
from ragline_embedder import bge
from ragline_embedder.providers.base import EmbeddingProvider
from ragline_embedder.service import EmbeddingService

PROVIDER = {
    "local": pb.EMBEDDING_PROVIDER_LOCAL,
    "openai": pb.EMBEDDING_PROVIDER_OPENAI,
    "voyage": pb.EMBEDDING_PROVIDER_VOYAGE,
}


class EmbedderServicer(pb_grpc.EmbedderServiceServicer):
    def __init__(self, service: EmbeddingService, providers: dict[str, EmbeddingProvider]) -> None:
        self.service = service
        self.providers = providers

    async def CreateEmbeddings(
        self, request: pb.CreateEmbeddingsRequest, context: Context
    ) -> pb.CreateEmbeddingsResponse:
        if request.text and request.texts:
            raise InvalidArgumentError("set either text or texts, not both", field="texts")
        if request.texts:
            texts, field = list(request.texts), "texts"
        else:
            texts, field = [request.text] if request.text else [], "text"
        self.service.validate(texts, field)
        result = await self.service.embed(texts, request.model, tenant_of(context))
        prompt_tokens = sum(item.token_count for item in result.items)
        cached = sum(1 for item in result.items if item.cached)
        await report_usage(
            context,
            Usage(
                tokens_in=prompt_tokens,
                cost_usd=result.billed_tokens * result.model.usd_per_million_tokens / 1_000_000,
                cache_lookups=len(result.items),
                cache_hits=cached,
            ),
        )
        return pb.CreateEmbeddingsResponse(
            embeddings=[
                pb.Embedding(
                    index=i,
                    values=item.vector.tolist(),
                    token_count=item.token_count,
                    truncated=item.truncated,
                    cached=item.cached,
                )
                for i, item in enumerate(result.items)
            ],
            model=result.model.name,
            dimensions=result.model.dimensions,
            usage=pb.Usage(prompt_tokens=prompt_tokens, total_tokens=result.billed_tokens),
            truncated_count=sum(1 for item in result.items if item.truncated),
            cached_count=sum(1 for item in result.items if item.cached),
        )

    async def ListEmbeddingModels(
        self, request: pb.ListEmbeddingModelsRequest, context: Context
    ) -> pb.ListEmbeddingModelsResponse:
        default = self.service.default_model
        ordered = [default, *(m for m in models.MODELS.values() if m != default)]
        start, end, token = pages.window(len(ordered), request.page_size, request.page_token)
        return pb.ListEmbeddingModelsResponse(
            next_page_token=token,
            models=[
                pb.EmbeddingModel(
                    name=m.name,
                    provider=PROVIDER.get(m.provider, pb.EMBEDDING_PROVIDER_UNSPECIFIED),
                    dimensions=m.dimensions,
                    max_tokens=m.max_tokens,
                    # bge is optional: listed as unavailable until its weights are installed.
                    available=self.providers[m.provider].configured
                    and (m.variant != "bge" or bge.installed()),
                )
                for m in ordered[start:end]
            ],
        )
