"""RetrieverService gRPC servicer: validate, convert, call the domain, convert back."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2

from ragline.retriever.v1 import retriever_service_pb2 as pb
from ragline.retriever.v1 import retriever_service_pb2_grpc as pb_grpc
from ragline_core.corpus import check_collection_name, get_collection
from ragline_core.errors import InvalidArgumentError
from ragline_core.identity import tenant_of
from ragline_core.rpc_types import Context
from ragline_core.system import this_process
from ragline_retriever import ranking
from ragline_retriever.filters import check_encoded_size
from ragline_retriever.service import SearchQuery, SearchService

MAX_SUGGESTIONS = 50


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    if value:
        out.update(value)
    return out


class RetrieverServicer(pb_grpc.RetrieverServiceServicer):
    def __init__(self, service: SearchService) -> None:
        self.service = service

    async def Search(self, request: pb.SearchRequest, context: Context) -> pb.SearchResponse:
        filters = {}
        if request.filters.fields:
            check_encoded_size(request.filters.ByteSize())
            filters = json_format.MessageToDict(request.filters)
        result = await self.service.search(
            tenant_of(context),
            SearchQuery(
                query=request.query,
                collection=request.collection,
                limit=request.limit if request.HasField("limit") else None,
                filters=filters,
                rerank=request.rerank,
                mode=_mode(request.mode),
                page_size=request.page_size,
                page_token=request.page_token,
                facets=tuple(request.facets),
            ),
        )
        return pb.SearchResponse(
            hits=[
                pb.SearchHit(
                    chunk_id=h.chunk_id,
                    document_id=h.document_id,
                    title=h.title,
                    text=h.text,
                    score=h.score,
                    metadata=_struct(h.metadata),
                    chunk_index=h.chunk_index,
                )
                for h in result.hits
            ],
            next_page_token=result.next_page_token,
            facets=[
                pb.Facet(field=f, values=[pb.FacetValue(value=v, count=c) for v, c in vs])
                for f, vs in result.facets.items()
            ],
            mode=MODE_ENUM[result.mode],
            corrections=result.corrections,
            reranked=result.reranked,
        )

    async def SuggestQueries(
        self, request: pb.SuggestQueriesRequest, context: Context
    ) -> pb.SuggestQueriesResponse:
        check_collection_name(request.collection)
        if not request.prefix.strip():
            raise InvalidArgumentError("prefix must not be empty", field="prefix")
        limit = request.limit or 10
        if not 1 <= limit <= MAX_SUGGESTIONS:
            raise InvalidArgumentError(
                f"limit must be between 1 and {MAX_SUGGESTIONS}", field="limit"
            )
        info = await get_collection(self.service.db, tenant_of(context), request.collection)
        index = await self.service.registry.current(info)
        return pb.SuggestQueriesResponse(
            suggestions=ranking.suggestions(request.prefix, index.surface, index.titles, limit)
        )

    async def GetIndexStatus(
        self, request: pb.GetIndexStatusRequest, context: Context
    ) -> pb.IndexStatus:
        check_collection_name(request.collection)
        info = await get_collection(self.service.db, tenant_of(context), request.collection)
        state = self.service.registry.state((info.tenant, info.name))
        status = pb.IndexStatus(
            collection=info.name,
            replica=this_process(),
            loaded=state.loaded,
            database_version=info.version,
            index_version=state.index_version,
            indexed_chunks=state.indexed_chunks,
            gap_chunks=state.gap_chunks,
        )
        if state.reconciled_at is not None:
            status.reconcile_time.FromSeconds(int(state.reconciled_at))
        return status


# The domain names modes in lower case; unspecified is the default (hybrid).
MODE_NAME = {
    pb.SEARCH_MODE_UNSPECIFIED: "",
    pb.SEARCH_MODE_DENSE: "dense",
    pb.SEARCH_MODE_KEYWORD: "keyword",
    pb.SEARCH_MODE_HYBRID: "hybrid",
}
MODE_ENUM = {name: mode for mode, name in MODE_NAME.items() if name}


def _mode(mode: int) -> str:
    if mode not in MODE_NAME:  # a number no value names (JSON takes names only)
        raise InvalidArgumentError(
            f"mode must be one of {', '.join(pb.SearchMode.keys())}",
            reason="BAD_MODE",
            field="mode",
        )
    return MODE_NAME[mode]  # type: ignore[index]
