"""The OpenAPI 3.1 document generated from the descriptor set (tools/ragline_openapi)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate
from ragline_openapi import document, gateway_routes, protos

from ragline_ingest import extract
from ragline_stack import envoy_config

ROOT = Path(__file__).resolve().parents[2]
DESCRIPTORS = ROOT / "gen" / "ragline.binpb"
BUILT = ROOT / "gen" / "openapi" / "openapi.json"
VERBS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
def index() -> protos.Protos:
    return protos.load(DESCRIPTORS)


@pytest.fixture(scope="module")
def doc(index: protos.Protos) -> dict[str, Any]:
    return document.build(index)


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, verb, op)
        for path, item in doc["paths"].items()
        for verb, op in item.items()
        if verb in VERBS
    ]


def test_valid_openapi_31(doc):
    assert doc["openapi"] == "3.1.0"
    validate(doc)


def test_built_document_is_current_and_deterministic(doc, index):
    """gen/openapi/openapi.json is what the generator makes now, every time."""
    again = document.build(protos.load(DESCRIPTORS))
    assert json.dumps(again) == json.dumps(doc)
    assert json.loads(BUILT.read_text()) == doc, "stale: run `make gen`"


def test_every_bound_rpc_and_plain_route_is_documented(doc, index):
    from ragline_openapi.operations import bindings

    for method in index.methods:
        for binding in bindings(method):
            assert binding.verb in doc["paths"][binding.path], (method.name, binding.path)
    # Each plain-HTTP route the gateway serves is reached by some documented path.
    reached = {
        id(envoy_config.serving_route(re.sub(r"\{[^}]+\}", "x1", path))) for path in doc["paths"]
    }
    for route in envoy_config.REST_ROUTES:
        if route.cluster not in envoy_config.SERVICES or str(route.match).find("'/v1/") >= 0:
            assert id(route) in reached, route.match
    assert "get" in doc["paths"]["/metrics"]


def test_required_fields_follow_field_behavior(doc, index):
    """Every REQUIRED field of a message that is a schema is in its `required` list."""
    schemas = doc["components"]["schemas"]
    checked = 0
    for full, message in index.messages.items():
        name = full.rsplit(".", 1)[1]
        schema = schemas.get(name)
        if schema is None or "properties" not in schema:
            continue
        for fld in message.field:
            if protos.Behavior.REQUIRED in protos.behaviors(fld):
                assert fld.name in schema.get("required", []), (name, fld.name)
                checked += 1
            if protos.Behavior.OUTPUT_ONLY in protos.behaviors(fld):
                assert schema["properties"][fld.name].get("readOnly") is True, (name, fld.name)
    assert checked > 0 or not any(
        protos.Behavior.REQUIRED in protos.behaviors(f)
        for m in index.messages.values()
        for f in m.field
    )


def test_int64_fields_are_strings(doc):
    usage = doc["components"]["schemas"]["UsageStats"]["properties"]["requests"]
    assert usage["type"] == "string" and usage["format"] == "int64"
    assert "decimal string" in usage["description"]


def test_streams_are_server_sent_events_with_their_event_schema(doc):
    for path, verb, event in [
        ("/api/v1/chat:stream", "post", "StreamChatResponse"),
        ("/api/v1/jobs/{job_id}:watch", "get", "WatchJobResponse"),
        ("/v1/chat/completions", "post", "OpenAIChatCompletionChunk"),
    ]:
        content = doc["paths"][path][verb]["responses"]["200"]["content"]
        stream = content["text/event-stream"]
        assert stream["schema"]["x-event-schema"] == {"$ref": f"#/components/schemas/{event}"}
        assert stream["example"].startswith("data: {")


def test_upload_is_a_binary_body_of_the_parsed_types(doc):
    op = doc["paths"]["/api/v1/collections/{collection}/documents:upload"]["post"]
    content = op["requestBody"]["content"]
    assert "application/json" not in content
    assert set(extract._CONTENT_TYPES) <= set(content)
    assert all(m["schema"] == {"type": "string", "format": "binary"} for m in content.values())
    query = {p["name"] for p in op["parameters"] if p["in"] == "query"}
    assert {"filename", "title"} <= query


def test_errors_are_status_with_error_info_and_bad_request(doc):
    schemas = doc["components"]["schemas"]
    items = schemas["Status"]["properties"]["details"]["items"]["anyOf"]
    assert {"$ref": "#/components/schemas/ErrorInfo"} in items
    assert {"$ref": "#/components/schemas/BadRequest"} in items
    assert "reason" in schemas["ErrorInfo"]["properties"]
    responses = doc["components"]["responses"]
    for path, verb, op in _operations(doc):
        codes = op["responses"]
        # The OpenAI-compatible routes answer in OpenAI's shape (Status fields plus `error`).
        prefix = "#/components/responses/" + ("OpenAI" if path.startswith("/v1/") else "")
        default = "ErrorDefault" if path.startswith("/v1/") else "Error"
        assert codes["default"] == {"$ref": prefix + default}, (path, verb)
        if path == "/oauth2/token":  # RFC 6749 section 5.2 bodies, not a Status
            assert codes["401"]["content"]["application/json"]["example"]["error"] == (
                "invalid_client"
            )
        elif op.get("security") != []:
            assert codes["401"] == {"$ref": prefix + "Unauthenticated"}
    assert responses["BadRequest"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Status"
    }
    openai_error = responses["OpenAIBadRequest"]["content"]["application/json"]
    assert openai_error["schema"] == {"$ref": "#/components/schemas/OpenAIError"}
    assert openai_error["example"]["error"]["type"] == "invalid_request_error"
    assert "/v1/embeddings" in doc["paths"]


def test_one_example_per_operation_valid_against_its_schema(doc):
    from jsonschema import Draft202012Validator

    full = {**doc, "$defs": {}}  # references resolve against the document itself
    for path, verb, op in _operations(doc):
        media = [
            *op.get("requestBody", {}).get("content", {}).values(),
            *op["responses"].get("200", {}).get("content", {}).values(),
        ]
        examples = [m for m in media if "example" in m]
        if path in ("/api/v1/chat/ws",):  # 101: no body either way
            continue
        assert examples, (path, verb)
        for m in examples:
            if "x-event-schema" in m["schema"] or m["schema"].get("format") == "binary":
                continue
            schema = {**m["schema"], "components": full["components"]}
            Draft202012Validator(schema).validate(m["example"])


def test_public_operations_and_scopes_follow_the_route_table(doc):
    paths = doc["paths"]
    for path in ("/health", "/openapi.json", "/docs", "/.well-known/jwks.json"):
        assert paths[path]["get"]["security"] == [], path
    assert "security" not in paths["/api/v1/search"]["post"]
    assert "Needs the `search` scope." in paths["/api/v1/search"]["post"]["description"]
    assert "Needs the `admin` scope." in paths["/metrics"]["get"]["description"]
    assert doc["components"]["securitySchemes"] == gateway_routes.SECURITY_SCHEME


def test_no_linter_pragmas_in_descriptions(doc):
    assert "buf:lint" not in json.dumps(doc)
