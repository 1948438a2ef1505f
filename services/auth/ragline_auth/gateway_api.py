"""The gRPC API the gateway serves, for server reflection through it: the gateway routes
reflection to the auth service, which imports every service's descriptors (the generated
stubs only) so `grpcurl list`/`describe` and `buf curl --reflect` see the whole API."""

from __future__ import annotations

from ragline.analytics.v1 import analytics_service_pb2
from ragline.auth.v1 import auth_service_pb2
from ragline.chat.v1 import chat_service_pb2
from ragline.embedder.v1 import embedder_service_pb2
from ragline.ingest.v1 import ingest_service_pb2
from ragline.retriever.v1 import retriever_service_pb2
from ragline.system.v1 import system_service_pb2

SERVICE_NAMES: tuple[str, ...] = tuple(
    service.full_name
    for module in (
        embedder_service_pb2,
        retriever_service_pb2,
        chat_service_pb2,
        ingest_service_pb2,
        system_service_pb2,
        auth_service_pb2,
        analytics_service_pb2,
    )
    for service in module.DESCRIPTOR.services_by_name.values()
)
