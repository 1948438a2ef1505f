"""Assembles the chat service: providers, store, retriever, domain service, the gRPC
servicer and the HTTP edge (WebSocket + OpenAI-compatible API)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

import grpc

from ragline.chat.v1 import chat_service_pb2 as pb
from ragline.chat.v1 import chat_service_pb2_grpc as pb_grpc
from ragline_chat.auth_client import AuthClient, RateLimiter
from ragline_chat.embeddings import GrpcEmbedder
from ragline_chat.http_edge import ChatHttpEdge, start_http
from ragline_chat.local_runtime.supervisor import Availability
from ragline_chat.models import ModelRegistry
from ragline_chat.providers.anthropic_provider import AnthropicProvider
from ragline_chat.providers.base import ChatProvider
from ragline_chat.providers.extractive import ExtractiveProvider, Similarity
from ragline_chat.providers.local import LocalProvider
from ragline_chat.providers.openai_provider import OpenAIChatProvider
from ragline_chat.relevance import RelevanceGatedRetriever
from ragline_chat.retention import ConversationRetention
from ragline_chat.retrieval import GrpcRetriever
from ragline_chat.service import ChatService, Limits
from ragline_chat.servicer import ChatServicer
from ragline_chat.settings import ChatSettings
from ragline_chat.similarity import SentenceSimilarity
from ragline_chat.store import ConversationStore
from ragline_chat.usage_log import UsageLog
from ragline_chat.ws_guard import SocketGuards
from ragline_core.channels import CHANNEL_OPTIONS
from ragline_core.retry import RetryPolicy
from ragline_core.server import Runtime, ServiceSpec
from ragline_core.spend import SpendGuard

log = logging.getLogger("ragline.chat")
# The WebSocket's route, as the gateway names it (usage analytics group by it).
WS_ROUTE = "/api/v1/chat/ws"


def _secret(value: object) -> str | None:
    getter = getattr(value, "get_secret_value", None)
    return str(getter()) if getter is not None else None


def build_providers(
    settings: ChatSettings, similarity: Similarity | None = None
) -> dict[str, ChatProvider]:
    policy = RetryPolicy(
        attempts=settings.PROVIDER_MAX_ATTEMPTS,
        base_delay=settings.PROVIDER_BACKOFF_BASE,
        budget_tokens=settings.PROVIDER_RETRY_BUDGET_TOKENS,
        budget_ratio=settings.PROVIDER_RETRY_BUDGET_RATIO,
        max_delay=settings.PROVIDER_BACKOFF_MAX,
    )
    return {
        "extractive": ExtractiveProvider(similarity),
        "local": LocalProvider(
            settings.CHAT_LOCAL_MODEL_PATH,
            settings.CHAT_LOCAL_THREADS,
            settings.CHAT_LOCAL_CONTEXT_TOKENS,
            enabled=settings.CHAT_LOCAL_ENABLED,
            cpuinfo_path=settings.CHAT_LOCAL_CPUINFO_PATH,
            log_level=settings.LOG_LEVEL,
        ),
        "openai": OpenAIChatProvider(
            "openai",
            "OPENAI_API_KEY",
            _secret(settings.OPENAI_API_KEY),
            settings.CHAT_OPENAI_BASE_URL or settings.OPENAI_BASE_URL,
            policy,
            settings.REQUEST_TIMEOUT,
            settings.PROVIDER_TIMEOUT,
        ),
        "openai_compatible": OpenAIChatProvider(
            "openai_compatible",
            "OPENAI_COMPATIBLE_BASE_URL",
            _secret(settings.OPENAI_COMPATIBLE_API_KEY),
            settings.OPENAI_COMPATIBLE_BASE_URL,
            policy,
            settings.REQUEST_TIMEOUT,
            settings.PROVIDER_TIMEOUT,
            require_key=False,
        ),
        "anthropic": AnthropicProvider(
            _secret(settings.ANTHROPIC_API_KEY),
            settings.ANTHROPIC_BASE_URL,
            policy,
            settings.REQUEST_TIMEOUT,
            settings.PROVIDER_TIMEOUT,
        ),
    }


async def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, ChatSettings)
    embedder = GrpcEmbedder(runtime.channels["embedder"])
    providers = build_providers(settings, SentenceSimilarity(embedder))
    store = ConversationStore(runtime.mongo[settings.MONGODB_DATABASE])
    try:
        await store.ensure_indexes()
    except Exception:
        log.warning("could not create conversation indexes yet", exc_info=True)
    service = ChatService(
        ModelRegistry(
            settings.OPENAI_COMPATIBLE_MODELS,
            passthrough=[n for n in ("openai", "anthropic") if providers[n].configured],
        ),
        providers,
        store,
        RelevanceGatedRetriever(
            GrpcRetriever(runtime.channels["retriever"]), embedder, settings.CHAT_RELEVANCE_FLOOR
        ),
        Limits(
            max_message_chars=settings.CHAT_MAX_MESSAGE_CHARS,
            default_retrieval_limit=settings.CHAT_RETRIEVAL_LIMIT,
            max_retrieval_limit=settings.CHAT_MAX_RETRIEVAL_LIMIT,
            history_token_budget=settings.CHAT_HISTORY_TOKEN_BUDGET,
            context_token_budget=settings.CHAT_CONTEXT_TOKEN_BUDGET,
            keepalive_seconds=settings.CHAT_KEEPALIVE_SECONDS,
            max_conversation_messages=settings.CHAT_MAX_CONVERSATION_MESSAGES,
            default_timeout=settings.REQUEST_TIMEOUT,
            provider_timeout=settings.PROVIDER_TIMEOUT,
        ),
        settings.CHAT_DEFAULT_MODEL,
        settings.CHAT_FALLBACK_MODELS,
        settings.CHAT_DEFAULT_COLLECTION,
        SpendGuard(runtime.redis, settings.SPEND_CAP_USD_PER_DAY, settings.TENANT_SPEND_CAPS),
    )
    pb_grpc.add_ChatServiceServicer_to_server(ChatServicer(service), server)

    # The WebSocket's per-message checks: the auth service (credential, usage) and the
    # gateway's rate limiter.
    limiter_channel = (
        grpc.aio.insecure_channel(settings.RATELIMIT_ADDR, options=CHANNEL_OPTIONS)
        if settings.RATELIMIT_ADDR
        else None
    )
    usage_log = UsageLog(runtime.channels["auth"], WS_ROUTE)
    guards = SocketGuards(
        AuthClient(runtime.channels["auth"], WS_ROUTE),
        RateLimiter(limiter_channel),
        usage_log,
        settings.CHAT_WS_MAX_SESSION_SECONDS,
    )
    edge = ChatHttpEdge(
        service,
        settings.CHAT_KEEPALIVE_SECONDS,
        settings.CHAT_MAX_MESSAGE_CHARS * 4 + 16_384,
        guards,
        embedder,
    )
    tls_context = runtime.tls.server_ssl_context() if runtime.tls else None
    runner = await start_http(edge, settings.CHAT_HTTP_ADDR, tls_context)
    log.info(
        "chat http edge listening",
        extra={"address": settings.CHAT_HTTP_ADDR, "mutual_tls": tls_context is not None},
    )

    local = providers["local"]
    assert isinstance(local, LocalProvider)
    loop = asyncio.get_running_loop()

    def report(availability: Availability) -> None:  # on the local model's supervisor thread
        # Only the sub-component: /health looks at the chat process itself, which a crash
        # of the model's child process leaves serving.
        with contextlib.suppress(RuntimeError):  # the loop closed: shutting down
            loop.call_soon_threadsafe(
                runtime.set_component, "provider.local", availability.available
            )

    # In the background (a child process loads it and runs a self-test): the extractive
    # model and paid providers serve meanwhile.
    local.start(on_change=report)
    runtime.set_component("provider.local", local.configured)
    for name in ("openai", "openai_compatible", "anthropic"):
        if providers[name].configured:
            runtime.set_component(f"provider.{name}", True)

    stop_usage = asyncio.Event()
    usage_task = loop.create_task(usage_log.run(stop_usage))
    stop_retention = asyncio.Event()
    retention_task = None
    if settings.CHAT_CONVERSATION_RETENTION_DAYS > 0:
        retention = ConversationRetention(
            store, timedelta(days=settings.CHAT_CONVERSATION_RETENTION_DAYS)
        )
        retention_task = loop.create_task(retention.run(stop_retention))

    async def close() -> None:
        await runner.cleanup()
        await service.drain()
        stop_usage.set()  # after the sockets closed: their last messages are sent
        with contextlib.suppress(Exception):
            await asyncio.wait_for(usage_task, 10)
        stop_retention.set()
        if retention_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(retention_task, 5)
        if limiter_channel is not None:
            await limiter_channel.close(None)
        for provider in providers.values():
            await provider.close()

    runtime.cleanups.append(close)


SPEC = ServiceSpec(
    name="chat",
    service_names=(pb.DESCRIPTOR.services_by_name["ChatService"].full_name,),
    register=register,
)
