"""Adapter to RetrieverService.Search over gRPC (the caller's tenant and deadline travel)."""

from __future__ import annotations

from typing import Any, Protocol

import grpc
from google.protobuf import json_format, struct_pb2

from ragline.retriever.v1 import retriever_service_pb2 as rpb
from ragline.retriever.v1 import retriever_service_pb2_grpc as rpb_grpc
from ragline_chat.domain import Passage
from ragline_core import caller
from ragline_core.errors import RaglineError, UnavailableError, from_rpc_error


class Retriever(Protocol):
    async def search(
        self, tenant: str, query: str, collection: str, limit: int, filters: dict[str, Any] | None
    ) -> list[Passage]:
        """The best chunks for `query`, numbered from 1."""


class GrpcRetriever:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = rpb_grpc.RetrieverServiceStub(channel)

    async def search(
        self, tenant: str, query: str, collection: str, limit: int, filters: dict[str, Any] | None
    ) -> list[Passage]:
        request = rpb.SearchRequest(query=query, collection=collection, limit=limit)
        if filters:
            request.filters.CopyFrom(json_format.ParseDict(filters, struct_pb2.Struct()))
        try:
            reply = await self.stub.Search(request, metadata=caller.outgoing(tenant))
        except grpc.aio.AioRpcError as exc:
            raise _map(exc) from None
        return [
            Passage(
                number=i + 1,
                chunk_id=hit.chunk_id,
                document_id=hit.document_id,
                title=hit.title,
                text=hit.text,
                score=hit.score,
                chunk_index=hit.chunk_index,
            )
            for i, hit in enumerate(reply.hits)
        ]


def _map(exc: grpc.aio.AioRpcError) -> RaglineError:
    if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
        return UnavailableError("retrieval is not available", reason="RETRIEVER_UNAVAILABLE")
    return from_rpc_error(exc, upstream="retriever")
