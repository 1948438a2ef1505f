"""Ingest: documents in, chunked and embedded (behaviour lands with the ingest issue)."""

from __future__ import annotations

from ragline.ingest.v1 import ingest_service_pb2 as pb
from ragline.ingest.v1 import ingest_service_pb2_grpc as pb_grpc
from ragline_core.placeholder import placeholder_spec

SPEC = placeholder_spec(
    "ingest",
    pb.DESCRIPTOR.services_by_name["IngestService"],
    pb_grpc.IngestServiceServicer,
    pb_grpc.add_IngestServiceServicer_to_server,
)
