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
    }
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
    binary: Schema = {"type": "string", "format": "binary"}
    return {
        "required": True,
        "description": "The file's bytes as the raw body (not JSON). The `filename` "
        "extension picks the parser, else the Content-Type.",
        "content": {media: {"schema": binary} for media in UPLOAD_TYPES},
    }


def raw_response(method: Method) -> dict[str, Any]:
    media, sample = RAW_RESPONSES[f"{method.service}.{method.name}"]
    schema: Schema = {"type": "object"} if media == "application/json" else {"type": "string"}
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
