"""The gateway's security layer in the rendered Envoy config: identity-header stripping,
CORS, the burst bucket, JWTs (jwt_authn + per-route RBAC on their scopes), API keys
(ext_authz to the auth service), global rate limits (envoyproxy/ratelimit), usage access
logs (gRPC access log service to the auth service) and the error replies of each.

Filter order (each rejects before the next costs anything):
  header_mutation → cors → declared_body_cap → local_ratelimit → ws_bearer (Lua, WebSocket
  route only) → jwt_authn → rbac → key_cache (Lua) → ext_authz → ratelimit → buffer
  → grpc_json_transcoder → router
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragline_core.rate_limits import RATE_LIMIT_TIERS

if TYPE_CHECKING:
    from ragline_stack.envoy_config import GatewayConfig

ERROR_DOMAIN = "ragline.dev"
# Identity headers only the gateway may set: client copies are removed first thing.
IDENTITY_HEADERS = (
    "x-ragline-identity",
    "x-ragline-tenant",
    "x-ragline-key-id",
    "x-ragline-scopes",
    "x-ragline-tier",
    "x-ragline-auth",
    # The credential the chat WebSocket re-checks per message (envoy/ws_bearer.lua sets it).
    "x-ragline-ws-credential",
)
# The method the client sent, for usage analytics: the transcoder turns every REST call
# into a POST before the access log is written.
METHOD_HEADER = "x-ragline-method"
# Response headers in which services report what a call consumed (usage analytics).
USAGE_HEADERS = (
    "x-ragline-usage-tokens-in",
    "x-ragline-usage-tokens-out",
    "x-ragline-usage-cost-usd",
    "x-ragline-usage-cache-lookups",
    "x-ragline-usage-cache-hits",
)
# Global limits per key and endpoint group (the route's scope), requests per minute, by
# the key's tier (RATE_LIMIT_TIERS, from ragline_core.rate_limits, which the auth service
# reports too); enforced by envoyproxy/ratelimit over Redis.
RATE_LIMIT_DOMAIN = "ragline"
_JWT_FILTER = "envoy.filters.http.jwt_authn"
# Lua, given code only on the WebSocket route (envoy/ws_bearer.lua): a token offered as the
# subprotocol "ragline.bearer.<token>" becomes the Authorization header.
WS_BEARER_FILTER = "ragline.ws_bearer"
BODY_CAP_FILTER = "ragline.declared_body_cap"
# Lua (envoy/key_cache.lua): reuses the auth service's "allowed" for an API key for a
# moment; reads each route's scope from route metadata under its own name.
KEY_CACHE_FILTER = "ragline.key_cache"
# Dynamic metadata that says a request's credential is already verified (a JWT, or a cached
# API key): ext_authz skips such requests.
_VERIFIED_NAMESPACE = "ragline.authn"
_AUTHZ_FILTER = "envoy.filters.http.ext_authz"
_KEY_CACHE_MAX_ENTRIES = 10_000
_JWT_PAYLOAD = "jwt_payload"
ENVOY_DIR = Path(__file__).resolve().parents[2] / "envoy"
_BURST_WINDOW_S = 1
# Seconds Envoy holds usage access-log entries before sending them as one batch; a gateway
# that stops must wait this long after its last request (Stack.stop, the k8s preStop hook).
USAGE_LOG_FLUSH_S = 1
_EXPOSED_HEADERS = (
    "x-request-id, retry-after, x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset, "
    "grpc-status, grpc-message, " + ", ".join(USAGE_HEADERS)
)


def _type(name: str) -> str:
    return f"type.googleapis.com/{name}"


def route_name(match: dict[str, Any]) -> str:
    """A bounded label for a route (usage analytics group requests by it)."""
    if "path" in match:
        return str(match["path"])
    if "prefix" in match:
        return f"{match['prefix']}*"
    return str(match.get("safe_regex", {}).get("regex", "route"))


def _group(scope: str) -> str:
    return {"api_key_only": "tokens", "authenticated": "default"}.get(scope, scope)


def _jwt_present() -> dict[str, Any]:
    return {
        "sourced_metadata": {
            "metadata_matcher": {
                "filter": _JWT_FILTER,
                "path": [{"key": _JWT_PAYLOAD}],
                "value": {"present_match": True},
            }
        }
    }


def _rbac(scope: str) -> dict[str, Any] | None:
    """Per-route RBAC for JWT callers (API-key callers are checked by ext_authz)."""
    if scope == "authenticated":
        return None
    principals: list[dict[str, Any]] = [{"not_id": _jwt_present()}]
    if scope != "api_key_only":
        principals.append(
            {
                "sourced_metadata": {
                    "metadata_matcher": {
                        "filter": _JWT_FILTER,
                        "path": [{"key": _JWT_PAYLOAD}, {"key": "scopes"}],
                        "value": {"list_match": {"one_of": {"string_match": {"exact": scope}}}},
                    }
                }
            }
        )
    return {
        "@type": _type("envoy.extensions.filters.http.rbac.v3.RBACPerRoute"),
        "rbac": {
            "rules": {
                "action": "ALLOW",
                "policies": {
                    f"scope-{scope}": {"permissions": [{"any": True}], "principals": principals}
                },
            }
        },
    }


def protect(entry: dict[str, Any], scope: str | None, cfg: GatewayConfig) -> dict[str, Any]:
    """Adds the route's auth settings: None = public, else the scope it needs. Routes Envoy
    answers itself (direct responses) get no rate limits: they reach no service."""
    if not cfg.auth_enabled:
        if cfg.static_identity and scope is not None:
            # No authentication (a benchmark baseline): every request acts as one caller.
            entry["request_headers_to_add"] = [
                {
                    "header": {"key": "x-ragline-identity", "value": cfg.static_identity},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                }
            ]
        return entry
    per_filter: dict[str, Any] = entry.setdefault("typed_per_filter_config", {})
    authz_type = _type("envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute")
    if scope is None:
        per_filter[_AUTHZ_FILTER] = {"@type": authz_type, "disabled": True}
        return entry
    per_filter[_AUTHZ_FILTER] = {
        "@type": authz_type,
        "check_settings": {"context_extensions": {"scope": scope}},
    }
    if cfg.key_cache:
        entry["metadata"] = {"filter_metadata": {KEY_CACHE_FILTER: {"scope": scope}}}
    rbac = _rbac(scope)
    if rbac is not None:
        per_filter["envoy.filters.http.rbac"] = rbac
    if cfg.ratelimit_enabled and "route" in entry:
        entry["route"]["rate_limits"] = [
            {
                "actions": [
                    {
                        "request_headers": {
                            "header_name": "x-ragline-tier",
                            "descriptor_key": "tier",
                        }
                    },
                    {
                        "generic_key": {
                            "descriptor_key": "endpoint",
                            "descriptor_value": _group(scope),
                        }
                    },
                    {
                        "request_headers": {
                            "header_name": "x-ragline-key-id",
                            "descriptor_key": "key_id",
                        }
                    },
                ]
            }
        ]
    return entry


def catch_all(cfg: GatewayConfig) -> dict[str, Any]:
    """Last route: any other path is 404, after authentication (no path skips auth)."""
    entry: dict[str, Any] = {
        "name": "not_found",
        "match": {"prefix": "/"},
        "direct_response": {"status": 404},
    }
    return protect(entry, "authenticated", cfg)


def self_cluster(cfg: GatewayConfig) -> dict[str, Any]:
    """The gateway itself: jwt_authn fetches the JWKS from its public route."""
    return {
        "name": "gateway_self",
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": "gateway_self",
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {
                                        "address": "127.0.0.1",
                                        "port_value": cfg.api_port,
                                    }
                                }
                            }
                        }
                    ]
                }
            ],
        },
    }


def status_json(code: int, message: str, reason: str) -> dict[str, Any]:
    return {
        "json_format": {
            "code": code,
            "message": message,
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": reason,
                    "domain": ERROR_DOMAIN,
                }
            ],
        },
        "content_type": "application/json",
    }


def _status_is(op: str, value: int) -> dict[str, Any]:
    return {
        "status_code_filter": {
            "comparison": {
                "op": op,
                "value": {"default_value": value, "runtime_key": f"ragline_auth_{op}_{value}"},
            }
        }
    }


def auth_reply_mappers() -> list[dict[str, Any]]:
    """Local replies of the auth filters (after the native-gRPC mapper, before the rest)."""

    def uaex() -> dict[str, Any]:
        return {"response_flag_filter": {"flags": ["UAEX"]}}

    return [
        {
            # Denied by the auth service: its body is already a google.rpc.Status JSON.
            "filter": {"and_filter": {"filters": [uaex(), _status_is("LE", 499)]}},
            "body_format_override": {
                "text_format_source": {"inline_string": "%LOCAL_REPLY_BODY%"},
                "content_type": "application/json",
            },
        },
        {
            # The auth service is down or timed out: fail closed.
            "filter": uaex(),
            "body_format_override": status_json(
                14, "authentication service unavailable; try again shortly", "AUTH_UNAVAILABLE"
            ),
        },
        {
            # Envoy's other 403s come from RBAC: a JWT without the route's scope.
            "filter": _status_is("EQ", 403),
            "body_format_override": status_json(
                7, "this token lacks the scope this endpoint needs", "SCOPE_DENIED"
            ),
        },
    ]


def reply_headers(status: int) -> dict[str, Any]:
    """Headers added to Envoy's own replies of one HTTP status."""
    if status != 429:
        return {}
    return {
        "headers_to_add": [
            {
                "header": {"key": "retry-after", "value": "%RESP(X-RATELIMIT-RESET)%"},
                "append_action": "ADD_IF_ABSENT",
            }
        ]
    }


def _request_mutations(cfg: GatewayConfig) -> list[dict[str, Any]]:
    mutations: list[dict[str, Any]] = [{"remove": h} for h in IDENTITY_HEADERS]
    if _usage_logged(cfg):
        mutations.append(
            {
                "append": {
                    "header": {"key": METHOD_HEADER, "value": "%REQ(:METHOD)%"},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                }
            }
        )
    return mutations


def _usage_logged(cfg: GatewayConfig) -> bool:
    return cfg.auth_enabled and cfg.usage_logging


def _edge_filters(cfg: GatewayConfig) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = [
        {
            "name": "envoy.filters.http.header_mutation",
            "typed_config": {
                "@type": _type("envoy.extensions.filters.http.header_mutation.v3.HeaderMutation"),
                "mutations": {"request_mutations": _request_mutations(cfg)},
            },
        },
        {
            "name": "envoy.filters.http.cors",
            "typed_config": {"@type": _type("envoy.extensions.filters.http.cors.v3.Cors")},
        },
        # A body that declares a length over the cap gets 413 before any auth call: while
        # ext_authz is pending, Envoy read-disables a body past the connection buffer, and
        # such an upload hung instead of failing (the buffer filter still caps the rest).
        {
            "name": BODY_CAP_FILTER,
            "typed_config": {
                "@type": _type("envoy.extensions.filters.http.lua.v3.Lua"),
                "default_source_code": {
                    "inline_string": (
                        # tonumber(nil) is an error in LuaJIT (a chunked body has no length).
                        "function envoy_on_request(handle)\n"
                        '  local declared = handle:headers():get("content-length")\n'
                        "  local length = declared and tonumber(declared)\n"
                        f"  if length ~= nil and length > {cfg.max_request_bytes} then\n"
                        '    handle:respond({[":status"] = "413"}, "request body too large")\n'
                        "  end\n"
                        "end\n"
                    )
                },
            },
        },
        {
            "name": "envoy.filters.http.local_ratelimit",
            "typed_config": {
                "@type": _type("envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"),
                "stat_prefix": "burst",
                "token_bucket": {
                    "max_tokens": cfg.burst_max_tokens,
                    "tokens_per_fill": cfg.burst_tokens_per_s * _BURST_WINDOW_S,
                    "fill_interval": f"{_BURST_WINDOW_S}s",
                },
                "filter_enabled": {
                    "runtime_key": "burst_enabled",
                    "default_value": {"numerator": 100, "denominator": "HUNDRED"},
                },
                "filter_enforced": {
                    "runtime_key": "burst_enforced",
                    "default_value": {"numerator": 100, "denominator": "HUNDRED"},
                },
                "rate_limited_as_resource_exhausted": True,
                "response_headers_to_add": [
                    {
                        "header": {"key": "retry-after", "value": str(_BURST_WINDOW_S)},
                        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                    }
                ],
            },
        },
    ]
    if not cfg.auth_enabled:
        return filters
    filters += [
        {
            "name": WS_BEARER_FILTER,
            "typed_config": {"@type": _type("envoy.extensions.filters.http.lua.v3.Lua")},
        },
        {
            "name": _JWT_FILTER,
            "typed_config": {
                "@type": _type("envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"),
                "providers": {
                    "ragline": {
                        "issuer": cfg.jwt_issuer,
                        "audiences": [cfg.jwt_audience],
                        "remote_jwks": {
                            "http_uri": {
                                "uri": f"http://127.0.0.1:{cfg.api_port}/.well-known/jwks.json",
                                "cluster": "gateway_self",
                                "timeout": "2s",
                            },
                            "cache_duration": "300s",
                            "async_fetch": {"failed_refetch_duration": "1s"},
                        },
                        # Kept for the services, which verify it again (zero trust
                        # behind the gateway: ragline_core.caller).
                        "forward": True,
                        # Only the Authorization header: Envoy would also take a token
                        # from ?access_token=, where URLs put it into access logs.
                        "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}],
                        "from_params": [],
                        # Envoy's default tolerates 60 s past expiry; tokens live minutes.
                        "clock_skew_seconds": 1,
                        # A client sends one token until it expires: verify its signature
                        # once, not per request (cached tokens are still checked for expiry).
                        "jwt_cache_config": {"jwt_cache_size": 4096},
                        "payload_in_metadata": _JWT_PAYLOAD,
                        "claim_to_headers": [
                            {"header_name": "x-ragline-tenant", "claim_name": "tenant"},
                            {"header_name": "x-ragline-key-id", "claim_name": "sub"},
                            {"header_name": "x-ragline-scopes", "claim_name": "scopes"},
                            {"header_name": "x-ragline-tier", "claim_name": "tier"},
                            {"header_name": "x-ragline-auth", "claim_name": "auth_method"},
                        ],
                    }
                },
                "rules": [
                    {
                        "match": {"prefix": "/"},
                        "requires": {
                            "requires_any": {
                                "requirements": [
                                    {"provider_name": "ragline"},
                                    # No or bad JWT: ext_authz decides (API key, or a
                                    # precise 401 for an expired or forged token).
                                    {"allow_missing_or_failed": {}},
                                ]
                            }
                        },
                    }
                ],
            },
        },
        {
            # Rules are per route (RBACPerRoute); none here means nothing is enforced globally.
            "name": "envoy.filters.http.rbac",
            "typed_config": {"@type": _type("envoy.extensions.filters.http.rbac.v3.RBAC")},
        },
        *_key_cache(cfg),
        {
            "name": _AUTHZ_FILTER,
            "typed_config": {
                "@type": _type("envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"),
                "transport_api_version": "V3",
                "grpc_service": {"envoy_grpc": {"cluster_name": "auth"}, "timeout": "2s"},
                # Fail closed: auth down or slow is 503, never a pass.
                "failure_mode_allow": False,
                "status_on_error": {"code": 503},
                # x-forwarded-for: the client's address (its last entry, appended by Envoy)
                # for the auth service's limit on failed attempts per address.
                "allowed_headers": {
                    "patterns": [
                        {"exact": "authorization"},
                        {"exact": "content-type"},
                        {"exact": "x-forwarded-for"},
                    ]
                },
                # A request with a verified JWT (or a cached key) skips the call.
                "filter_enabled_metadata": _skip_authz_when(cfg),
            },
        },
    ]
    if cfg.ratelimit_enabled:
        filters.append(
            {
                "name": "envoy.filters.http.ratelimit",
                "typed_config": {
                    "@type": _type("envoy.extensions.filters.http.ratelimit.v3.RateLimit"),
                    "domain": RATE_LIMIT_DOMAIN,
                    "request_type": "both",
                    "timeout": "0.5s",
                    # Limiter or Redis down: serve (the burst bucket still bounds each
                    # gateway), counted in ratelimit.error / failure_mode_allowed stats.
                    "failure_mode_deny": False,
                    "rate_limited_as_resource_exhausted": True,
                    "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
                    "rate_limit_service": {
                        "grpc_service": {"envoy_grpc": {"cluster_name": "ratelimit"}},
                        "transport_api_version": "V3",
                    },
                },
            }
        )
    return filters


def lua_source(script: str, prelude: str = "") -> dict[str, str]:
    """Inline Lua source: `prelude` (the settings the script reads), then envoy/<script>."""
    return {"inline_string": prelude + (ENVOY_DIR / script).read_text()}


def _key_cache(cfg: GatewayConfig) -> list[dict[str, Any]]:
    if not cfg.key_cache:
        return []
    prelude = (
        f"local MAX_ENTRIES = {_KEY_CACHE_MAX_ENTRIES}\n"
        f'local SKIP_NAMESPACE = "{_VERIFIED_NAMESPACE}"\n'
        f'local AUTHZ_NAMESPACE = "{_AUTHZ_FILTER}"\n'
        f'local JWT_NAMESPACE = "{_JWT_FILTER}"\n'
        f'local JWT_PAYLOAD = "{_JWT_PAYLOAD}"\n'
    )
    return [
        {
            "name": KEY_CACHE_FILTER,
            "typed_config": {
                "@type": _type("envoy.extensions.filters.http.lua.v3.Lua"),
                "default_source_code": lua_source("key_cache.lua", prelude),
            },
        }
    ]


def _skip_authz_when(cfg: GatewayConfig) -> dict[str, Any]:
    """ext_authz's filter_enabled_metadata, inverted: the request is already verified."""
    if cfg.key_cache:
        # key_cache.lua marks both a cached key and a JWT that jwt_authn verified.
        filter_name, path = _VERIFIED_NAMESPACE, [{"key": "verified"}]
    else:
        filter_name, path = _JWT_FILTER, [{"key": _JWT_PAYLOAD}]
    return {
        "filter": filter_name,
        "path": path,
        "value": {"present_match": True},
        "invert": True,
    }


def _access_logs(cfg: GatewayConfig) -> list[dict[str, Any]]:
    if not _usage_logged(cfg):
        return []
    return [
        {
            "name": "envoy.access_loggers.http_grpc",
            # Only requests of a known tenant count as its usage.
            "filter": {
                "header_filter": {"header": {"name": "x-ragline-tenant", "present_match": True}}
            },
            "typed_config": {
                "@type": _type("envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig"),
                "common_config": {
                    "log_name": "ragline_usage",
                    "transport_api_version": "V3",
                    "grpc_service": {"envoy_grpc": {"cluster_name": "auth"}},
                    # Entries reach the sink in large batches (a few messages a second per
                    # worker thread instead of one every few dozen requests).
                    "buffer_flush_interval": f"{USAGE_LOG_FLUSH_S}s",
                    "buffer_size_bytes": 1048576,
                },
                "additional_request_headers_to_log": [
                    "x-ragline-tenant",
                    # Usage per credential (the key id; a JWT's subject).
                    "x-ragline-key-id",
                    "content-type",
                    METHOD_HEADER,
                ],
                "additional_response_headers_to_log": [*USAGE_HEADERS, "grpc-status"],
                "additional_response_trailers_to_log": ["grpc-status"],
            },
        }
    ]


def _cors_policy(cfg: GatewayConfig) -> dict[str, Any]:
    origins = [{"prefix": ""} if o == "*" else {"exact": o} for o in cfg.cors_origins]
    return {
        "envoy.filters.http.cors": {
            "@type": _type("envoy.extensions.filters.http.cors.v3.CorsPolicy"),
            "allow_origin_string_match": origins,
            "allow_methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
            # idempotency-key: a browser's ingest retries (the TypeScript SDK sends one).
            "allow_headers": (
                "authorization, content-type, idempotency-key, x-request-id, grpc-timeout, "
                "x-grpc-web, x-user-agent"
            ),
            "expose_headers": _EXPOSED_HEADERS,
            "max_age": "86400",
        }
    }


def ratelimit_config(scale: int = 1) -> dict[str, Any]:
    """envoyproxy/ratelimit's config: tier → endpoint group → per key (limits times scale;
    the stack passes the same scale to the services as RATE_LIMIT_SCALE)."""
    return {
        "domain": RATE_LIMIT_DOMAIN,
        "descriptors": [
            {
                "key": "tier",
                "value": tier,
                "descriptors": [
                    {
                        "key": "endpoint",
                        "value": group,
                        "descriptors": [
                            {
                                "key": "key_id",
                                "rate_limit": {
                                    "unit": "minute",
                                    "requests_per_unit": limit * scale,
                                },
                            }
                        ],
                    }
                    for group, limit in groups.items()
                ],
            }
            for tier, groups in RATE_LIMIT_TIERS.items()
        ],
    }


def template_values(cfg: GatewayConfig) -> dict[str, str]:
    import textwrap

    import yaml

    def block(value: Any, indent: int) -> str:
        if not value:
            return ""
        text = yaml.safe_dump(value, sort_keys=False, default_flow_style=False, width=200)
        return textwrap.indent(text.rstrip("\n"), " " * indent)

    return {
        "EDGE_FILTERS": block(_edge_filters(cfg), 18),
        "ACCESS_LOGS": block(_access_logs(cfg), 18),
        "VHOST_FILTER_CONFIG": block(_cors_policy(cfg), 24),
    }
