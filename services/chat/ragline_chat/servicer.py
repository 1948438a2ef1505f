"""ChatService gRPC servicer: convert, call the domain, convert back."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ragline.chat.v1 import chat_service_pb2 as pb
from ragline.chat.v1 import chat_service_pb2_grpc as pb_grpc
from ragline_chat import convert
from ragline_chat.service import ChatService
from ragline_core import pages
from ragline_core.identity import tenant_of
from ragline_core.rpc_types import Context


class ChatServicer(pb_grpc.ChatServiceServicer):
    def __init__(self, service: ChatService) -> None:
        self.service = service

    async def Chat(self, request: pb.ChatRequest, context: Context) -> pb.ChatResponse:
        result = await self.service.chat(convert.chat_input(request), tenant_of(context))
        return convert.result(result)

    async def StreamChat(
        self, request: pb.StreamChatRequest, context: Context
    ) -> AsyncIterator[pb.StreamChatResponse]:
        async for event in self.service.stream(convert.chat_input(request), tenant_of(context)):
            yield convert.event(event)

    async def ListConversations(
        self, request: pb.ListConversationsRequest, context: Context
    ) -> pb.ListConversationsResponse:
        items, token = await self.service.list_conversations(
            tenant_of(context), request.page_size, request.page_token
        )
        return pb.ListConversationsResponse(
            conversations=[convert.conversation(c, with_messages=False) for c in items],
            next_page_token=token,
        )

    async def GetConversation(
        self, request: pb.GetConversationRequest, context: Context
    ) -> pb.Conversation:
        conv = await self.service.get_conversation(tenant_of(context), request.conversation_id)
        return convert.conversation(conv, True)

    async def DeleteConversation(
        self, request: pb.DeleteConversationRequest, context: Context
    ) -> pb.DeleteConversationResponse:
        removed = await self.service.delete_conversation(
            tenant_of(context), request.conversation_id
        )
        return pb.DeleteConversationResponse(
            conversation_id=request.conversation_id, deleted_messages=removed
        )

    async def ListChatModels(
        self, request: pb.ListChatModelsRequest, context: Context
    ) -> pb.ListChatModelsResponse:
        models = self.service.registry.ordered(self.service.default_model.name)
        start, end, token = pages.window(len(models), request.page_size, request.page_token)
        return pb.ListChatModelsResponse(
            next_page_token=token,
            models=[
                pb.ChatModel(
                    name=m.name,
                    provider=convert.provider(m.provider),
                    max_output_tokens=m.max_output_tokens,
                    context_tokens=m.context_tokens,
                    usd_per_million_input_tokens=m.usd_per_million_input,
                    usd_per_million_output_tokens=m.usd_per_million_output,
                    available=self.service.providers[m.provider].configured,
                )
                for m in models[start:end]
            ],
        )
