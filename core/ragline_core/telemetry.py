"""OpenTelemetry: a tracer provider per process, OTLP export when configured, and
instrumentation of gRPC (server and client), PyMongo and Redis."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

# gRPC services Envoy calls for itself (envoy.service.auth.v3, envoy.service.accesslog.v3).
GATEWAY_PLUMBING_PREFIX = "envoy.service."


def setup_tracing(service: str, namespace: str, otlp_endpoint: str | None) -> TracerProvider:
    """Installs the global tracer provider and instruments the libraries we use."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "service.namespace": namespace})
    )
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint, insecure=True))
        )
    trace.set_tracer_provider(provider)

    from opentelemetry.instrumentation.grpc import (
        GrpcAioInstrumentorClient,
        GrpcAioInstrumentorServer,
        filters,
    )
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    # Envoy's own calls (ext_authz on every API request, the access-log stream) are spans
    # of Envoy's trace already; a server span each would cost more than the check itself.
    GrpcAioInstrumentorServer(
        filter_=filters.negate(filters.service_prefix(GATEWAY_PLUMBING_PREFIX))
    ).instrument()
    GrpcAioInstrumentorClient().instrument()
    PymongoInstrumentor().instrument()
    RedisInstrumentor().instrument()
    return provider
