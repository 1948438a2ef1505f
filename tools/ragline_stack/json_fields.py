"""The field table of envoy/json_fields.lua, rendered from the built descriptor set.

For every REST binding (`google.api.http`) the gateway needs the message its JSON body is
parsed into and, for each message reachable from it, the names it accepts
(ragline_core.json_fields: snake_case and camelCase; maps and well-known types free-form).
Bindings without a body (GET, DELETE) take none: any field sent in a body is unknown there,
and the answer lists the query parameters instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import Descriptor

from ragline_core.json_fields import MessageFields, checked, schema_of
from ragline_stack.bindings import DESCRIPTOR

_VERBS = ("get", "put", "post", "delete", "patch")
_VARIABLE = re.compile(r"\{([^}=]+)(=[^}]*)?\}")
# Lua pattern magic characters (escaped with %).
_LUA_MAGIC = re.compile(r"([\^$()%.\[\]*+\-?])")


@dataclass(frozen=True)
class Binding:
    method: str
    template: str
    # The body's schema; None when the body is raw bytes (an upload), never checked.
    schema: MessageFields | None
    # True when the binding takes no body: every body field is unknown.
    no_body: bool
    # Query parameters (no-body bindings): the fields not bound in the path.
    query: tuple[str, ...] = ()


def _pool(path: Path) -> descriptor_pool.DescriptorPool:
    files = descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes()).file
    by_name = {f.name: f for f in files}
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(name: str) -> None:  # dependencies first
        if name in added:
            return
        added.add(name)
        for dep in by_name[name].dependency:
            add(dep)
        pool.Add(by_name[name])

    for name in by_name:
        add(name)
    return pool


def _rules(rule: http_pb2.HttpRule) -> list[tuple[str, str, str]]:
    found = []
    for r in (rule, *rule.additional_bindings):
        kind = r.WhichOneof("pattern")
        if kind in _VERBS:
            found.append((kind.upper(), getattr(r, kind), r.body))
        elif kind == "custom":
            found.append((r.custom.kind.upper(), r.custom.path, r.body))
    return found


def bindings(path: Path = DESCRIPTOR) -> list[Binding]:
    pool = _pool(path)
    memo: dict[str, MessageFields] = {}
    files = descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes()).file
    found = []
    for file in files:
        for service in file.service:
            for method in service.method:
                rule = method.options.Extensions[annotations_pb2.http]
                request: Descriptor = pool.FindMessageTypeByName(method.input_type.lstrip("."))
                for verb, template, body in _rules(rule):
                    found.append(_binding(verb, template, body, request, memo))
    return found


def _binding(
    verb: str, template: str, body: str, request: Descriptor, memo: dict[str, MessageFields]
) -> Binding:
    if not body:
        in_path = {m.group(1).split(".")[0] for m in _VARIABLE.finditer(template)}
        query = tuple(f.name for f in request.fields if f.name not in in_path)
        return Binding(verb, template, None, True, query)
    target: Descriptor | None = request
    if body != "*":
        target = request.fields_by_name[body].message_type
    if target is None or not checked(target):
        return Binding(verb, template, None, False)
    return Binding(verb, template, schema_of(target, memo), False)


def lua_pattern(template: str) -> str:
    """An anchored Lua pattern for a path template: a variable is one segment."""
    parts = _VARIABLE.split(template)[::3]
    return "^" + "[^/:]+".join(_LUA_MAGIC.sub(r"%\1", p) for p in parts) + "$"


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def lua_table(path: Path = DESCRIPTOR) -> str:
    """Lua source defining MESSAGES, EXACT and PATTERNS for envoy/json_fields.lua."""
    found = bindings(path)
    index: dict[str, int] = {}
    order: list[MessageFields] = []

    def number(schema: MessageFields) -> int:
        if schema.name not in index:
            index[schema.name] = len(order) + 1
            order.append(schema)
            for child in schema.children.values():
                if child is not None:
                    number(child)
        return index[schema.name]

    routes = []
    for b in found:
        if b.no_body:
            entry = f"{{query = {_lua_string(', '.join(b.query) or 'none')}}}"
        elif b.schema is not None:
            entry = f"{{message = {number(b.schema)}}}"
        else:
            continue
        routes.append((b, entry))
    lines = ["local MESSAGES = {"]
    for schema in order:
        fields = ", ".join(
            f"[{_lua_string(name)}] = {index[child.name] if child else 0}"
            for name, child in sorted(schema.children.items())
        )
        lines.append(
            f"  {{names = {_lua_string(', '.join(schema.snake_names))}, fields = {{{fields}}}}},"
        )
    lines.append("}")
    lines.append("local EXACT = {")
    for b, entry in routes:
        if not _VARIABLE.search(b.template):
            lines.append(f"  [{_lua_string(b.method + ' ' + b.template)}] = {entry},")
    lines.append("}")
    lines.append("local PATTERNS = {")
    for b, entry in routes:
        if _VARIABLE.search(b.template):
            pattern = _lua_string(lua_pattern(b.template))
            lines.append(
                f"  {{method = {_lua_string(b.method)}, path = {pattern}, route = {entry}}},"
            )
    lines.append("}")
    return "\n".join(lines) + "\n"
