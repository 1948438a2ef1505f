"""Domain ↔ protobuf, shared by the gRPC servicer and the HTTP edge (WebSocket events are
the same JSON the gateway's transcoder produces for the gRPC stream)."""

from __future__ import annotations

from typing import Any, cast

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor

from ragline.chat.v1 import chat_service_pb2 as pb
from ragline_chat import domain as d
from ragline_core import json_fields

STATUS = {
    d.COMPLETE: pb.MESSAGE_STATUS_COMPLETE,
    d.FAILED: pb.MESSAGE_STATUS_FAILED,
    d.CANCELLED: pb.MESSAGE_STATUS_CANCELLED,
}
# The domain keeps OpenAI's strings (the OpenAI-compatible routes send them as they are);
# the v1 API names them with enums. A reason it does not name is UNSPECIFIED.
FINISH_REASON = {
    "stop": pb.FINISH_REASON_STOP,
    "length": pb.FINISH_REASON_LENGTH,
    "content_filter": pb.FINISH_REASON_CONTENT_FILTER,
}
ROLE = {"user": pb.MESSAGE_ROLE_USER, "assistant": pb.MESSAGE_ROLE_ASSISTANT}
PROVIDER = {
    "extractive": pb.CHAT_PROVIDER_EXTRACTIVE,
    "local": pb.CHAT_PROVIDER_LOCAL,
    "openai": pb.CHAT_PROVIDER_OPENAI,
    "openai_compatible": pb.CHAT_PROVIDER_OPENAI_COMPATIBLE,
    "anthropic": pb.CHAT_PROVIDER_ANTHROPIC,
}


def finish_reason(reason: str) -> pb.FinishReason:
    return FINISH_REASON.get(reason, pb.FINISH_REASON_UNSPECIFIED)


def provider(name: str) -> pb.ChatProvider:
    return PROVIDER.get(name, pb.CHAT_PROVIDER_UNSPECIFIED)


def chat_input(request: pb.ChatRequest | pb.StreamChatRequest) -> d.ChatInput:
    return d.ChatInput(
        message=request.message,
        conversation_id=request.conversation_id,
        model=request.model,
        collection=request.collection,
        filters=json_format.MessageToDict(request.filters) if request.HasField("filters") else None,
        limit=request.limit,
        temperature=request.temperature if request.HasField("temperature") else None,
        max_tokens=request.max_tokens,
    )


_CHAT_FIELDS = json_fields.schema_of(cast(Descriptor, pb.StreamChatRequest.DESCRIPTOR))


def chat_input_from_json(body: dict[str, Any]) -> d.ChatInput:
    """Parses a JSON chat request exactly as the gateway would: an unknown field is the
    gateway's 400 (UNKNOWN_FIELD, snake_case names), anything else malformed a ParseError."""
    json_fields.reject_unknown(body, _CHAT_FIELDS)
    request = json_format.ParseDict(body, pb.StreamChatRequest())
    return chat_input(request)


def citation(c: d.Citation) -> pb.Citation:
    return pb.Citation(
        chunk_id=c.chunk_id,
        document_id=c.document_id,
        title=c.title,
        chunk_index=c.chunk_index,
        quote=c.quote,
        index=c.index,
        score=c.score,
    )


def usage(u: d.Usage) -> pb.ChatUsage:
    return pb.ChatUsage(
        prompt_tokens=u.prompt_tokens,
        completion_tokens=u.completion_tokens,
        estimated_cost_usd=u.estimated_cost_usd,
        total_tokens=u.total_tokens,
    )


def event(e: d.Event) -> pb.StreamChatResponse:
    if isinstance(e, d.Start):
        return pb.StreamChatResponse(
            start=pb.StreamStart(
                conversation_id=e.conversation_id, model=e.model, search_query=e.search_query
            )
        )
    if isinstance(e, d.Delta):
        return pb.StreamChatResponse(delta=e.text)
    if isinstance(e, d.CitationEvent):
        return pb.StreamChatResponse(citation=citation(e.citation))
    if isinstance(e, d.UsageEvent):
        return pb.StreamChatResponse(usage=usage(e.usage))
    if isinstance(e, d.Done):
        return pb.StreamChatResponse(
            done=pb.StreamDone(
                finish_reason=finish_reason(e.finish_reason), message_id=e.message_id
            )
        )
    if isinstance(e, d.ErrorEvent):
        return pb.StreamChatResponse(
            error=pb.StreamError(code=e.code, message=e.message, reason=e.reason)
        )
    return pb.StreamChatResponse(ping=pb.StreamPing(elapsed_seconds=e.elapsed_seconds))


def event_json(e: d.Event) -> dict[str, Any]:
    return to_json(event(e))


def to_json(message: Any) -> dict[str, Any]:
    out: dict[str, Any] = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return out


def result(r: d.ChatResult) -> pb.ChatResponse:
    return pb.ChatResponse(
        answer=r.answer,
        citations=[citation(c) for c in r.citations],
        conversation_id=r.conversation_id,
        usage=usage(r.usage),
        model=r.model,
        finish_reason=finish_reason(r.finish_reason),
        message_id=r.message_id,
        search_query=r.search_query,
    )


def conversation(c: d.Conversation, with_messages: bool) -> pb.Conversation:
    out = pb.Conversation(
        conversation_id=c.conversation_id,
        title=c.title,
        collection=c.collection,
        model=c.model,
        message_count=c.message_count,
    )
    out.create_time.FromDatetime(c.created_at)
    out.update_time.FromDatetime(c.updated_at)
    if with_messages:
        for m in c.messages:
            msg = pb.Message(
                message_id=m.message_id,
                role=ROLE.get(m.role, pb.MESSAGE_ROLE_UNSPECIFIED),
                content=m.content,
                status=STATUS.get(m.status, pb.MESSAGE_STATUS_UNSPECIFIED),
                citations=[citation(x) for x in m.citations],
                model=m.model,
                usage=usage(m.usage),
                error_reason=m.error_reason,
                sequence=m.sequence,
            )
            msg.create_time.FromDatetime(m.created_at)
            out.messages.append(msg)
    return out
