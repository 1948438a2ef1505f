"""Assembles the retriever: index registry (following the change feed), search service."""

from __future__ import annotations

import grpc

from ragline.retriever.v1 import retriever_service_pb2 as pb
from ragline.retriever.v1 import retriever_service_pb2_grpc as pb_grpc
from ragline_core.changefeed import ChangeFeed
from ragline_core.corpus import database
from ragline_core.server import Runtime, ServiceSpec
from ragline_retriever.atlas import AtlasDense
from ragline_retriever.index import IndexParams
from ragline_retriever.registry import IndexRegistry
from ragline_retriever.rerank import Reranker
from ragline_retriever.service import SearchLimits, SearchService
from ragline_retriever.servicer import RetrieverServicer
from ragline_retriever.settings import RetrieverSettings


async def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, RetrieverSettings)
    db = database(runtime.mongo, settings.MONGODB_DATABASE)
    registry = IndexRegistry(
        db,
        ChangeFeed(runtime.redis),
        IndexParams(
            ann_min_chunks=settings.ANN_MIN_CHUNKS,
            hnsw_m=settings.HNSW_M,
            ef_search=settings.HNSW_EF_SEARCH,
        ),
        gap_grace_s=settings.INDEX_GAP_GRACE_S,
        reconcile_every_s=settings.INDEX_RECONCILE_INTERVAL_S,
    )
    await registry.start()
    runtime.cleanups.append(registry.stop)
    voyage_key = (
        settings.VOYAGE_AI_API_KEY.get_secret_value() if settings.VOYAGE_AI_API_KEY else None
    )
    service: SearchService
    reranker = Reranker(
        lambda tenant, model, text: service._embed(tenant, model, text),
        0.5,
        voyage_key,
        settings.VOYAGE_BASE_URL,
        settings.VOYAGE_RERANK_MODEL,
        settings.REQUEST_TIMEOUT,
    )
    service = SearchService(
        db,
        registry,
        runtime.channels["embedder"],
        runtime.redis,
        SearchLimits(
            settings.MAX_SEARCH_LIMIT,
            settings.MAX_QUERY_CHARS,
            settings.SEARCH_CANDIDATES,
            settings.RRF_K,
            settings.HYBRID_DENSE_WEIGHT,
            settings.HYBRID_KEYWORD_WEIGHT,
            settings.SEARCH_CACHE_TTL,
        ),
        reranker,
        AtlasDense(db, settings.ATLAS_VECTOR_INDEX, settings.ATLAS_NUM_CANDIDATES_FACTOR)
        if settings.VECTOR_BACKEND == "atlas"
        else None,
    )
    pb_grpc.add_RetrieverServiceServicer_to_server(RetrieverServicer(service), server)


SPEC = ServiceSpec(
    name="retriever",
    service_names=(pb.DESCRIPTOR.services_by_name["RetrieverService"].full_name,),
    register=register,
)
