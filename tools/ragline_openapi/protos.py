"""An index of the descriptor set: messages, enums, services and their comments."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from google.api import annotations_pb2, field_behavior_pb2  # registers the extensions
from google.protobuf import descriptor_pb2

FieldProto = descriptor_pb2.FieldDescriptorProto
MessageProto = descriptor_pb2.DescriptorProto
EnumProto = descriptor_pb2.EnumDescriptorProto
MethodProto = descriptor_pb2.MethodDescriptorProto
HTTP_RULE = annotations_pb2.http
FIELD_BEHAVIOR = field_behavior_pb2.field_behavior
Behavior = field_behavior_pb2.FieldBehavior

# Source-location path tags (descriptor.proto field numbers).
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE = 4, 5, 6
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM = 2, 3, 4
_ENUM_VALUE, _SERVICE_METHOD = 2, 2
# Pragmas for buf's linter, not documentation.
_PRAGMAS = ("buf:lint:ignore",)


@dataclass(frozen=True)
class Method:
    service: str  # full name, "ragline.chat.v1.ChatService"
    proto: MethodProto
    comment: str

    @property
    def name(self) -> str:
        return self.proto.name


@dataclass
class Protos:
    """Everything the generator looks up by full name ("ragline.chat.v1.ChatRequest")."""

    messages: dict[str, MessageProto] = field(default_factory=dict)
    enums: dict[str, EnumProto] = field(default_factory=dict)
    methods: list[Method] = field(default_factory=list)
    services: dict[str, str] = field(default_factory=dict)  # full name -> comment
    # Comments by element: message/enum full name, "Message.field", "Enum.VALUE".
    comments: dict[str, str] = field(default_factory=dict)

    def comment(self, key: str) -> str:
        return self.comments.get(key, "")


def load(path: Path) -> Protos:
    files = descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())
    protos = Protos()
    for file in sorted(files.file, key=lambda f: f.name):
        _index_file(protos, file)
    return protos


def clean_comment(text: str) -> str:
    """A comment as documentation: trimmed, without linter pragmas."""
    lines = [line.strip() for line in text.strip().splitlines()]
    kept = [line for line in lines if not line.startswith(_PRAGMAS)]
    return " ".join(line for line in kept if line)


def _index_file(protos: Protos, file: descriptor_pb2.FileDescriptorProto) -> None:
    comments = {
        tuple(loc.path): clean_comment(loc.leading_comments)
        for loc in file.source_code_info.location
        if loc.leading_comments
    }
    prefix = f".{file.package}" if file.package else ""

    def add_enum(enum: EnumProto, scope: str, path: tuple[int, ...]) -> None:
        name = f"{scope}.{enum.name}"
        protos.enums[name] = enum
        protos.comments[name] = comments.get(path, "")
        for i, value in enumerate(enum.value):
            protos.comments[f"{name}.{value.name}"] = comments.get((*path, _ENUM_VALUE, i), "")

    def add_message(message: MessageProto, scope: str, path: tuple[int, ...]) -> None:
        name = f"{scope}.{message.name}"
        protos.messages[name] = message
        protos.comments[name] = comments.get(path, "")
        for i, fld in enumerate(message.field):
            protos.comments[f"{name}.{fld.name}"] = comments.get((*path, _MESSAGE_FIELD, i), "")
        for i, nested in enumerate(message.nested_type):
            add_message(nested, name, (*path, _MESSAGE_NESTED, i))
        for i, enum in enumerate(message.enum_type):
            add_enum(enum, name, (*path, _MESSAGE_ENUM, i))

    for i, message in enumerate(file.message_type):
        add_message(message, prefix, (_FILE_MESSAGE, i))
    for i, enum in enumerate(file.enum_type):
        add_enum(enum, prefix, (_FILE_ENUM, i))
    for i, service in enumerate(file.service):
        service_name = f"{file.package}.{service.name}"
        protos.services[service_name] = comments.get((_FILE_SERVICE, i), "")
        for j, method in enumerate(service.method):
            comment = comments.get((_FILE_SERVICE, i, _SERVICE_METHOD, j), "")
            protos.methods.append(Method(service_name, method, comment))


def behaviors(fld: FieldProto) -> set[int]:
    """The field's google.api.field_behavior values."""
    return set(fld.options.Extensions[FIELD_BEHAVIOR])
