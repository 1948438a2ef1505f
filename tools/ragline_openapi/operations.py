"""Operations from the `google.api.http` bindings of the protos, as the transcoder serves them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ragline_openapi import gateway_routes
from ragline_openapi.examples import example
from ragline_openapi.protos import HTTP_RULE, FieldProto, Method, Protos, clean_comment
from ragline_openapi.schemas import WELL_KNOWN, Components, Schema

_VERBS = ("get", "put", "post", "delete", "patch")
_TEMPLATE_VAR = re.compile(r"\{([^}=]+)(=[^}]*)?\}")
_HTTP_BODY = ".google.api.HttpBody"


@dataclass
class Binding:
    verb: str
    path: str  # OpenAPI form: "/api/v1/jobs/{job_id}:watch"
    body: str  # "", "*" or a field name
    path_fields: list[str] = field(default_factory=list)
    # Resource names bound with a pattern (`{name=users/*}`): field → its collection
    # ("users/"). The path shows the id alone (`/api/v1/users/{name}`): a client would
    # percent-encode the slash of a whole name, which the gateway rejects.
    patterns: dict[str, str] = field(default_factory=dict)


def bindings(method: Method) -> list[Binding]:
    """The method's HTTP bindings (the primary one and any additional ones)."""
    if not method.proto.options.HasExtension(HTTP_RULE):
        return []
    rule = method.proto.options.Extensions[HTTP_RULE]
    found = []
    for r in [rule, *rule.additional_bindings]:
        verb = r.WhichOneof("pattern")
        if verb not in _VERBS:
            continue
        template = getattr(r, verb)
        fields = [m.group(1) for m in _TEMPLATE_VAR.finditer(template)]
        patterns = {
            m.group(1): m.group(2)[1:].replace("*", "")
            for m in _TEMPLATE_VAR.finditer(template)
            if m.group(2) and "/" in m.group(2)
        }

        def plain(m: re.Match[str], patterns: dict[str, str] = patterns) -> str:
            name = m.group(1)
            if name in patterns:
                return patterns[name] + "{" + name.rsplit(".", 1)[-1] + "}"
            return "{" + name + "}"

        found.append(Binding(verb, _TEMPLATE_VAR.sub(plain, template), r.body, fields, patterns))
    return found


def operation(
    protos: Protos,
    components: Components,
    method: Method,
    binding: Binding,
    operation_id: str,
) -> dict[str, Any]:
    request_type = method.proto.input_type
    request = protos.messages[request_type]
    fields = {f.name: f for f in request.field}
    description = method.comment
    op: dict[str, Any] = {
        "operationId": operation_id,
        "tags": [method.service.rsplit(".", 1)[1]],
        "summary": _first_sentence(description),
        "description": description,
    }
    params = [
        _parameter(components, request_type, fields[name], "path")
        for name in binding.path_fields
        if name in fields and name not in binding.patterns
    ]
    params += [
        {
            "name": name.rsplit(".", 1)[-1],
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "description": f"The id: `{name}` without its `{prefix}`.",
        }
        for name, prefix in binding.patterns.items()
    ]
    in_body: set[str] = set(binding.path_fields)
    if binding.body == "*":
        in_body = set(fields)
        op["requestBody"] = _json_body(components, request_type, frozenset(binding.path_fields))
    elif binding.body:
        in_body.add(binding.body)
        body_field = fields[binding.body]
        if body_field.type_name == _HTTP_BODY:
            op["requestBody"] = gateway_routes.raw_body(method)
        else:
            schema = components.value(body_field)
            op["requestBody"] = _with_example(components, schema, request=True, required=True)
    params += [
        p
        for name, fld in fields.items()
        if name not in in_body
        for p in _query_parameters(components, request_type, fld, name)
    ]
    if params:
        op["parameters"] = params
    op["responses"] = {"200": _response(components, method)}
    return op


def _json_body(components: Components, type_name: str, skip: frozenset[str]) -> dict[str, Any]:
    if skip:
        schema = components.message(type_name, skip)
        name = components.name(type_name) + "Body"
        components.schemas[name] = schema
        ref: Schema = {"$ref": f"#/components/schemas/{name}"}
    else:
        ref = components.ref(type_name)
    return _with_example(components, ref, request=True, required=True)


def _with_example(
    components: Components, schema: Schema, *, request: bool, required: bool = False
) -> dict[str, Any]:
    media = {"schema": schema, "example": example(schema, components.schemas, request=request)}
    body: dict[str, Any] = {"content": {"application/json": media}}
    if required:
        body["required"] = True
    return body


def _response(components: Components, method: Method) -> dict[str, Any]:
    out = method.proto.output_type
    if method.proto.server_streaming:
        event = components.ref(out)
        return gateway_routes.event_stream(
            event, example(event, components.schemas), components.name(out)
        )
    if out == _HTTP_BODY:
        return gateway_routes.raw_response(method)
    body = _with_example(components, components.ref(out), request=False)
    return {"description": _first_sentence(components.protos.comment(out)) or "OK", **body}


def _parameter(
    components: Components, owner: str, fld: FieldProto, where: str, name: str | None = None
) -> dict[str, Any]:
    schema = components.field(owner, fld)
    description = schema.pop("description", "")
    schema.pop("readOnly", None)
    param: dict[str, Any] = {"name": name or fld.name, "in": where, "schema": schema}
    if description:
        param["description"] = description
    if where == "path":
        param["required"] = True
    return param


def _query_parameters(
    components: Components, owner: str, fld: FieldProto, name: str, depth: int = 0
) -> list[dict[str, Any]]:
    """Query parameters of a request field: scalars as they are, messages by their fields
    in dotted form ("filter.tenant"), as the transcoder reads them."""
    if fld.type != FieldProto.TYPE_MESSAGE or fld.type_name in WELL_KNOWN:
        return [_parameter(components, owner, fld, "query", name)]
    nested = components.protos.messages[fld.type_name]
    if fld.label == FieldProto.LABEL_REPEATED or depth >= 2 or nested.options.map_entry:
        return []  # the transcoder cannot read these from a query string
    return [
        p
        for sub in nested.field
        for p in _query_parameters(components, fld.type_name, sub, f"{name}.{sub.name}", depth + 1)
    ]


def _first_sentence(text: str) -> str:
    text = clean_comment(text)
    head = text.split(". ", 1)[0]
    return head.rstrip(".")
