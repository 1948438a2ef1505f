"""Retriever: hybrid search over collections (behaviour lands with the retrieval issue)."""

from __future__ import annotations

from ragline.retriever.v1 import retriever_service_pb2 as pb
from ragline.retriever.v1 import retriever_service_pb2_grpc as pb_grpc
from ragline_core.placeholder import placeholder_spec

SPEC = placeholder_spec(
    "retriever",
    pb.DESCRIPTOR.services_by_name["RetrieverService"],
    pb_grpc.RetrieverServiceServicer,
    pb_grpc.add_RetrieverServiceServicer_to_server,
)
