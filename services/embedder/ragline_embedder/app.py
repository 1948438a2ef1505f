"""Assembles the embedder: providers, cache and domain service on a gRPC server."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc

from ragline.embedder.v1 import embedder_service_pb2 as pb
from ragline.embedder.v1 import embedder_service_pb2_grpc as pb_grpc
from ragline_core.embedding_models import resolve
from ragline_core.retry import RetryPolicy
from ragline_core.server import Runtime, ServiceSpec
from ragline_core.spend import SpendGuard
from ragline_embedder.cache import EmbeddingCache
from ragline_embedder.minilm import ModelUnavailableError
from ragline_embedder.providers.base import EmbeddingProvider
from ragline_embedder.providers.local import LocalProvider
from ragline_embedder.providers.openai_provider import OpenAIProvider
from ragline_embedder.providers.voyage_provider import VoyageProvider
from ragline_embedder.service import EmbeddingService, Limits
from ragline_embedder.servicer import EmbedderServicer
from ragline_embedder.settings import EmbedderSettings

log = logging.getLogger("ragline.embedder")


def build_providers(settings: EmbedderSettings) -> dict[str, EmbeddingProvider]:
    policy = RetryPolicy(
        attempts=settings.PROVIDER_MAX_ATTEMPTS,
        base_delay=settings.PROVIDER_BACKOFF_BASE,
        budget_tokens=settings.PROVIDER_RETRY_BUDGET_TOKENS,
        budget_ratio=settings.PROVIDER_RETRY_BUDGET_RATIO,
        max_delay=settings.PROVIDER_BACKOFF_MAX,
    )
    cache_dir = Path(settings.RAGLINE_MODEL_CACHE) if settings.RAGLINE_MODEL_CACHE else None
    openai_key = settings.OPENAI_API_KEY.get_secret_value() if settings.OPENAI_API_KEY else None
    voyage_key = (
        settings.VOYAGE_AI_API_KEY.get_secret_value() if settings.VOYAGE_AI_API_KEY else None
    )
    return {
        "local": LocalProvider(
            settings.LOCAL_MODEL_THREADS, settings.LOCAL_MODEL_CONCURRENCY, cache_dir
        ),
        "openai": OpenAIProvider(
            openai_key,
            settings.OPENAI_BASE_URL,
            policy,
            settings.REQUEST_TIMEOUT,
            settings.PROVIDER_TIMEOUT,
            settings.PROVIDER_MAX_CONNECTIONS,
        ),
        "voyage": VoyageProvider(
            voyage_key,
            settings.VOYAGE_BASE_URL,
            policy,
            settings.REQUEST_TIMEOUT,
            settings.PROVIDER_TIMEOUT,
            settings.PROVIDER_MAX_CONNECTIONS,
        ),
    }


async def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, EmbedderSettings)
    providers = build_providers(settings)
    service = EmbeddingService(
        providers,
        EmbeddingCache(runtime.redis, settings.CACHE_TTL),
        Limits(settings.MAX_BATCH_SIZE, settings.MAX_TEXT_CHARS, settings.REQUEST_TIMEOUT),
        settings.EMBEDDING_DEFAULT_MODEL,
        settings.EMBEDDING_FALLBACK_MODELS,
        SpendGuard(runtime.redis, settings.SPEND_CAP_USD_PER_DAY, settings.TENANT_SPEND_CAPS),
    )
    pb_grpc.add_EmbedderServiceServicer_to_server(EmbedderServicer(service, providers), server)

    # Load the default local model before serving, so the first request is not slow.
    local = providers["local"]
    assert isinstance(local, LocalProvider)
    default = resolve(settings.EMBEDDING_DEFAULT_MODEL)
    try:
        await asyncio.to_thread(
            local.load, default.variant if default.provider == "local" else "fp32"
        )
    except ModelUnavailableError:
        log.error("local embedding model unavailable", extra={"error": local.error})
    runtime.set_component("provider.local", local.configured)
    for name in ("openai", "voyage"):
        if providers[name].configured:
            runtime.set_component(f"provider.{name}", True)

    async def close() -> None:
        for provider in providers.values():
            await provider.close()

    runtime.cleanups.append(close)


SPEC = ServiceSpec(
    name="embedder",
    service_names=(pb.DESCRIPTOR.services_by_name["EmbedderService"].full_name,),
    register=register,
)
