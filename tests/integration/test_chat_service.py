"""The chat service on its own port (real FerretDB, Redis, retriever): provider failure
without a fallback answers 503 and leaves a failed turn marked as such."""

from __future__ import annotations

import uuid

import grpc
import httpx
import pytest

from ragline.chat.v1 import chat_service_pb2 as pb
from ragline.chat.v1 import chat_service_pb2_grpc as pb_grpc
from tests.conftest import free_port
from tests.e2e.test_chat_api import KESTREL, ingest
from tests.support.auth import DEV_KEY, DEV_TENANT
from tests.support.identity import as_tenant, identity_channel
from tests.support.processes import extra_service

TENANT = as_tenant(DEV_TENANT)


@pytest.fixture(scope="module")
def lone_chat(stack, tmp_path_factory):
    """A chat service with no fallback models (and no local model)."""
    port = free_port()
    with extra_service(
        stack,
        "chat",
        port,
        free_port(),
        tmp_path_factory.mktemp("chat") / "chat.log",
        CHAT_FALLBACK_MODELS="none",
        CHAT_LOCAL_ENABLED="false",
        CHAT_HTTP_ADDR=f"127.0.0.1:{free_port()}",
    ):
        yield f"127.0.0.1:{port}"


async def test_provider_down_without_fallback_is_503_and_marks_the_turn(
    stack, lone_chat, fake_chat_openai
):
    collection = f"lone-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(
        base_url=stack.cfg.base_url, timeout=60, headers={"authorization": f"Bearer {DEV_KEY}"}
    ) as api:
        await ingest(api, collection, [{"title": "Kestrel", "content": KESTREL}])
    async with identity_channel(lone_chat) as channel:
        stub = pb_grpc.ChatServiceStub(channel)
        ok = await stub.Chat(
            pb.ChatRequest(message="Who created Kestrel?", collection=collection),
            metadata=TENANT,
            timeout=30,
        )
        assert ok.model == "extractive"
        fake_chat_openai.reset(failures=[500] * 10)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Chat(
                pb.ChatRequest(
                    message="And when?", conversation_id=ok.conversation_id, model="gpt-4o-mini"
                ),
                metadata=TENANT,
                timeout=30,
            )
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "openai is unavailable" in caught.value.details()
        # Streams fail the same way before their first event: a status, not a half stream.
        with pytest.raises(grpc.aio.AioRpcError) as streamed:
            async for _ in stub.StreamChat(
                pb.StreamChatRequest(
                    message="And where?", conversation_id=ok.conversation_id, model="gpt-4o-mini"
                ),
                metadata=TENANT,
                timeout=30,
            ):
                pass
        assert streamed.value.code() == grpc.StatusCode.UNAVAILABLE
        fake_chat_openai.reset()

        conv = await stub.GetConversation(
            pb.GetConversationRequest(conversation_id=ok.conversation_id),
            metadata=TENANT,
            timeout=10,
        )
        turns = [(m.role, m.status, m.error_reason) for m in conv.messages]
        assert turns == [
            (pb.MESSAGE_ROLE_USER, pb.MESSAGE_STATUS_COMPLETE, ""),
            (pb.MESSAGE_ROLE_ASSISTANT, pb.MESSAGE_STATUS_COMPLETE, ""),
            (pb.MESSAGE_ROLE_USER, pb.MESSAGE_STATUS_COMPLETE, ""),
            (pb.MESSAGE_ROLE_ASSISTANT, pb.MESSAGE_STATUS_FAILED, "PROVIDER_UNAVAILABLE"),
            (pb.MESSAGE_ROLE_USER, pb.MESSAGE_STATUS_COMPLETE, ""),
            (pb.MESSAGE_ROLE_ASSISTANT, pb.MESSAGE_STATUS_FAILED, "PROVIDER_UNAVAILABLE"),
        ]
        # Another tenant cannot see or continue it.
        with pytest.raises(grpc.aio.AioRpcError) as hidden:
            await stub.GetConversation(
                pb.GetConversationRequest(conversation_id=ok.conversation_id),
                metadata=as_tenant("someone-else"),
                timeout=10,
            )
        assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
