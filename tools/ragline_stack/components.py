"""The one list of ragline's services: name, ports, protocol and whom each one calls.

The Envoy clusters (envoy_config), the local stack's ports, and the deployment files' checks
(tests/deploy: Dockerfile targets, docker-compose.yml, k8s manifests and NetworkPolicies,
the rendered Envoy config, Prometheus jobs) all read this list, so a service added here
fails tests/deploy until every artifact has it.
"""

from __future__ import annotations

from dataclasses import dataclass

# The gateway and the rate-limit service it calls (not ragline services: no gRPC health,
# no Dockerfile target of service.Dockerfile).
GATEWAY = "envoy"
GATEWAY_PORT = 8000
GATEWAY_METRICS_PORT = 9902
RATELIMIT = "ratelimit"
RATELIMIT_GRPC_PORT = 8081


@dataclass(frozen=True)
class Component:
    """A ragline service: gRPC (HTTP/2) on `grpc_port`, Prometheus on `metrics_port`, and
    optionally a plain HTTP/1.1 edge the gateway routes to (WebSocket, OpenAI API)."""

    name: str
    grpc_port: int
    metrics_port: int
    # Other ragline services (or RATELIMIT) it calls over gRPC, reached at <NAME>_ADDR;
    # the gateway calls every service.
    calls: tuple[str, ...] = ()
    http_port: int | None = None
    # Calls model provider APIs over HTTPS (OpenAI, Voyage AI) when given a key.
    provider_egress: bool = False

    @property
    def module(self) -> str:
        return f"ragline_{self.name}"

    @property
    def env_prefix(self) -> str:
        return self.name.upper()

    @property
    def headless(self) -> str:
        """The name Envoy resolves: a headless Service on Kubernetes (every pod), a network
        alias in docker compose."""
        return f"{self.name}-headless"

    @property
    def http_cluster(self) -> str:
        return f"{self.name}_http"

    def serving_ports(self) -> dict[str, int]:
        """Ports other pods connect to, by port name (the metrics port is Prometheus')."""
        ports = {"grpc": self.grpc_port}
        if self.http_port is not None:
            ports["http"] = self.http_port
        return ports


SERVICES: tuple[Component, ...] = (
    Component("embedder", 50051, 9101, provider_egress=True),
    Component("retriever", 50052, 9102, calls=("embedder",), provider_egress=True),
    # The WebSocket re-checks each message with auth and counts it against the rate limit;
    # the OpenAI-compatible POST /v1/embeddings and GET /v1/models ask the embedder.
    Component(
        "chat",
        50053,
        9103,
        calls=("retriever", "embedder", "auth", RATELIMIT),
        http_port=50063,
        provider_egress=True,
    ),
    Component("ingest", 50054, 9104, calls=("embedder", "retriever")),
    # ext_authz, the JWKS, the usage access log and key management: called by Envoy only.
    Component("auth", 50055, 9105),
)


def names(services: tuple[Component, ...] = SERVICES) -> tuple[str, ...]:
    return tuple(c.name for c in services)


def by_name(services: tuple[Component, ...] = SERVICES) -> dict[str, Component]:
    return {c.name: c for c in services}


def grpc_port(name: str, services: tuple[Component, ...] = SERVICES) -> int:
    """The gRPC port of a service of the list or of the rate-limit service."""
    return RATELIMIT_GRPC_PORT if name == RATELIMIT else by_name(services)[name].grpc_port


def call_graph(services: tuple[Component, ...] = SERVICES) -> set[tuple[str, str, int]]:
    """(caller, callee, port) for every connection the design needs inside the namespace."""
    edges = {(GATEWAY, RATELIMIT, RATELIMIT_GRPC_PORT)}
    for c in services:
        edges |= {(GATEWAY, c.name, port) for port in c.serving_ports().values()}
        edges |= {(c.name, callee, grpc_port(callee, services)) for callee in c.calls}
    return edges
