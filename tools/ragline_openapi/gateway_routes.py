"""What the protos cannot say: the gateway's policy and its plain-HTTP routes.

Which operations are public and which scope each needs are read from the gateway's route
table (ragline_stack.envoy_config), so the document follows the gateway; the plain-HTTP
routes (OpenAI-compatible API, WebSocket, metrics) are described here and included when
the route table serves them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ragline_openapi.protos import Method
from ragline_openapi.schemas import WELL_KNOWN, Components, Schema
from ragline_stack import envoy_config

SECURITY_SCHEME = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <key>`: an API key, or a short-lived JWT from "
        "`POST /api/v1/tokens`.",
    },
    # The token endpoint only: a service account's client id and secret (client_secret_basic;
    # client_secret_post sends them in the form instead).
    "oauth2ClientBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "OAuth 2.0 client authentication: client id and secret.",
    },
}
# Media types of the HttpBody replies (the servicer sets them), with an example each.
RAW_RESPONSES: dict[str, tuple[str, Any]] = {
    "ragline.auth.v1.AuthService.GetJwks": (
        "application/json",
        {
            "keys": [
                {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "k1", "n": "…", "e": "AQAB"}
            ]
        },
    ),
    "ragline.auth.v1.AuthService.GetOpenApiDocument": (
        "application/json",
        {"openapi": "3.1.0", "info": {"title": "RAG API Service"}, "paths": {}},
    ),
    "ragline.auth.v1.AuthService.GetApiDocs": ("text/html", "<!doctype html><html>…</html>"),
    "ragline.auth.v1.ConsoleService.GetConsoleFile": ("text/html", "<!doctype html><html>…</html>"),
    "ragline.auth.v1.AuthService.CreateOAuth2Token": (
        "application/json",
        {"access_token": "eyJ…", "token_type": "Bearer", "expires_in": 900, "scope": "search"},
    ),
}
# The OAuth 2.0 token endpoint (RFC 6749 section 4.4): a form in, RFC 6749 JSON out.
OAUTH2_TOKEN = "ragline.auth.v1.AuthService.CreateOAuth2Token"  # noqa: S105 - a method name
_OAUTH2_FORM: Schema = {
    "type": "object",
    "required": ["grant_type"],
    "properties": {
        "grant_type": {"type": "string", "const": "client_credentials"},
        "scope": {
            "type": "string",
            "description": "Space-separated scopes, within the account's role (default: all).",
        },
        "client_id": {"type": "string", "description": "Unless sent with HTTP Basic."},
        "client_secret": {"type": "string", "description": "Unless sent with HTTP Basic."},
    },
}
_OAUTH2_TOKEN_REPLY: Schema = {
    "type": "object",
    "required": ["access_token", "token_type", "expires_in", "scope"],
    "properties": {
        "access_token": {"type": "string", "description": "The JWT the gateway verifies."},
        "token_type": {"type": "string", "const": "Bearer"},
        "expires_in": {"type": "integer"},
        "scope": {"type": "string"},
    },
}
_OAUTH2_ERROR: Schema = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "string",
            "enum": [
                "invalid_request",
                "invalid_client",
                "invalid_grant",
                "unauthorized_client",
                "unsupported_grant_type",
                "invalid_scope",
            ],
        },
        "error_description": {"type": "string"},
    },
}
# Files the upload takes (ragline_ingest.extract: the extension, else the content type).
UPLOAD_TYPES = (
    "text/plain",
    "text/markdown",
    "text/html",
    "application/pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/octet-stream",
)
_STATUS = "#/components/schemas/Status"
_ERROR_DETAILS = ("ErrorInfo", "BadRequest")
# The answers any operation may give, besides its own.
ERROR_RESPONSES: dict[str, tuple[str, str]] = {
    "400": ("BadRequest", "Invalid input: the message names the field or the limit."),
    "401": ("Unauthenticated", "Missing, malformed, unknown, expired or revoked key or token."),
    "403": ("PermissionDenied", "The key or token lacks the scope this operation needs."),
    "404": ("NotFound", "No such resource (or no such path)."),
    "413": ("PayloadTooLarge", "The body is over the gateway's cap."),
    "429": ("RateLimited", "Rate limit or spend cap reached; see Retry-After."),
    "503": ("Unavailable", "A service or provider is unavailable; the message names it."),
    "504": ("DeadlineExceeded", "The request took longer than the gateway waits."),
}
_SCOPE_NOTES = {
    "authenticated": "Needs any valid key or token.",
    "api_key_only": "Needs an API key (a JWT cannot ask).",
}


def is_public(path: str) -> bool:
    route = envoy_config.serving_route(_concrete(path))
    return path == "/health" or (route is not None and route.public)


def scope_note(path: str) -> str:
    """Which scope the gateway asks of the caller on this path."""
    if path == "/metrics":
        return "Needs the `admin` scope."
    route = envoy_config.serving_route(_concrete(path))
    needs = route.needs if route is not None else "authenticated"
    return _SCOPE_NOTES.get(needs, f"Needs the `{needs}` scope.")


def served(path: str) -> bool:
    return envoy_config.serving_route(_concrete(path)) is not None


def _concrete(path: str) -> str:
    """A path the route table can match: template variables filled in."""
    return re.sub(r"\{[^}]+\}", "x1", path)


# -- Raw bodies and streams ------------------------------------------------------------------


def raw_body(method: Method) -> dict[str, Any]:
    if f"{method.service}.{method.name}" == OAUTH2_TOKEN:
        return {
            "required": True,
            "description": "RFC 6749 section 4.4: the client credentials grant.",
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": _OAUTH2_FORM,
                    "example": {"grant_type": "client_credentials", "scope": "search"},
                }
            },
        }
    binary: Schema = {"type": "string", "format": "binary"}
    return {
        "required": True,
        "description": "The file's bytes as the raw body (not JSON). The `filename` "
        "extension picks the parser, else the Content-Type.",
        "content": {media: {"schema": binary} for media in UPLOAD_TYPES},
    }


def raw_response(method: Method) -> dict[str, Any]:
    name = f"{method.service}.{method.name}"
    media, sample = RAW_RESPONSES[name]
    schema: Schema = {"type": "object"} if media == "application/json" else {"type": "string"}
    if name == OAUTH2_TOKEN:
        return {
            "description": "The access token (RFC 6749 section 5.1).",
            "content": {media: {"schema": _OAUTH2_TOKEN_REPLY, "example": sample}},
        }
    return {
        "description": "The document.",
        "content": {media: {"schema": schema, "example": sample}},
    }


def event_stream(event: Schema, event_example: Any, name: str) -> dict[str, Any]:
    """A server-sent event stream: each event's `data:` line is one JSON `event`."""
    return {
        "description": f"Server-sent events: each `data:` line is one JSON `{name}`; "
        "the stream ends when the answer or job does.",
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "string",
                    "description": f"`data: <{name} JSON>` lines, one per event.",
                    "x-event-schema": event,
                },
                "example": f"data: {_json(event_example)}\n\n",
            }
        },
    }


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# -- Errors ----------------------------------------------------------------------------------


def error_components(components: Components) -> dict[str, Any]:
    """`Status` with typed details, and one named response per error status."""
    for detail in _ERROR_DETAILS:
        # The detail as it appears in `details`: the message's fields and its type URL.
        schema = components.message(f".google.rpc.{detail}")
        type_url = f"type.googleapis.com/google.rpc.{detail}"
        schema["properties"] = {
            "@type": {"type": "string", "const": type_url},
            **schema["properties"],
        }
        schema["required"] = ["@type", *schema.get("required", [])]
        components.schemas[detail] = schema
    components.schemas["AnyDetail"] = {
        **WELL_KNOWN[".google.protobuf.Any"],
        "description": "Any other detail, with its type URL.",
    }
    status = components.message(".google.rpc.Status", frozenset({"details"}))
    status["properties"]["details"] = {
        "type": "array",
        "description": "Machine-readable details: an ErrorInfo (reason, domain, metadata) "
        "and, for bad input, a BadRequest naming the fields.",
        "items": {
            "anyOf": [{"$ref": f"#/components/schemas/{d}"} for d in (*_ERROR_DETAILS, "AnyDetail")]
        },
    }
    status["required"] = ["code", "message"]
    status["description"] = "Every error, from a service or the gateway: a google.rpc.Status."
    components.schemas["Status"] = status
    responses = {}
    for code, (name, text) in ERROR_RESPONSES.items():
        responses[name] = {
            "description": text,
            "content": {
                "application/json": {
                    "schema": {"$ref": _STATUS},
                    "example": _status_example(int(code), name),
                }
            },
        }
    responses["Error"] = {
        "description": "Any other error, as a google.rpc.Status.",
        "content": {"application/json": {"schema": {"$ref": _STATUS}}},
    }
    return responses


_GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 413: 3, 429: 8, 503: 14, 504: 4}


def _status_example(http: int, name: str) -> dict[str, Any]:
    reason = re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()
    return {
        "code": _GRPC_CODES[http],
        "message": "query must not be empty" if http == 400 else name,
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "ragline.dev",
            }
        ],
    }


def oauth2_error_refs() -> dict[str, Any]:
    """The token endpoint's errors: RFC 6749 section 5.2 bodies, not a Status."""

    def reply(text: str, error: str) -> dict[str, Any]:
        example = {"error": error, "error_description": text}
        return {
            "description": text,
            "content": {"application/json": {"schema": _OAUTH2_ERROR, "example": example}},
        }

    return {
        "400": reply("A bad request, grant type or scope.", "invalid_request"),
        "401": reply(
            "Unknown client or wrong secret (with WWW-Authenticate: Basic).", "invalid_client"
        ),
        "429": reply("Too many failed attempts from this address; see Retry-After.", "slow_down"),
        "default": {"$ref": "#/components/responses/Error"},
    }


def error_refs(public: bool, has_body: bool) -> dict[str, Any]:
    """The error answers of one operation (public ones skip authentication and limits)."""
    skip = {"401", "403", "429"} if public else set()
    if not has_body:
        skip.add("413")
    refs: dict[str, Any] = {
        code: {"$ref": f"#/components/responses/{name}"}
        for code, (name, _) in ERROR_RESPONSES.items()
        if code not in skip
    }
    refs["default"] = {"$ref": "#/components/responses/Error"}
    return refs
