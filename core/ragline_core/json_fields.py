"""Unknown JSON fields: which names a request message accepts, and the 400 for one it does not.

Envoy's JSON transcoder drops unknown body fields without a word, so a typo ("qeury",
"limt") silently becomes a default. The gateway refuses them before the transcoder
(envoy/json_fields.lua, driven by a table rendered from these schemas) and the chat
WebSocket refuses them the same way (same reason, same message, snake_case names).

A field is accepted by its proto name (snake_case) or its JSON name (camelCase), as the
transcoder does. Maps and the well-known types (Struct, Value, Timestamp, wrappers...) are
free-form: only message fields of our own messages are looked into, repeated ones too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from ragline_core.errors import QUOTED_CHARS, InvalidArgumentError

REASON = "UNKNOWN_FIELD"
# Messages whose JSON is not an object of their fields (free-form or a scalar in JSON).
_FREE_FORM_PACKAGES = ("google.protobuf.", "google.api.HttpBody")


@dataclass
class MessageFields:
    """The JSON names one message accepts; `children` maps each name to the schema of a
    message-typed field (None: a scalar, enum, map or free-form value, not looked into)."""

    name: str
    snake_names: tuple[str, ...] = ()
    children: dict[str, MessageFields | None] = field(default_factory=dict)


def checked(message: Descriptor) -> bool:
    """False for messages whose JSON is free-form or not an object (Struct, Timestamp...)."""
    return not message.full_name.startswith(_FREE_FORM_PACKAGES)


def schema_of(message: Descriptor, memo: dict[str, MessageFields] | None = None) -> MessageFields:
    """The accepted names of `message` and, recursively, of its message fields."""
    memo = {} if memo is None else memo
    found = memo.get(message.full_name)
    if found is not None:
        return found
    schema = MessageFields(message.full_name, tuple(f.name for f in message.fields))
    memo[message.full_name] = schema  # before the fields: messages may nest themselves
    for f in message.fields:
        child: MessageFields | None = None
        sub = f.message_type
        if (
            f.type == FieldDescriptor.TYPE_MESSAGE
            and sub is not None
            and not sub.GetOptions().map_entry
            and checked(sub)
        ):
            child = schema_of(sub, memo)
        schema.children[f.name] = child
        schema.children[f.json_name] = child
    return schema


def message_text(path: str, valid: tuple[str, ...]) -> str:
    """The 400's message (the gateway's Lua builds the same text)."""
    shown = path if len(path) <= QUOTED_CHARS else path[:QUOTED_CHARS] + "..."
    names = ", ".join(valid) if valid else "none"
    return f'unknown field "{shown}"; valid fields here: {names}'


def first_unknown(body: Any, schema: MessageFields, path: str = "") -> tuple[str, MessageFields]:
    """The path of the first unknown field in a decoded JSON body ("" when there is none)
    and the schema it is unknown in."""
    if not isinstance(body, dict):
        return "", schema
    for key, value in body.items():
        here = f"{path}.{key}" if path else str(key)
        if key not in schema.children:
            return here, schema
        child = schema.children[key]
        if child is None:
            continue
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            where = f"{here}[{i}]" if isinstance(value, list) else here
            bad, within = first_unknown(item, child, where)
            if bad:
                return bad, within
    return "", schema


def reject_unknown(body: Any, schema: MessageFields) -> None:
    """Raises the 400 (UNKNOWN_FIELD, the field as a BadRequest violation) for the first
    field `schema` does not accept."""
    bad, within = first_unknown(body, schema)
    if bad:
        raise InvalidArgumentError(
            message_text(bad, within.snake_names),
            reason=REASON,
            field=bad,
            metadata={"field": bad[:QUOTED_CHARS], "valid_fields": ",".join(within.snake_names)},
        )
