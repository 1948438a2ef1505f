"""The REST bindings of the protos (`google.api.http`), read from the built descriptor set.

The gateway answers a method a REST path does not serve with 405 and an `Allow` header;
which methods each path serves is read here, so the protos stay the only place that says.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2

DESCRIPTOR = Path(__file__).resolve().parents[2] / "gen" / "ragline.binpb"
_VERBS = ("get", "put", "post", "delete", "patch")
_VARIABLE = re.compile(r"\{[^}]+\}")


def _rules(rule: http_pb2.HttpRule) -> list[tuple[str, str]]:
    found = []
    for r in (rule, *rule.additional_bindings):
        kind = r.WhichOneof("pattern")
        if kind in _VERBS:
            found.append((kind.upper(), getattr(r, kind)))
        elif kind == "custom":
            found.append((r.custom.kind.upper(), r.custom.path))
    return found


# A variable with a pattern, as resource names are bound (AIP-127): `{name=users/*}`.
_PATTERNED = re.compile(r"\{(?:[\w.]+\.)?(\w+)=([^}]+)\}")


def plain_template(template: str) -> str:
    """A template whose variables are single segments: `/api/v1/{name=users/*}` and
    `/api/v1/{user.name=users/*}` are both `/api/v1/users/{name}` (the path they match)."""
    return _PATTERNED.sub(
        lambda m: m.group(2).replace("**", "*").replace("*", "{" + m.group(1) + "}", 1), template
    )


def methods_by_path(descriptor: Path = DESCRIPTOR) -> dict[str, tuple[str, ...]]:
    """Path template (e.g. `/api/v1/collections/{collection}`) → the methods it serves."""
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor.read_bytes())
    methods: dict[str, set[str]] = defaultdict(set)
    for file in files.file:
        for service in file.service:
            for method in service.method:
                for verb, template in _rules(method.options.Extensions[annotations_pb2.http]):
                    methods[plain_template(template)].add(verb)
    return {path: tuple(sorted(verbs)) for path, verbs in sorted(methods.items())}


def path_regex(template: str) -> str:
    """An RE2 regex for a path template: a variable is one segment, without its verb."""
    parts = _VARIABLE.split(template)
    return "^" + "[^/:]+".join(re.escape(p) for p in parts) + "$"


def sample_path(template: str) -> str:
    """A concrete path the template matches (to find the route that serves it)."""
    return _VARIABLE.sub("x", template)
