"""Chat: grounded answers with citations (behaviour lands with the chat issue)."""

from __future__ import annotations

from ragline.chat.v1 import chat_service_pb2 as pb
from ragline.chat.v1 import chat_service_pb2_grpc as pb_grpc
from ragline_core.placeholder import placeholder_spec

SPEC = placeholder_spec(
    "chat",
    pb.DESCRIPTOR.services_by_name["ChatService"],
    pb_grpc.ChatServiceServicer,
    pb_grpc.add_ChatServiceServicer_to_server,
)
