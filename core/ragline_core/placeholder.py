"""Servicers for contracts whose behaviour has not landed yet: every method answers
UNIMPLEMENTED (HTTP 501) with a clear message, instead of an opaque error."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from ragline_core.errors import UnimplementedError
from ragline_core.rpc_types import Context
from ragline_core.server import Runtime, ServiceSpec


def _method(descriptor: MethodDescriptor) -> Callable[..., Any]:
    message = f"{descriptor.full_name} is not implemented yet"
    if descriptor.server_streaming:

        async def stream(self: object, request: object, context: Context) -> AsyncIterator[object]:
            raise UnimplementedError(message)
            yield  # pragma: no cover - makes this an async generator

        return stream

    async def unary(self: object, request: object, context: Context) -> object:
        raise UnimplementedError(message)

    return unary


def placeholder_spec(
    name: str,
    descriptor: ServiceDescriptor,
    base: type,
    add_to_server: Callable[[Any, grpc.aio.Server], None],
) -> ServiceSpec:
    """A ServiceSpec whose servicer answers UNIMPLEMENTED to every method of `descriptor`."""
    methods = {m.name: _method(m) for m in descriptor.methods}
    servicer_cls = type(f"Placeholder{descriptor.name}", (base,), methods)

    async def register(server: grpc.aio.Server, runtime: Runtime) -> None:
        add_to_server(servicer_cls(), server)

    return ServiceSpec(name=name, service_names=(descriptor.full_name,), register=register)
