"""One example per operation, made from its schemas.

Values come from the field's name where one reads naturally ("collection": "notes"), else
from its type, so every example is valid against its schema and a new field gets one
without anyone writing it. A request example carries the required fields and those with a
natural value (a minimal call that works); a response example carries every field.
"""

from __future__ import annotations

from typing import Any

from ragline_openapi.schemas import Schema

# Natural values for common field names (the README's walk-through).
BY_NAME: dict[str, Any] = {
    "query": "what transcodes JSON?",
    "text": "What is RAG?",
    "texts": ["What is RAG?", "How does Envoy route gRPC?"],
    "message": "What does Envoy do?",
    "collection": "notes",
    "title": "Envoy",
    "documents": [
        {
            "title": "Envoy",
            "content": "Envoy transcodes JSON to gRPC.",
            "metadata": {"category": "tutorial"},
        }
    ],
    "content": "Envoy transcodes JSON to gRPC.",
    "prefix": "env",
    "filename": "envoy.md",
    "name": "ci key",
    "tenant": "dev-1",
    "limit": 5,
    "status": "SERVING",
    "scopes": ["search", "chat"],
    "scope": "search chat",
    "token_type": "Bearer",
}
# Bounded: a recursive or very wide message still gives a small example.
_MAX_DEPTH = 4


def example(
    schema: Schema,
    components: dict[str, Schema],
    *,
    request: bool = False,
    name: str = "",
    depth: int = 0,
) -> Any:
    """A value valid against `schema` (references resolved in `components`)."""
    if "$ref" in schema:
        target = components[schema["$ref"].rsplit("/", 1)[1]]
        merged = {**target, **_siblings(schema)}
        return example(merged, components, request=request, name=name, depth=depth)
    if "example" in schema:
        return schema["example"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if depth >= _MAX_DEPTH:
            return {}
        props: dict[str, Schema] = schema.get("properties", {})
        required = schema.get("required", [])
        return {
            key: example(sub, components, request=request, name=key, depth=depth + 1)
            for key, sub in props.items()
            if not request or key in required or (key in BY_NAME and not sub.get("readOnly"))
        }
    if kind == "array":
        if name in BY_NAME and isinstance(BY_NAME[name], list):
            return BY_NAME[name]
        item = schema.get("items", {})
        return [example(item, components, request=request, name=_singular(name), depth=depth + 1)]
    if "enum" in schema:
        values = schema["enum"]
        meaningful = [v for v in values if not str(v).endswith("_UNSPECIFIED")]
        return (meaningful or values)[0]
    return _scalar(schema, name)


def _scalar(schema: Schema, name: str) -> Any:
    kind = schema.get("type")
    hint = BY_NAME.get(name)
    if kind == "string":
        if schema.get("format") == "date-time":
            return "2026-01-01T12:00:00Z"
        if schema.get("format") == "int64":
            return "42"
        if "pattern" in schema and "s$" in schema["pattern"]:
            return "1.5s"
        if schema.get("contentEncoding") == "base64":
            return "cmFnbGluZQ=="
        if isinstance(hint, str):
            return hint
        if name.endswith("_id") or name == "id":
            return f"{name.removesuffix('_id') or 'doc'}-1"
        if name.endswith("page_token"):
            return ""
        return name.replace("_", " ") or "text"
    if kind == "integer":
        if isinstance(hint, int):
            return hint
        return 5 if name in ("limit", "page_size") else 1
    if kind == "number":
        return 0.5
    if kind == "boolean":
        return False
    return None


def _siblings(schema: Schema) -> Schema:
    return {k: v for k, v in schema.items() if k != "$ref"}


def _singular(name: str) -> str:
    return name[:-1] if name.endswith("s") else name
