"""Renders envoy/envoy.yaml.tmpl: the route table, clusters and error mappers are data here.

Routes match the REST path the client sent (the transcoder's match_incoming_request_route)
and the native gRPC path, so both reach the same cluster with the same settings.
"""

from __future__ import annotations

import string
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "envoy" / "envoy.yaml.tmpl"
SERVICES = ("embedder", "retriever", "chat", "ingest")
ERROR_DOMAIN = "ragline.dev"


@dataclass(frozen=True)
class Route:
    """One route: a path match and the service that serves it."""

    match: dict[str, Any]
    cluster: str
    # Streams must not be cut by the default 15 s route timeout.
    streaming: bool = False


# REST routes; the order matters where prefixes overlap.
REST_ROUTES = (
    Route({"path": "/api/v1/embeddings"}, "embedder"),
    Route({"path": "/api/v1/embedding-models"}, "embedder"),
    Route({"path": "/api/v1/search"}, "retriever"),
    Route({"safe_regex": {"regex": "^/api/v1/collections/[^/]+/suggestions$"}}, "retriever"),
    Route({"path": "/api/v1/chat:stream"}, "chat", streaming=True),
    Route({"path": "/api/v1/chat"}, "chat"),
    Route({"path": "/api/v1/ingest"}, "ingest"),
    Route({"safe_regex": {"regex": "^/api/v1/jobs/[^/]+:watch$"}}, "ingest", streaming=True),
    Route({"prefix": "/api/v1/jobs/"}, "ingest"),
    Route({"path": "/api/v1/collections"}, "ingest"),
    Route({"prefix": "/api/v1/collections/"}, "ingest"),
)

# Envoy's own replies as google.rpc.Status JSON: HTTP status → (gRPC code, reason).
LOCAL_REPLY_CODES = {
    400: (3, "INVALID_ARGUMENT"),
    401: (16, "UNAUTHENTICATED"),
    403: (7, "PERMISSION_DENIED"),
    404: (5, "NOT_FOUND"),
    405: (12, "METHOD_NOT_ALLOWED"),
    408: (4, "REQUEST_TIMEOUT"),
    413: (3, "REQUEST_TOO_LARGE"),
    429: (8, "RATE_LIMITED"),
    431: (3, "HEADERS_TOO_LARGE"),
    500: (13, "INTERNAL"),
    502: (14, "BAD_GATEWAY"),
    503: (14, "UNAVAILABLE"),
    504: (4, "DEADLINE_EXCEEDED"),
}

# Replies whose Envoy body is empty get a message of their own.
MESSAGES = {404: "no such endpoint: %REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"}


@dataclass(frozen=True)
class GatewayConfig:
    """Addresses and limits the gateway needs."""

    api_port: int
    admin_port: int
    descriptor_path: Path
    service_addrs: dict[str, str]  # "embedder" -> "host:port"
    request_timeout_s: float
    max_request_bytes: int = 4 * 1024 * 1024
    listen_host: str = "127.0.0.1"
    health_check_interval_s: float = 2.0


def render(cfg: GatewayConfig) -> str:
    values = {
        "ENVOY_ADMIN_PORT": str(cfg.admin_port),
        "ENVOY_LISTEN_HOST": cfg.listen_host,
        "API_PORT": str(cfg.api_port),
        "MAX_REQUEST_BYTES": str(cfg.max_request_bytes),
        "DESCRIPTOR_PATH": str(cfg.descriptor_path),
        "LOCAL_REPLY_MAPPERS": _block(_local_reply_mappers(), 20),
        "ROUTES": _block(_routes(cfg), 24),
        "CLUSTERS": _block(_clusters(cfg), 4),
    }
    return string.Template(TEMPLATE.read_text()).substitute(values)


def _block(items: list[dict[str, Any]], indent: int) -> str:
    text = yaml.safe_dump(items, sort_keys=False, default_flow_style=False, width=200)
    return textwrap.indent(text.rstrip("\n"), " " * indent)


def _rest_action(cluster: str, route: Route, cfg: GatewayConfig) -> dict[str, Any]:
    timeout = cfg.request_timeout_s
    action: dict[str, Any] = {"cluster": cluster}
    if route.streaming:
        action["timeout"] = "0s"
    else:
        # The service gets the deadline (grpc-timeout) and answers 504 itself; Envoy's own
        # timeout is the backstop a little later.
        action["timeout"] = f"{timeout + 5:g}s"
    return action


def _routes(cfg: GatewayConfig) -> list[dict[str, Any]]:
    deadline_header = {
        "header": {"key": "grpc-timeout", "value": f"{int(cfg.request_timeout_s * 1000)}m"},
        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
    }
    routes: list[dict[str, Any]] = [
        {
            "name": "health",
            "match": {"path": "/health"},
            "route": {
                "cluster": "system",
                "timeout": "10s",
                # Any live service can answer; skip dead ones.
                "retry_policy": {
                    "retry_on": "connect-failure,refused-stream,reset",
                    "num_retries": 3,
                    "retry_host_predicate": [
                        {
                            "name": "envoy.retry_host_predicates.previous_hosts",
                            "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions"
                                ".retry.host.previous_hosts.v3.PreviousHostsPredicate"
                            },
                        }
                    ],
                    "host_selection_retry_max_attempts": 5,
                },
            },
        },
        {
            "name": "metrics",
            "match": {
                "path": "/metrics",
                "headers": [{"name": ":method", "string_match": {"exact": "GET"}}],
            },
            "route": {
                "cluster": "envoy_admin",
                "prefix_rewrite": "/stats/prometheus",
                "timeout": "10s",
            },
        },
    ]
    for route in REST_ROUTES:
        entry: dict[str, Any] = {
            "match": route.match,
            "route": _rest_action(route.cluster, route, cfg),
        }
        if not route.streaming:
            entry["request_headers_to_add"] = [deadline_header]
        routes.append(entry)
    # Native gRPC: the client's own grpc-timeout is the deadline.
    grpc_prefixes = [(f"/ragline.{s}.v1.", s) for s in SERVICES]
    grpc_prefixes += [("/ragline.system.v1.", "system"), ("/grpc.health.v1.Health/", "system")]
    for prefix, cluster in grpc_prefixes:
        routes.append(
            {
                "match": {"prefix": prefix, "grpc": {}},
                "route": {
                    "cluster": cluster,
                    "timeout": "0s",
                    "max_stream_duration": {"grpc_timeout_header_max": "0s"},
                },
            }
        )
    return routes


def _endpoint(addr: str) -> dict[str, Any]:
    host, _, port = addr.rpartition(":")
    return {"endpoint": {"address": {"socket_address": {"address": host, "port_value": int(port)}}}}


def _cluster(name: str, addrs: list[str], cfg: GatewayConfig) -> dict[str, Any]:
    return {
        "name": name,
        "type": "STRICT_DNS",
        "dns_lookup_family": "V4_ONLY",
        "connect_timeout": "1s",
        "lb_policy": "ROUND_ROBIN",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3"
                ".HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "health_checks": [
            {
                "timeout": "1s",
                "interval": f"{cfg.health_check_interval_s:g}s",
                "unhealthy_threshold": 2,
                "healthy_threshold": 1,
                "grpc_health_check": {},
            }
        ],
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [_endpoint(a) for a in addrs]}],
        },
    }


def _clusters(cfg: GatewayConfig) -> list[dict[str, Any]]:
    clusters = [_cluster(s, [cfg.service_addrs[s]], cfg) for s in SERVICES]
    clusters.append(_cluster("system", [cfg.service_addrs[s] for s in SERVICES], cfg))
    return clusters


def _local_reply_mappers() -> list[dict[str, Any]]:
    # Native gRPC callers get trailers-only statuses with a plain grpc-message. Transcoded
    # REST calls also carry content-type application/grpc by the time the transcoder fails,
    # but they keep their REST path in x-envoy-original-path.
    mappers: list[dict[str, Any]] = [
        {
            "filter": {
                "and_filter": {
                    "filters": [
                        {
                            "header_filter": {
                                "header": {
                                    "name": "content-type",
                                    "string_match": {"prefix": "application/grpc"},
                                }
                            }
                        },
                        {
                            "header_filter": {
                                "header": {
                                    "name": "x-envoy-original-path",
                                    "present_match": True,
                                    "invert_match": True,
                                }
                            }
                        },
                    ]
                }
            },
            "body_format_override": {"text_format_source": {"inline_string": "%LOCAL_REPLY_BODY%"}},
        }
    ]
    for status, (code, reason) in LOCAL_REPLY_CODES.items():
        mappers.append(
            {
                "filter": {
                    "status_code_filter": {
                        "comparison": {
                            "op": "EQ",
                            "value": {"default_value": status, "runtime_key": f"ragline_{status}"},
                        }
                    }
                },
                "body_format_override": {
                    "json_format": {
                        "code": code,
                        "message": MESSAGES.get(status, "%LOCAL_REPLY_BODY%"),
                        "details": [
                            {
                                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                "reason": reason,
                                "domain": ERROR_DOMAIN,
                            }
                        ],
                    },
                    "content_type": "application/json",
                },
            }
        )
    return mappers


def main() -> None:
    """python -m ragline_stack.envoy_config: renders a config for containers/Kubernetes."""
    import argparse

    parser = argparse.ArgumentParser(description="Render the ragline Envoy config")
    parser.add_argument("--listen-host", default="0.0.0.0")  # noqa: S104 - in a container
    parser.add_argument("--api-port", type=int, default=8000)
    parser.add_argument("--admin-port", type=int, default=9901)
    parser.add_argument("--descriptor", default="/etc/envoy/ragline.binpb")
    parser.add_argument("--request-timeout", type=float, default=30.0)
    parser.add_argument("--max-request-bytes", type=int, default=4 * 1024 * 1024)
    for service, port in zip(SERVICES, range(50051, 50055), strict=True):
        parser.add_argument(
            f"--{service}", default=f"{service}:{port}", help=f"host:port of the {service} service"
        )
    args = parser.parse_args()
    print(
        render(
            GatewayConfig(
                api_port=args.api_port,
                admin_port=args.admin_port,
                descriptor_path=Path(args.descriptor),
                service_addrs={s: getattr(args, s) for s in SERVICES},
                request_timeout_s=args.request_timeout,
                max_request_bytes=args.max_request_bytes,
                listen_host=args.listen_host,
            )
        ),
        end="",
    )


if __name__ == "__main__":
    main()
