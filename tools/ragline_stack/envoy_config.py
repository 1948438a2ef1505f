"""Renders envoy/envoy.yaml.tmpl: the route table, clusters and error mappers are data here.

Routes match the REST path the client sent (the transcoder's match_incoming_request_route)
and the native gRPC path, so both reach the same cluster with the same settings.
"""

from __future__ import annotations

import copy
import json
import re
import string
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ragline_core import openai_errors
from ragline_core.internal_tls import CA_FILE as TLS_CA_FILE
from ragline_core.internal_tls import CERT_FILE as TLS_CERT_FILE
from ragline_core.internal_tls import KEY_FILE as TLS_KEY_FILE
from ragline_core.internal_tls import spiffe_id
from ragline_stack import bindings, components, gateway, json_fields

TEMPLATE = gateway.ENVOY_DIR / "envoy.yaml.tmpl"
# One upstream cluster per service of the component list (ragline_stack.components).
SERVICES = components.names()
# The chat service's HTTP port (WebSocket chat, OpenAI-compatible API): HTTP/1.1 upstream.
CHAT_HTTP = "chat_http"

# The scope a route needs unless it says otherwise (scopes: see ragline_auth.scopes).
CLUSTER_SCOPES = {
    "embedder": "embeddings",
    "retriever": "search",
    "chat": "chat",
    "ingest": "ingest",
    "auth": "admin",
    "system": "authenticated",
}


@dataclass(frozen=True)
class Route:
    """One route: a path match and the service that serves it."""

    match: dict[str, Any]
    cluster: str
    # Streams must not be cut by the default 15 s route timeout.
    streaming: bool = False
    # Chat routes: a small body cap (413 above chat_max_request_bytes).
    chat_body: bool = False
    # WebSocket upgrade allowed (and the buffer filter off, so frames flow).
    websocket: bool = False
    # A Lua script from envoy/ run on this route (the chat stream switch).
    lua: str | None = None
    # The scope a caller needs (default: the cluster's, CLUSTER_SCOPES); "authenticated"
    # needs any valid credential, "api_key_only" an API key (not a JWT).
    scope: str | None = None
    # Public routes skip authentication and rate limits (documents, keys for JWTs).
    public: bool = False
    # Envoy retries (retry_on conditions, see RETRY_TRANSPORT/RETRY_READ) of every request
    # on the route, whose every method is safe to repeat (reads, searches, embeddings)...
    retry: str | None = None
    # ...or of its GET requests only (a twin route matching GET goes first): the route also
    # serves writes, which are never repeated.
    get_retry: str | None = None
    # Requests carrying an Idempotency-Key are repeated too (the service dedupes them).
    keyed_retry: str | None = None

    @property
    def needs(self) -> str:
        return self.scope or CLUSTER_SCOPES.get(self.cluster, "authenticated")


# Retries a request that never reached a service, or was refused or cut before any answer:
# the race of a SIGTERM (a replica's listener closing as Envoy sends to it) or a crash. A
# gRPC CANCELLED as the whole answer is that race too (a call the server took just as it
# stopped; the short fault battery saw one as a 499). Envoy never retries once it has sent
# the client a response byte, nor a call the client itself cancelled, so streams are safe.
RETRY_TRANSPORT = "reset,connect-failure,refused-stream,cancelled"
# Plus a gRPC UNAVAILABLE, only on reads that call no paid provider: a provider's outage is
# UNAVAILABLE after the service's own PROVIDER_MAX_ATTEMPTS, and repeating it would multiply
# the calls to a failing provider (docs/reliability.md, "retries are not budgeted").
RETRY_READ = RETRY_TRANSPORT + ",unavailable"
RETRY_ATTEMPTS = 2
# At most this share of a cluster's active requests may be retries at once (plus a floor of
# RETRY_MIN_CONCURRENCY), so an outage cannot turn into a retry storm.
RETRY_BUDGET_PERCENT = 20.0
RETRY_MIN_CONCURRENCY = 3

# REST routes; the order matters where prefixes overlap.
REST_ROUTES = (
    Route({"path": "/api/v1/embeddings"}, "embedder", retry=RETRY_TRANSPORT),
    Route({"path": "/api/v1/embedding-models"}, "embedder", retry=RETRY_READ),
    Route({"path": "/api/v1/search"}, "retriever", retry=RETRY_TRANSPORT),
    Route(
        {"safe_regex": {"regex": "^/api/v1/collections/[^/]+/suggestions$"}},
        "retriever",
        retry=RETRY_READ,
    ),
    Route(
        {"safe_regex": {"regex": "^/api/v1/collections/[^/]+/indexStatus$"}},
        "retriever",
        retry=RETRY_READ,
    ),
    Route({"path": "/api/v1/chat/ws"}, CHAT_HTTP, streaming=True, websocket=True, scope="chat"),
    Route(
        {"path": "/api/v1/chat:stream"},
        "chat",
        streaming=True,
        chat_body=True,
        lua="chat_stream_switch.lua",
    ),
    Route({"path": "/api/v1/chat"}, "chat", chat_body=True, lua="chat_stream_switch.lua"),
    Route({"path": "/api/v1/chat-models"}, "chat", retry=RETRY_READ),
    Route({"path": "/api/v1/conversations"}, "chat", get_retry=RETRY_READ),
    Route({"prefix": "/api/v1/conversations/"}, "chat", get_retry=RETRY_READ),
    # OpenAI-compatible API (served by the chat service's HTTP port).
    # The Lua script enforces the chat body cap here too (the per-route buffer cap alone let
    # a 70 KB body through to the service); it switches no path but /api/v1/chat's.
    Route(
        {"path": "/v1/chat/completions"},
        CHAT_HTTP,
        streaming=True,
        chat_body=True,
        scope="chat",
        lua="chat_stream_switch.lua",
    ),
    # Plain HTTP upstream: gRPC's "unavailable" does not apply.
    Route({"path": "/v1/embeddings"}, CHAT_HTTP, scope="embeddings", retry=RETRY_TRANSPORT),
    Route({"path": "/v1/models"}, CHAT_HTTP, scope="chat", retry=RETRY_TRANSPORT),
    Route({"prefix": "/v1/models/"}, CHAT_HTTP, scope="chat", retry=RETRY_TRANSPORT),
    Route({"path": "/api/v1/ingest"}, "ingest", keyed_retry=RETRY_READ),
    Route({"safe_regex": {"regex": "^/api/v1/jobs/[^/]+:watch$"}}, "ingest", streaming=True),
    Route({"prefix": "/api/v1/jobs/"}, "ingest", get_retry=RETRY_READ),
    Route({"path": "/api/v1/collections"}, "ingest", get_retry=RETRY_READ),
    Route({"prefix": "/api/v1/collections/"}, "ingest", get_retry=RETRY_READ),
    # Gateway: keys, tokens, usage, public documents (served by the auth service).
    Route({"path": "/api/v1/tokens"}, "auth", scope="api_key_only"),
    Route({"path": "/api/v1/caller"}, "auth", scope="authenticated", retry=RETRY_READ),
    Route({"path": "/api/v1/configuration"}, "auth", retry=RETRY_READ),
    Route({"path": "/api/v1/keys"}, "auth", get_retry=RETRY_READ),
    Route({"prefix": "/api/v1/keys/"}, "auth", get_retry=RETRY_READ),
    Route({"path": "/api/v1/users"}, "auth"),
    Route({"prefix": "/api/v1/users/"}, "auth"),
    Route({"path": "/api/v1/serviceAccounts"}, "auth"),
    Route({"prefix": "/api/v1/serviceAccounts/"}, "auth"),
    Route({"path": "/api/v1/auditEvents"}, "auth"),
    # OAuth 2.0 client credentials: the client authenticates itself (a service account's
    # id and secret); the script gives errors RFC 6749's body and headers.
    Route({"path": "/oauth2/token"}, "auth", public=True, lua="oauth2_token.lua"),
    Route({"path": "/api/v1/analytics/usage"}, "auth", scope="analytics", retry=RETRY_READ),
    Route({"path": "/.well-known/jwks.json"}, "auth", public=True, retry=RETRY_READ),
    Route({"path": "/openapi.json"}, "auth", public=True, retry=RETRY_READ),
    Route({"path": "/docs"}, "auth", public=True, retry=RETRY_READ),
    # The admin dashboard's static files (tools/admin-ui); its API calls carry a token.
    Route({"path": "/admin"}, "auth", public=True, retry=RETRY_READ),
    Route({"prefix": "/admin/"}, "auth", public=True, retry=RETRY_READ),
)

# Native gRPC: method-path prefixes, their cluster and scope (the first match wins).
GRPC_ROUTES = (
    ("/ragline.embedder.v1.", "embedder", "embeddings"),
    ("/ragline.retriever.v1.", "retriever", "search"),
    ("/ragline.chat.v1.", "chat", "chat"),
    ("/ragline.ingest.v1.", "ingest", "ingest"),
    ("/ragline.auth.v1.AuthService/CreateToken", "auth", "api_key_only"),
    ("/ragline.auth.v1.AuthService/GetCaller", "auth", "authenticated"),
    ("/ragline.auth.v1.", "auth", "admin"),
    ("/ragline.analytics.v1.", "auth", "analytics"),
    ("/ragline.system.v1.", "system", "authenticated"),
    ("/grpc.health.v1.Health/", "system", "authenticated"),
    # Server reflection (grpcurl, buf curl --reflect): the auth service knows every
    # descriptor. Python serves v1alpha only; v1 answers UNIMPLEMENTED and clients fall back.
    ("/grpc.reflection.v1.ServerReflection/", "auth", "authenticated"),
    ("/grpc.reflection.v1alpha.ServerReflection/", "auth", "authenticated"),
)
# Native gRPC methods that are safe to repeat, and on what (RETRY_TRANSPORT where the method
# may call a paid provider): each gets an exact route with the retry policy before its
# service's prefix route. Writes (Chat, IngestDocuments without a key, deletes, key
# changes, CreateToken) and streams are not listed.
IDEMPOTENT_GRPC = {
    "/ragline.embedder.v1.EmbedderService/CreateEmbeddings": RETRY_TRANSPORT,
    "/ragline.embedder.v1.EmbedderService/ListEmbeddingModels": RETRY_READ,
    "/ragline.retriever.v1.RetrieverService/Search": RETRY_TRANSPORT,
    "/ragline.retriever.v1.RetrieverService/SuggestQueries": RETRY_READ,
    "/ragline.retriever.v1.RetrieverService/GetIndexStatus": RETRY_READ,
    "/ragline.auth.v1.AuthService/GetCaller": RETRY_READ,
    "/ragline.auth.v1.AuthService/GetConfiguration": RETRY_READ,
    "/ragline.chat.v1.ChatService/ListConversations": RETRY_READ,
    "/ragline.chat.v1.ChatService/GetConversation": RETRY_READ,
    "/ragline.chat.v1.ChatService/ListChatModels": RETRY_READ,
    "/ragline.ingest.v1.IngestService/GetJob": RETRY_READ,
    "/ragline.ingest.v1.IngestService/ListDocuments": RETRY_READ,
    "/ragline.ingest.v1.IngestService/GetDocument": RETRY_READ,
    "/ragline.ingest.v1.IngestService/ListCollections": RETRY_READ,
    "/ragline.ingest.v1.IngestService/GetCollection": RETRY_READ,
    "/ragline.auth.v1.AuthService/ListApiKeys": RETRY_READ,
    "/ragline.auth.v1.AuthService/GetApiKey": RETRY_READ,
    "/ragline.auth.v1.AuthService/GetJwks": RETRY_READ,
    "/ragline.auth.v1.AuthService/GetOpenApiDocument": RETRY_READ,
    "/ragline.auth.v1.AuthService/GetApiDocs": RETRY_READ,
    "/ragline.analytics.v1.AnalyticsService/GetUsage": RETRY_READ,
    "/ragline.system.v1.SystemService/GetHealth": RETRY_READ,
    "/grpc.health.v1.Health/Check": RETRY_READ,
}
# Keyed writes (Idempotency-Key metadata): repeated as the REST route's keyed requests are.
KEYED_GRPC = {"/ragline.ingest.v1.IngestService/IngestDocuments": RETRY_READ}
IDEMPOTENCY_HEADER = "idempotency-key"

# Bidirectional streams: the buffer filter would wait for the client's end of stream, which
# a reflection client sends only after its answers (a hang), so it is off on these routes.
_BIDI_GRPC = ("/grpc.reflection.v1.", "/grpc.reflection.v1alpha.")

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

# Replies whose Envoy body is empty get a message of their own; so do those whose body
# is Envoy's own wording ("upstream connect error or disconnect/reset before headers...").
MESSAGES = {
    404: "no such endpoint: %REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    405: "method %REQ(:METHOD)% is not allowed on %REQ(:PATH)%; the Allow header lists those"
    " that are",
    429: "rate limit reached; retry after the number of seconds in Retry-After",
    502: "a service answered with an invalid response; try again shortly",
    503: "a service is unavailable; try again shortly",
    504: "the request took longer than the gateway waits",
}
# Route metadata naming the component behind a route, for error messages.
ROUTE_NAMESPACE = "ragline.route"
COMPONENT = "%METADATA(ROUTE:ragline.route:component)%"
# Envoy's flags for a service that could not be reached (none healthy, connect failure,
# reset, overflow) and for one that did not answer in time.
_UNREACHABLE_FLAGS = ["UH", "UF", "UC", "URX", "UO", "LR", "UR"]
_TIMEOUT_FLAGS = ["UT"]
# Dynamic metadata in which a Lua filter gives the reason of the reply it sends, and in
# which envoy/head_as_get.lua marks a HEAD request.
REPLY_NAMESPACE = "ragline.reply"
_HEAD = "ragline.head"


@dataclass(frozen=True)
class GatewayConfig:
    """Addresses and limits the gateway needs."""

    api_port: int
    admin_port: int
    descriptor_path: Path
    # "embedder" -> "host:port"; several replicas' addresses joined by commas.
    service_addrs: dict[str, str]
    request_timeout_s: float
    max_request_bytes: int = 4 * 1024 * 1024
    # Body cap of the chat routes: a chat message over it gets 413.
    chat_max_request_bytes: int = 64 * 1024
    # JSON bodies nested deeper get 400 JSON_TOO_DEEP (the transcoder fails past ~33).
    max_json_depth: int = 32
    listen_host: str = "127.0.0.1"
    # Internal listener for Prometheus (GET /metrics, no key); host defaults to listen_host.
    metrics_port: int = 9902
    metrics_host: str | None = None
    health_check_interval_s: float = 2.0
    # envoyproxy/ratelimit (gRPC) for the global limits.
    ratelimit_addr: str = "127.0.0.1:8081"
    # Browser origins allowed by CORS (CORS_ORIGINS).
    cors_origins: tuple[str, ...] = ("http://localhost:3000",)
    # Per-instance burst bucket (local_ratelimit): capacity and refill per second.
    burst_max_tokens: int = 2000
    burst_tokens_per_s: int = 1000
    # JWTs: issuer and audience the auth service signs with (AuthSettings).
    jwt_issuer: str = "ragline"
    jwt_audience: str = "ragline-api"
    # False: no authentication, rate limits or usage logs (a benchmark baseline only);
    # every request then carries `static_identity`, an internal token the caller minted.
    auth_enabled: bool = True
    static_identity: str | None = None
    # False: no global rate limits (envoyproxy/ratelimit).
    ratelimit_enabled: bool = True
    # False: no usage access logs to the auth service.
    usage_logging: bool = True
    # False: every API-key request is checked by the auth service (no envoy/key_cache.lua;
    # a benchmark column). How long a check is reused is the auth service's choice
    # (GATEWAY_KEY_CACHE_TTL).
    key_cache: bool = True
    # False: unknown JSON fields pass (as before envoy/json_fields.lua; a benchmark column).
    json_field_check: bool = True
    # OTLP/gRPC collector ("host:port" or a URL): the gateway starts each request's trace
    # there, and the services continue it (OTEL_EXPORTER_OTLP_ENDPOINT).
    otlp_endpoint: str | None = None
    # Mutual TLS to the services: the gateway's tls.crt, tls.key and ca.crt are in this
    # folder (as Envoy sees it), and each upstream must show its own workload's SPIFFE ID.
    tls_dir: str | None = None


def render(cfg: GatewayConfig) -> str:
    values = {
        "ENVOY_ADMIN_PORT": str(cfg.admin_port),
        "ENVOY_LISTEN_HOST": cfg.listen_host,
        "ENVOY_METRICS_HOST": cfg.metrics_host or cfg.listen_host,
        "ENVOY_METRICS_PORT": str(cfg.metrics_port),
        "METRICS_ROUTES": _block(_metrics_routes(), 24),
        "API_PORT": str(cfg.api_port),
        "MAX_REQUEST_BYTES": str(cfg.max_request_bytes),
        "BODY_FILTERS": _block(_body_filters(cfg), 18),
        "CONNECTION_BUFFER_BYTES": str(cfg.max_request_bytes + 64 * 1024),
        "DESCRIPTOR_PATH": str(cfg.descriptor_path),
        "LOCAL_REPLY_MAPPERS": _block(_local_reply_mappers(), 20),
        "ROUTES": _block(_routes(cfg), 24),
        "CLUSTERS": _block(_clusters(cfg), 4),
        "TRACING": _block([_tracing(cfg)], 16)[18:] if cfg.otlp_endpoint else "",
        **gateway.template_values(cfg),
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


# Per-route config that takes the transcoder out of a route: plain-HTTP routes (chat's
# WebSocket and OpenAI-compatible API, /metrics) and Envoy's own answers (405, 404), which
# it would otherwise reject as unknown methods (reject_unknown_method).
def no_transcoder() -> dict[str, Any]:
    return {
        "envoy.filters.http.grpc_json_transcoder": {
            "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
            "disabled": True,
        }
    }


def serving_route(path: str) -> Route | None:
    """The REST route a concrete path reaches (the first match, as Envoy picks it)."""
    for route in REST_ROUTES:
        match = route.match
        if (
            match.get("path") == path
            or ("prefix" in match and path.startswith(match["prefix"]))
            or ("safe_regex" in match and re.match(match["safe_regex"]["regex"], path))
        ):
            return route
    return None


def _method_not_allowed(cfg: GatewayConfig) -> list[dict[str, Any]]:
    """A 405 with `Allow` for each REST path called with a method it does not serve.

    First in the table: a request with a served method does not match and goes on to its
    real route; an unknown path matches none and ends at the catch-all 404."""
    routes = []
    for template, methods in bindings.methods_by_path().items():
        sample = bindings.sample_path(template)
        route = serving_route(sample)
        public = sample in ("/health",) or (route is not None and route.public)
        path_match: dict[str, Any] = (
            {"path": template}
            if sample == template
            else {"safe_regex": {"regex": bindings.path_regex(template)}}
        )
        entry: dict[str, Any] = {
            "name": f"method_not_allowed {template}",
            "match": {
                **path_match,
                "headers": [
                    {
                        "name": ":method",
                        "string_match": {"safe_regex": {"regex": f"^({'|'.join(methods)})$"}},
                        "invert_match": True,
                    },
                    # CORS preflights go on to the real route, where the CORS filter answers.
                    {
                        "name": "access-control-request-method",
                        "present_match": True,
                        "invert_match": True,
                    },
                ],
            },
            "direct_response": {"status": 405},
            "response_headers_to_add": [
                {
                    "header": {"key": "allow", "value": ", ".join(methods)},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                }
            ],
            "typed_per_filter_config": no_transcoder(),
        }
        # Authenticated like the path itself (public paths stay public).
        routes.append(gateway.protect(entry, None if public else "authenticated", cfg))
    return routes


def _metrics_route() -> dict[str, Any]:
    """GET /metrics: Envoy's Prometheus stats, from the loopback admin."""
    return {
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
    }


def _metrics_routes() -> list[dict[str, Any]]:
    """The internal metrics listener: GET /metrics, and a JSON 404 for anything else."""
    body = gateway.status_json(5, "only GET /metrics is served on this port", "NOT_FOUND")
    return [
        _metrics_route(),
        {
            "name": "not_found",
            "match": {"prefix": "/"},
            "direct_response": {
                "status": 404,
                "body": {"inline_string": json.dumps(body["json_format"])},
            },
            "response_headers_to_add": [
                {
                    "header": {"key": "content-type", "value": "application/json"},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                }
            ],
        },
    ]


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
        {**_metrics_route(), "typed_per_filter_config": no_transcoder()},
    ]
    for route in REST_ROUTES:
        entry: dict[str, Any] = {
            "name": gateway.route_name(route.match),
            "match": route.match,
            "route": _rest_action(route.cluster, route, cfg),
        }
        if not route.streaming:
            entry["request_headers_to_add"] = [deadline_header]
        if route.cluster == CHAT_HTTP:
            entry["typed_per_filter_config"] = no_transcoder()
        _chat_extras(entry, route, cfg)
        protected = _component(
            gateway.protect(entry, None if route.public else route.needs, cfg), route.cluster
        )
        if route.retry:
            protected["route"]["retry_policy"] = _retry_policy(route.retry)
        if route.get_retry:
            routes.append(_retry_twin(protected, _method_is("GET"), route.get_retry))
        if route.keyed_retry:
            routes.append(_retry_twin(protected, _keyed(), route.keyed_retry))
        routes.append(protected)
    # Native gRPC: the client's own grpc-timeout is the deadline.
    for prefix, cluster, scope in GRPC_ROUTES:
        # One route per retry condition, matching its methods of this service.
        for retry_on, methods in _grouped(IDEMPOTENT_GRPC, prefix).items():
            safe = _grpc_route(
                {"safe_regex": {"regex": _methods_regex(methods)}, "grpc": {}}, prefix, cluster
            )
            safe["route"]["retry_policy"] = _retry_policy(retry_on)
            routes.append(_component(gateway.protect(safe, scope, cfg), cluster))
        for retry_on, methods in _grouped(KEYED_GRPC, prefix).items():
            keyed = _grpc_route(
                {
                    "safe_regex": {"regex": _methods_regex(methods)},
                    "grpc": {},
                    "headers": [_keyed()],
                },
                prefix,
                cluster,
            )
            keyed["route"]["retry_policy"] = _retry_policy(retry_on)
            routes.append(_component(gateway.protect(keyed, scope, cfg), cluster))
        entry = _grpc_route({"prefix": prefix, "grpc": {}}, prefix, cluster)
        routes.append(_component(gateway.protect(entry, scope, cfg), cluster))
    # /health stays public. /metrics here needs the admin scope: Prometheus scrapes the
    # internal metrics listener instead, and the public port shows no internals to strangers.
    gateway.protect(routes[0], None, cfg)
    gateway.protect(routes[1], "admin", cfg)
    _component(routes[0], "system")
    catch_all = gateway.catch_all(cfg)
    # Nothing is sent upstream: no body to wait for (an unknown bidi method fails at once).
    catch_all.setdefault("typed_per_filter_config", {}).update({**no_transcoder(), **_no_buffer()})
    return [_head_health(routes[0]), *_method_not_allowed(cfg), *routes, catch_all]


def _grpc_route(match: dict[str, Any], prefix: str, cluster: str) -> dict[str, Any]:
    """A native gRPC route; named by its service's prefix (usage groups by route name)."""
    entry: dict[str, Any] = {
        "name": prefix,
        "match": match,
        "route": {
            "cluster": cluster,
            "timeout": "0s",
            "max_stream_duration": {"grpc_timeout_header_max": "0s"},
        },
    }
    if prefix.startswith(_BIDI_GRPC):
        entry["typed_per_filter_config"] = _no_buffer()
    return entry


def _grouped(methods: dict[str, str], prefix: str) -> dict[str, list[str]]:
    """The methods under a route prefix, by retry condition."""
    groups: dict[str, list[str]] = {}
    for method, retry_on in methods.items():
        if method.startswith(prefix):
            groups.setdefault(retry_on, []).append(method)
    return groups


def _methods_regex(methods: list[str]) -> str:
    return "^(" + "|".join(re.escape(m) for m in methods) + ")$"


def _retry_policy(retry_on: str) -> dict[str, Any]:
    """Retries of a request that is safe to repeat, on another host where there is one
    (cluster-wide they are capped by the retry budget, _cluster)."""
    return {
        "retry_on": retry_on,
        "num_retries": RETRY_ATTEMPTS,
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
    }


def _method_is(method: str) -> dict[str, Any]:
    return {"name": ":method", "string_match": {"exact": method}}


def _keyed() -> dict[str, Any]:
    return {"name": IDEMPOTENCY_HEADER, "present_match": True}


def _retry_twin(entry: dict[str, Any], header: dict[str, Any], retry_on: str) -> dict[str, Any]:
    """The route again, for the requests `header` picks (GETs, keyed writes), with
    retries; it goes first, so the original route keeps the others, unretried."""
    twin = copy.deepcopy(entry)
    twin["match"].setdefault("headers", []).append(header)
    twin["route"]["retry_policy"] = _retry_policy(retry_on)
    return twin


def _no_buffer() -> dict[str, Any]:
    return {
        "envoy.filters.http.buffer": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute",
            "disabled": True,
        }
    }


def _chat_extras(entry: dict[str, Any], route: Route, cfg: GatewayConfig) -> None:
    """Per-route filter settings of the chat routes (body cap, Lua, WebSocket)."""
    per_filter: dict[str, Any] = {}
    buffer_type = "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute"
    if route.chat_body:
        per_filter["envoy.filters.http.buffer"] = {
            "@type": buffer_type,
            "buffer": {"max_request_bytes": cfg.chat_max_request_bytes},
        }
    if route.websocket:
        per_filter["envoy.filters.http.buffer"] = {"@type": buffer_type, "disabled": True}
        entry["route"]["upgrade_configs"] = [{"upgrade_type": "websocket"}]
        if cfg.auth_enabled:
            per_filter[gateway.WS_BEARER_FILTER] = _lua("ws_bearer.lua")
    if route.lua:
        per_filter["envoy.filters.http.lua"] = _lua(
            route.lua, f"local MAX_BODY_BYTES = {cfg.chat_max_request_bytes}\n"
        )
    if per_filter:
        entry.setdefault("typed_per_filter_config", {}).update(per_filter)


def _body_filters(cfg: GatewayConfig) -> list[dict[str, Any]]:
    """After the body is buffered, before the transcoder: the JSON depth cap."""
    prelude = (
        f'local MAX_DEPTH = {cfg.max_json_depth}\nlocal REPLY_NAMESPACE = "{REPLY_NAMESPACE}"\n'
    )
    # The unknown-field check rides in the same filter: one copy of the body, one Lua call.
    if cfg.json_field_check:
        prelude += gateway.lua_source("json_fields.lua", json_fields.lua_table())["inline_string"]
    else:
        prelude += "local function unknown_json_field() return nil end\n"
    source = gateway.lua_source("json_depth.lua", prelude)
    return [
        {
            "name": "ragline.json_depth",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                "default_source_code": source,
            },
        }
    ]


def _head_health(health: dict[str, Any]) -> dict[str, Any]:
    """HEAD /health: the GET health check, answered without a body (load balancers). It
    goes first, before the 405 of /health; both health routes run envoy/head_as_get.lua."""
    lua = {"envoy.filters.http.lua": _lua("head_as_get.lua", f'local HEAD_NAMESPACE = "{_HEAD}"\n')}
    health.setdefault("typed_per_filter_config", {}).update(lua)
    return {
        "name": "health_head",
        "match": {
            "path": "/health",
            "headers": [{"name": ":method", "string_match": {"exact": "HEAD"}}],
        },
        "route": copy.deepcopy(health["route"]),
        "typed_per_filter_config": copy.deepcopy(health["typed_per_filter_config"]),
        "metadata": copy.deepcopy(health.get("metadata", {})),
    }


def _component(entry: dict[str, Any], cluster: str) -> dict[str, Any]:
    """Names the component behind a route in its metadata (error messages use it)."""
    name = {CHAT_HTTP: "chat", "system": "ragline"}.get(cluster, cluster)
    entry.setdefault("metadata", {}).setdefault("filter_metadata", {})[ROUTE_NAMESPACE] = {
        "component": name
    }
    return entry


def _lua(script: str, prelude: str = "") -> dict[str, Any]:
    """Per-route code for a Lua filter: a script from envoy/."""
    return {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute",
        "source_code": gateway.lua_source(script, prelude),
    }


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
        # Retries may be at most RETRY_BUDGET_PERCENT of the requests in flight.
        "circuit_breakers": {
            "thresholds": [
                {
                    "priority": "DEFAULT",
                    "retry_budget": {
                        "budget_percent": {"value": RETRY_BUDGET_PERCENT},
                        "min_retry_concurrency": RETRY_MIN_CONCURRENCY,
                    },
                }
            ]
        },
        "health_checks": [
            {
                "timeout": "1s",
                "interval": f"{cfg.health_check_interval_s:g}s",
                # Envoy's default checks a cluster that has not had traffic yet only once a
                # minute, and keeps that pace until the next check: a replica stopping in
                # that window was never taken out (found by tests/e2e/test_sigterm_replica.py).
                "no_traffic_interval": f"{cfg.health_check_interval_s:g}s",
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


def _otlp_addr(endpoint: str) -> str:
    """host:port of an OTLP endpoint given as a URL or as host:port."""
    return endpoint.split("://", 1)[-1].rstrip("/")


def _tracing(cfg: GatewayConfig) -> dict[str, Any]:
    """HCM tracing: every request starts (or continues) a W3C trace exported over OTLP."""
    return {
        "tracing": {
            "random_sampling": {"value": 100},
            "provider": {
                "name": "envoy.tracers.opentelemetry",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                    "grpc_service": {
                        "envoy_grpc": {"cluster_name": "otel_collector"},
                        "timeout": "2s",
                    },
                    "service_name": "ragline-gateway",
                },
            },
        }
    }


def _upstream_tls(cfg: GatewayConfig, workloads: list[str], alpn: str) -> dict[str, Any]:
    """Envoy's client side of mutual TLS: its certificate, the CA, and the workloads (SPIFFE
    IDs) an upstream may prove to be — a certificate for another service is refused."""
    folder = (cfg.tls_dir or "").rstrip("/")
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3"
            ".UpstreamTlsContext",
            "common_tls_context": {
                "alpn_protocols": [alpn],
                "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
                "tls_certificates": [
                    {
                        "certificate_chain": {"filename": f"{folder}/{TLS_CERT_FILE}"},
                        "private_key": {"filename": f"{folder}/{TLS_KEY_FILE}"},
                    }
                ],
                "validation_context": {
                    "trusted_ca": {"filename": f"{folder}/{TLS_CA_FILE}"},
                    "match_typed_subject_alt_names": [
                        {"san_type": "URI", "matcher": {"exact": spiffe_id(w)}} for w in workloads
                    ],
                },
            },
        },
    }


def _with_tls(cluster: dict[str, Any], cfg: GatewayConfig, workloads: list[str]) -> dict[str, Any]:
    if cfg.tls_dir:
        alpn = "http/1.1" if cluster["name"] == CHAT_HTTP else "h2"
        cluster["transport_socket"] = _upstream_tls(cfg, workloads, alpn)
    return cluster


def _addrs(cfg: GatewayConfig, service: str) -> list[str]:
    return cfg.service_addrs[service].split(",")


def _clusters(cfg: GatewayConfig) -> list[dict[str, Any]]:
    clusters = [_with_tls(_cluster(s, _addrs(cfg, s), cfg), cfg, [s]) for s in SERVICES]
    if cfg.otlp_endpoint:
        collector = _cluster("otel_collector", [_otlp_addr(cfg.otlp_endpoint)], cfg)
        del collector["health_checks"]
        clusters.append(collector)
    system = _cluster("system", [a for s in SERVICES for a in _addrs(cfg, s)], cfg)
    clusters.append(_with_tls(system, cfg, list(SERVICES)))
    if CHAT_HTTP in cfg.service_addrs:
        chat_http = _with_tls(
            _cluster(CHAT_HTTP, [cfg.service_addrs[CHAT_HTTP]], cfg), cfg, ["chat"]
        )
        # Plain HTTP/1.1 (WebSocket upgrades), checked by TCP connect.
        del chat_http["typed_extension_protocol_options"]
        chat_http["health_checks"][0].pop("grpc_health_check")
        chat_http["health_checks"][0]["tcp_health_check"] = {}
        clusters.append(chat_http)
    if cfg.auth_enabled and cfg.ratelimit_enabled:
        ratelimit = _cluster("ratelimit", [cfg.ratelimit_addr], cfg)
        del ratelimit["health_checks"]
        clusters.append(ratelimit)
    if cfg.auth_enabled:
        clusters.append(gateway.self_cluster(cfg))
    return clusters


def _native_grpc(*more: dict[str, Any]) -> dict[str, Any]:
    """A mapper filter for native gRPC callers. Transcoded REST calls also carry
    content-type application/grpc by the time the transcoder fails, but they keep their
    REST path in x-envoy-original-path."""
    return {
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
                *more,
            ]
        }
    }


def _status(value: int) -> dict[str, Any]:
    return {
        "status_code_filter": {
            "comparison": {
                "op": "EQ",
                "value": {"default_value": value, "runtime_key": f"ragline_mapped_{value}"},
            }
        }
    }


def _flags(flags: list[str]) -> dict[str, Any]:
    return {"response_flag_filter": {"flags": list(flags)}}


def _text(message: str) -> dict[str, Any]:
    return {"text_format_source": {"inline_string": message}}


def _edge_reply_mappers() -> list[dict[str, Any]]:
    """Native gRPC callers get trailers-only statuses with a plain grpc-message: over the
    body cap is RESOURCE_EXHAUSTED (Envoy's default is UNKNOWN), and a service that cannot
    be reached is named, never described in Envoy's words. REST callers get the same."""
    unreachable = f"the {COMPONENT} service is unavailable; try again shortly"
    too_slow = f"the {COMPONENT} service did not answer in time"
    grpc_status = {"header": {"key": "grpc-status", "value": "8"}}
    return [
        {
            "filter": _native_grpc(_status(413)),
            "headers_to_add": [{**grpc_status, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}],
            "body_format_override": _text("request body over the gateway's size limit"),
        },
        {
            "filter": _native_grpc(_flags(_UNREACHABLE_FLAGS)),
            "body_format_override": _text(unreachable),
        },
        {
            "filter": _native_grpc(_flags(_TIMEOUT_FLAGS)),
            "body_format_override": _text(too_slow),
        },
        {"filter": _native_grpc(), "body_format_override": _text("%LOCAL_REPLY_BODY%")},
        {
            "filter": {"and_filter": {"filters": [_status(503), _flags(_UNREACHABLE_FLAGS)]}},
            "body_format_override": gateway.status_json(14, unreachable, "UNAVAILABLE"),
        },
        {
            "filter": {"and_filter": {"filters": [_status(504), _flags(_TIMEOUT_FLAGS)]}},
            "body_format_override": gateway.status_json(4, too_slow, "DEADLINE_EXCEEDED"),
        },
        {
            # An unknown JSON field (envoy/json_fields.lua): the field as a BadRequest
            # violation too, as the services render a bad field.
            "filter": _reply_metadata("field"),
            "body_format_override": _field_violation(),
        },
        {
            # A Lua filter's own reply (the JSON depth cap) says its reason in metadata.
            "filter": {
                "metadata_filter": {
                    "matcher": {
                        "filter": REPLY_NAMESPACE,
                        "path": [{"key": "reason"}],
                        "value": {"present_match": True},
                    },
                    # Envoy's default matches every reply without the key.
                    "match_if_key_not_found": False,
                }
            },
            "body_format_override": gateway.status_json(
                3, "%LOCAL_REPLY_BODY%", f"%DYNAMIC_METADATA({REPLY_NAMESPACE}:reason)%"
            ),
        },
    ]


def _reply_metadata(key: str) -> dict[str, Any]:
    """Matches a reply whose Lua filter set `key` in the reply namespace."""
    return {
        "metadata_filter": {
            "matcher": {
                "filter": REPLY_NAMESPACE,
                "path": [{"key": key}],
                "value": {"present_match": True},
            },
            # Envoy's default matches every reply without the key.
            "match_if_key_not_found": False,
        }
    }


def _field_violation() -> dict[str, Any]:
    reply = gateway.status_json(
        3, "%LOCAL_REPLY_BODY%", f"%DYNAMIC_METADATA({REPLY_NAMESPACE}:reason)%"
    )
    field = f"%DYNAMIC_METADATA({REPLY_NAMESPACE}:field)%"
    reply["json_format"]["details"][0]["metadata"] = {"field": field}
    reply["json_format"]["details"].append(
        {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "field_violations": [{"field": field, "description": "%LOCAL_REPLY_BODY%"}],
        }
    )
    return reply


def _openai_path() -> dict[str, Any]:
    return {
        "header_filter": {
            "header": {
                "name": ":path",
                "string_match": {"prefix": openai_errors.PATH_PREFIX},
            }
        }
    }


def _openai(mapper: dict[str, Any], status: int) -> dict[str, Any]:
    """`mapper` for the OpenAI-compatible paths: the same Status JSON plus OpenAI's `error`
    object (ragline_core.openai_errors), which the `openai` SDKs parse."""
    found = copy.deepcopy(mapper)
    found["filter"] = {"and_filter": {"filters": [_openai_path(), found["filter"]]}}
    body = found["body_format_override"]["json_format"]
    body["error"] = {
        "message": body["message"],
        "type": openai_errors.error_type(status),
        "code": body["details"][0]["reason"],
        # An unknown JSON field's reply names it.
        "param": body["details"][0].get("metadata", {}).get("field"),
    }
    return found


def _openai_mappers(status_mappers: list[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Envoy's own replies on /v1/*, first: each Status mapper with OpenAI's `error` added.
    The auth service's denials pass through as it wrote them (it adds `error` on /v1/*)."""
    mappers = []
    for mapper in [*_edge_reply_mappers(), *gateway.auth_reply_mappers()]:
        body = mapper["body_format_override"]
        if "json_format" in body:
            # The auth service unreachable is the only one whose filter names no status.
            status = 503 if "UAEX" in json.dumps(mapper["filter"]) else 400
            mappers.append(_openai(mapper, _status_of(mapper["filter"], status)))
        elif body.get("content_type") == "application/json":
            # The auth service's own denial, which has the `error` object already.
            passed = copy.deepcopy(mapper)
            passed["filter"] = {"and_filter": {"filters": [_openai_path(), mapper["filter"]]}}
            mappers.append(passed)
        # (the rest are native gRPC replies: no /v1 path)
    mappers += [_openai(m, status) for status, m in status_mappers]
    return mappers


def _status_of(mapper_filter: dict[str, Any], default: int) -> int:
    """The HTTP status a mapper's filter matches (or `default`: a Lua filter's own reply)."""
    text = json.dumps(mapper_filter)
    found = re.search(
        r'"status_code_filter": \{"comparison": \{"op": "EQ", "value": '
        r'\{"default_value": (\d+)',
        text,
    )
    return int(found.group(1)) if found else default


def _local_reply_mappers() -> list[dict[str, Any]]:
    by_status: list[tuple[int, dict[str, Any]]] = []
    for status, (code, reason) in LOCAL_REPLY_CODES.items():
        by_status.append(
            (
                status,
                {
                    "filter": {
                        "status_code_filter": {
                            "comparison": {
                                "op": "EQ",
                                "value": {
                                    "default_value": status,
                                    "runtime_key": f"ragline_{status}",
                                },
                            }
                        }
                    },
                    **gateway.reply_headers(status),
                    "body_format_override": gateway.status_json(
                        code, MESSAGES.get(status, "%LOCAL_REPLY_BODY%"), reason
                    ),
                },
            )
        )
    mappers = _openai_mappers(by_status)
    mappers += _edge_reply_mappers()
    mappers += gateway.auth_reply_mappers()
    mappers += [m for _, m in by_status]
    return mappers


def main() -> None:
    """python -m ragline_stack.envoy_config: renders a config for containers/Kubernetes."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description="Render the ragline Envoy config")
    parser.add_argument("--listen-host", default="0.0.0.0")  # noqa: S104 - in a container
    parser.add_argument("--api-port", type=int, default=8000)
    parser.add_argument("--admin-port", type=int, default=9901)
    parser.add_argument("--metrics-port", type=int, default=9902, help="internal /metrics port")
    parser.add_argument("--descriptor", default="/etc/envoy/ragline.binpb")
    parser.add_argument("--request-timeout", type=float, default=30.0)
    parser.add_argument("--max-request-bytes", type=int, default=4 * 1024 * 1024)
    parser.add_argument("--ratelimit", default="ratelimit:8081", help="host:port of ratelimit")
    parser.add_argument(
        "--cors-origins", default='["http://localhost:3000"]', help="JSON list (CORS_ORIGINS)"
    )
    parser.add_argument("--chat-http", default="chat:50063", help="host:port of chat's HTTP")
    parser.add_argument("--otlp-endpoint", default=None, help="OTLP/gRPC collector for traces")
    parser.add_argument(
        "--tls-dir", default=None, help="mutual TLS to the services: the gateway's cert folder"
    )
    for c in components.SERVICES:
        parser.add_argument(
            f"--{c.name}", default=f"{c.name}:{c.grpc_port}", help=f"host:port of {c.name}"
        )
    args = parser.parse_args()
    print(
        render(
            GatewayConfig(
                api_port=args.api_port,
                admin_port=args.admin_port,
                metrics_port=args.metrics_port,
                descriptor_path=Path(args.descriptor),
                service_addrs={
                    **{s: getattr(args, s) for s in SERVICES},
                    CHAT_HTTP: args.chat_http,
                },
                request_timeout_s=args.request_timeout,
                max_request_bytes=args.max_request_bytes,
                listen_host=args.listen_host,
                ratelimit_addr=args.ratelimit,
                cors_origins=tuple(json.loads(args.cors_origins)),
                otlp_endpoint=args.otlp_endpoint,
                tls_dir=args.tls_dir,
            )
        ),
        end="",
    )


if __name__ == "__main__":
    main()
