"""Assembles the OpenAPI 3.1 document."""

from __future__ import annotations

from typing import Any

from ragline_openapi import gateway_routes, operations, plain_routes
from ragline_openapi.protos import Protos
from ragline_openapi.schemas import Components

TITLE = "RAG API Service"
VERSION = "1.0.0"
DESCRIPTION = (
    "ragline's REST API, transcoded by Envoy from the gRPC contract (`protos/ragline`), plus "
    "its OpenAI-compatible routes. Authenticate with `Authorization: Bearer <API key or JWT>`."
    " Errors are `google.rpc.Status` JSON (on /v1/* also OpenAI's `error` object). Fields "
    "are snake_case; 64-bit integers are decimal strings and enums their names (proto3 JSON)."
)


def build(protos: Protos) -> dict[str, Any]:
    components = Components(protos)
    responses = gateway_routes.error_components(components)
    responses.update(plain_routes.openai_error_responses(responses))
    paths: dict[str, dict[str, Any]] = {}
    tags: dict[str, str] = {}
    counts: dict[str, int] = {}
    for method in protos.methods:
        counts[method.name] = counts.get(method.name, 0) + 1
    for method in protos.methods:
        for i, binding in enumerate(operations.bindings(method)):
            service = method.service.rsplit(".", 1)[1]
            op_id = method.name if counts[method.name] == 1 else service + method.name
            op_id += str(i + 1) if i else ""
            op = operations.operation(protos, components, method, binding, op_id)
            paths.setdefault(binding.path, {})[binding.verb] = op
            tags[service] = protos.services[method.service]
    # Plain-HTTP schemas may name proto messages (e.g. Citation): build those components first.
    components.ref(".ragline.chat.v1.Citation")
    components.schemas.update(plain_routes.OPENAI_SCHEMAS)
    for path, item in plain_routes.operations().items():
        paths.setdefault(path, {}).update(item)
    tags["OpenAI"] = "OpenAI-compatible routes (served by the chat and embedding services)."
    tags["Gateway"] = "The gateway's own routes."
    for path, item in paths.items():
        for op in item.values():
            _finish(path, op)
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION, "description": DESCRIPTION},
        "servers": [{"url": "/", "description": "This gateway"}],
        "security": [{"bearer": []}],
        "tags": [{"name": name, "description": tags[name]} for name in sorted(tags)],
        "paths": {path: paths[path] for path in sorted(paths)},
        "components": {
            "schemas": {name: components.schemas[name] for name in sorted(components.schemas)},
            "responses": responses,
            "securitySchemes": gateway_routes.SECURITY_SCHEME,
        },
    }


def _finish(path: str, op: dict[str, Any]) -> None:
    """The gateway's part of an operation: who may call it and its error answers."""
    public = gateway_routes.is_public(path)
    if public:
        op["security"] = []
        note = "Public: no key needed."
    else:
        note = gateway_routes.scope_note(path)
    op["description"] = " ".join(p for p in (op.get("description", ""), note) if p)
    if not op.get("summary"):
        op.pop("summary", None)
    refs = gateway_routes.error_refs(public, "requestBody" in op)
    if path == "/oauth2/token":  # RFC 6749 error bodies; the client authenticates itself
        op["security"] = [{"oauth2ClientBasic": []}, {}]
        refs = gateway_routes.oauth2_error_refs()
    if path.startswith("/v1/"):  # the OpenAI-compatible routes answer in OpenAI's shape
        refs = plain_routes.openai_error_refs(refs)
    op["responses"].update(refs)
