"""JSON Schemas (OpenAPI 3.1) for proto messages, as the gateway prints them.

The transcoder prints proto field names (`preserve_proto_field_names`) and every scalar
field, set or not (`always_print_primitive_fields`); proto3 JSON writes 64-bit integers as
strings, enums by name and well-known types in their JSON forms.
"""

from __future__ import annotations

from typing import Any

from ragline_openapi.protos import Behavior, FieldProto, MessageProto, Protos, behaviors

Schema = dict[str, Any]

_T = FieldProto
_INT64 = {_T.TYPE_INT64, _T.TYPE_SINT64, _T.TYPE_SFIXED64}
_UINT64 = {_T.TYPE_UINT64, _T.TYPE_FIXED64}
_INT32 = {_T.TYPE_INT32, _T.TYPE_SINT32, _T.TYPE_SFIXED32}
_UINT32 = {_T.TYPE_UINT32, _T.TYPE_FIXED32}
_INT64_NOTE = "A 64-bit integer, written as a decimal string (proto3 JSON)."

# Well-known types have JSON forms of their own instead of their fields.
WELL_KNOWN: dict[str, Schema] = {
    ".google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    ".google.protobuf.Duration": {
        "type": "string",
        "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$",
        "description": 'Seconds with an "s" suffix, e.g. "1.5s".',
    },
    ".google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    ".google.protobuf.Value": {},
    ".google.protobuf.ListValue": {"type": "array", "items": {}},
    ".google.protobuf.Empty": {"type": "object"},
    ".google.protobuf.FieldMask": {"type": "string"},
    ".google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
        "additionalProperties": True,
    },
    ".google.protobuf.StringValue": {"type": "string"},
    ".google.protobuf.BytesValue": {"type": "string", "contentEncoding": "base64"},
    ".google.protobuf.BoolValue": {"type": "boolean"},
    ".google.protobuf.DoubleValue": {"type": "number"},
    ".google.protobuf.FloatValue": {"type": "number"},
    ".google.protobuf.Int32Value": {"type": "integer", "format": "int32"},
    ".google.protobuf.UInt32Value": {"type": "integer", "format": "int32", "minimum": 0},
    ".google.protobuf.Int64Value": {"type": "string", "format": "int64"},
    ".google.protobuf.UInt64Value": {"type": "string", "format": "int64"},
}


def scalar(fld: FieldProto) -> Schema:
    t = fld.type
    if t in (_T.TYPE_DOUBLE, _T.TYPE_FLOAT):
        return {"type": "number", "format": "double" if t == _T.TYPE_DOUBLE else "float"}
    if t in _INT64:
        return {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"}
    if t in _UINT64:
        return {"type": "string", "format": "int64", "pattern": "^[0-9]+$"}
    if t in _INT32:
        return {"type": "integer", "format": "int32"}
    if t in _UINT32:
        return {"type": "integer", "format": "int32", "minimum": 0}
    if t == _T.TYPE_BOOL:
        return {"type": "boolean"}
    if t == _T.TYPE_BYTES:
        return {"type": "string", "contentEncoding": "base64"}
    return {"type": "string"}


class Components:
    """Builds `components.schemas` on demand: a message becomes a component when referenced."""

    def __init__(self, protos: Protos) -> None:
        self.protos = protos
        self.schemas: dict[str, Schema] = {}
        self._names = _component_names(protos)
        # Hooks that replace a message's generated schema (error details, see gateway_routes).
        self.overrides: dict[str, Schema] = {}

    def name(self, full_name: str) -> str:
        return self._names[full_name]

    def ref(self, type_name: str) -> Schema:
        """A reference to a message or enum (`.pkg.Name`), building its component once."""
        if type_name in WELL_KNOWN:
            return dict(WELL_KNOWN[type_name])
        name = self._names[type_name]
        if name not in self.schemas:
            self.schemas[name] = {}  # placeholder: recursive messages stop here
            if type_name in self.protos.enums:
                self.schemas[name] = self._enum(type_name)
            else:
                self.schemas[name] = self.overrides.get(type_name) or self.message(type_name)
        return {"$ref": f"#/components/schemas/{name}"}

    def message(self, type_name: str, skip: frozenset[str] = frozenset()) -> Schema:
        """The object schema of a message, without the fields in `skip`."""
        msg = self.protos.messages[type_name]
        props: dict[str, Schema] = {}
        required: list[str] = []
        for fld in msg.field:
            if fld.name in skip:
                continue
            props[fld.name] = self.field(type_name, fld)
            if Behavior.REQUIRED in behaviors(fld):
                required.append(fld.name)
        schema: Schema = {"type": "object"}
        description = _message_description(self.protos.comment(type_name), msg)
        if description:
            schema["description"] = description
        schema["properties"] = props
        if required:
            schema["required"] = required
        return schema

    def field(self, owner: str, fld: FieldProto) -> Schema:
        schema = self.value(fld)
        marks = behaviors(fld)
        notes = [self.protos.comment(f"{owner}.{fld.name}")]
        if fld.type in _INT64 | _UINT64:
            notes.append(_INT64_NOTE)
        if Behavior.IMMUTABLE in marks:
            notes.append("Immutable: set when the resource is created.")
        description = " ".join(n for n in notes if n)
        if description:
            schema["description"] = description
        if Behavior.OUTPUT_ONLY in marks:
            schema["readOnly"] = True
        if Behavior.INPUT_ONLY in marks:
            schema["writeOnly"] = True
        return schema

    def value(self, fld: FieldProto) -> Schema:
        """The field's schema without its description (repeated and map fields included)."""
        entry = self._map_entry(fld)
        if entry is not None:
            return {"type": "object", "additionalProperties": self.value(entry.field[1])}
        if fld.type in (_T.TYPE_MESSAGE, _T.TYPE_ENUM):
            item = self.ref(fld.type_name)
        else:
            item = scalar(fld)
        if fld.label == _T.LABEL_REPEATED:
            return {"type": "array", "items": item}
        return item

    def _map_entry(self, fld: FieldProto) -> MessageProto | None:
        if fld.type != _T.TYPE_MESSAGE or fld.label != _T.LABEL_REPEATED:
            return None
        msg = self.protos.messages.get(fld.type_name)
        return msg if msg is not None and msg.options.map_entry else None

    def _enum(self, type_name: str) -> Schema:
        enum = self.protos.enums[type_name]
        lines = [self.protos.comment(type_name)]
        for value in enum.value:
            note = self.protos.comment(f"{type_name}.{value.name}")
            lines.append(f"- `{value.name}`: {note}" if note else f"- `{value.name}`")
        return {
            "type": "string",
            "enum": [value.name for value in enum.value],
            "description": "\n".join(line for line in lines if line),
        }


def _message_description(comment: str, msg: MessageProto) -> str:
    groups: dict[int, list[str]] = {}
    for fld in msg.field:
        if fld.HasField("oneof_index") and not fld.proto3_optional:
            groups.setdefault(fld.oneof_index, []).append(f"`{fld.name}`")
    notes = [comment] + [
        f"At most one of {', '.join(names)} is set." for _, names in sorted(groups.items())
    ]
    return " ".join(n for n in notes if n)


def _component_names(protos: Protos) -> dict[str, str]:
    """Short names ("ChatRequest", nested "BadRequestFieldViolation"), package-qualified
    ("ChatV1Usage") only where two packages share a name."""
    short: dict[str, str] = {}
    for full in [*protos.messages, *protos.enums]:
        package = _package_of(full, protos)
        short[full] = full[len(package) + 2 :].replace(".", "")
    counts: dict[str, int] = {}
    for name in short.values():
        counts[name] = counts.get(name, 0) + 1
    names = {}
    for full, name in short.items():
        if counts[name] > 1:
            parts = _package_of(full, protos).split(".")[1:]  # "ragline.chat.v1" -> chat, v1
            name = "".join(p.capitalize() for p in parts) + name
        names[full] = name
    return names


def _package_of(full: str, protos: Protos) -> str:
    """The proto package of a full name: the longest prefix that is not a message."""
    parts = full.lstrip(".").split(".")
    while len(parts) > 1 and "." + ".".join(parts[:-1]) in protos.messages:
        parts = parts[:-1]
    return ".".join(parts[:-1])
