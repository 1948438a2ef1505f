"""Native gRPC transport (`prefer_grpc=True`), sync and async, through the gateway's port.

Requests are the same JSON-shaped parameters the REST transport sends, parsed into the
proto request message; replies are turned back into that JSON shape (proto field names),
so `_core` decodes them into the same models. Errors come from the `google.rpc.Status` in
the `grpc-status-details-bin` trailer. Needs the `grpc` extra (grpcio, protobuf,
googleapis-common-protos); the stubs are committed in `ragline_client/_proto`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from functools import cache
from typing import Any

try:
    import grpc
    import grpc.aio
    from google.protobuf import descriptor_pool, json_format, message_factory
    from google.rpc import error_details_pb2, status_pb2
except ImportError as err:  # pragma: no cover - depends on the installation
    raise ImportError(
        "prefer_grpc=True needs the grpc extra: pip install 'ragline-client[grpc]'"
    ) from err

from ragline_client import _core as core
from ragline_client._proto.ragline.analytics.v1 import analytics_service_pb2
from ragline_client._proto.ragline.auth.v1 import auth_service_pb2
from ragline_client._proto.ragline.chat.v1 import chat_service_pb2
from ragline_client._proto.ragline.embedder.v1 import embedder_service_pb2
from ragline_client._proto.ragline.ingest.v1 import ingest_service_pb2
from ragline_client._proto.ragline.retriever.v1 import retriever_service_pb2
from ragline_client._proto.ragline.system.v1 import system_service_pb2
from ragline_client.errors import (
    ERROR_INFO,
    ConnectionFailedError,
    RaglineError,
    from_status,
    parse_retry_after,
)

Json = dict[str, Any]

# Imported for their side effect: the API's messages and the error details in the pool.
_REGISTERED = (
    analytics_service_pb2,
    auth_service_pb2,
    chat_service_pb2,
    embedder_service_pb2,
    ingest_service_pb2,
    retriever_service_pb2,
    system_service_pb2,
    error_details_pb2,
)


@cache
def _messages(method_path: str) -> tuple[Any, Any]:
    """(request class, reply class) of `/package.Service/Method`."""
    service, _, method = method_path.lstrip("/").rpartition("/")
    desc = descriptor_pool.Default().FindMethodByName(f"{service}.{method}")
    return (
        message_factory.GetMessageClass(desc.input_type),
        message_factory.GetMessageClass(desc.output_type),
    )


def _request(call: core.Call[Any]) -> Any:
    request_cls, _ = _messages(call.op.grpc_method)
    message = json_format.ParseDict(call.params, request_cls())
    if call.upload is not None:
        message.file.content_type = call.upload.content_type
        message.file.data = call.upload.data
    return message


def _to_json(message: Any) -> Json:
    result: Json = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return result


_DETAILS_KEY = "grpc-status-details-bin"


def _error(err: grpc.RpcError) -> RaglineError:
    """The exception for a failed call, from its status details (or its code alone)."""
    code = err.code() if hasattr(err, "code") else None
    number = code.value[0] if code is not None else 2
    message = err.details() if hasattr(err, "details") else str(err)
    metadata: list[tuple[str, Any]] = []
    for part in ("trailing_metadata", "initial_metadata"):
        getter = getattr(err, part, None)
        if getter is not None:
            metadata.extend(getter() or ())
    return _from_metadata(number, message or "", metadata)


def _from_metadata(number: int, message: str, metadata: Sequence[tuple[str, Any]]) -> RaglineError:
    status: Json | None = None
    retry_after: float | None = None
    reset: float | None = None
    limited = False
    for key, value in metadata:
        if key == _DETAILS_KEY and isinstance(value, bytes):
            status = json_format.MessageToDict(
                status_pb2.Status.FromString(value), preserving_proto_field_name=True
            )
        elif key == "retry-after" and isinstance(value, str):
            retry_after = parse_retry_after(value)
        elif key == "x-ratelimit-reset" and isinstance(value, str) and number == 8:
            reset = parse_retry_after(value)
        elif key == "x-envoy-ratelimited":
            limited = True
    if number == 14 and status is None and _is_connect_failure(message):
        return ConnectionFailedError(message, code=14)
    if number == 8 and (limited or reset is not None):
        # The gateway's global limiter answers native gRPC with a bare RESOURCE_EXHAUSTED
        # and its x-ratelimit-* headers (no Status details, no Retry-After): the REST 429's
        # reason and wait are rebuilt from them.
        retry_after = retry_after if retry_after is not None else reset
        if status is None:
            status = {
                "code": 8,
                "message": message or "rate limit reached; retry after the window resets",
                "details": [{"@type": ERROR_INFO, "reason": "RATE_LIMITED"}],
            }
    return from_status(status, grpc_code=number, message=message, retry_after=retry_after)


def _is_connect_failure(message: str) -> bool:
    text = message.lower()
    return "failed to connect" in text or "connection refused" in text or "dns" in text


def _metadata(headers: Mapping[str, str], call: core.Call[Any]) -> tuple[tuple[str, str], ...]:
    return (*headers.items(), *call.headers)


def _channel_options(headers: Mapping[str, str]) -> list[tuple[str, Any]]:
    return [("grpc.primary_user_agent", headers.get("user-agent", "ragline-client-python"))]


def _call_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k != "user-agent"}


class GrpcTransport:
    def __init__(self, target: str, tls: bool, headers: Mapping[str, str]) -> None:
        options = _channel_options(headers)
        self._channel = (
            grpc.secure_channel(target, grpc.ssl_channel_credentials(), options=options)
            if tls
            else grpc.insecure_channel(target, options=options)
        )
        self._headers = _call_headers(headers)
        self._unary: dict[str, Any] = {}
        self._streams: dict[str, Any] = {}

    def _callable(self, call: core.Call[Any]) -> Any:
        path = call.op.grpc_method
        cache = self._streams if call.op.stream else self._unary
        fn = cache.get(path)
        if fn is None:
            _, reply_cls = _messages(path)
            factory = self._channel.unary_stream if call.op.stream else self._channel.unary_unary
            fn = factory(
                path,
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=reply_cls.FromString,
            )
            cache[path] = fn
        return fn

    def unary(self, call: core.Call[Any], timeout: float) -> Json:
        fn = self._callable(call)
        try:
            reply = fn(_request(call), timeout=timeout, metadata=_metadata(self._headers, call))
        except grpc.RpcError as err:
            raise _error(err) from None
        return _to_json(reply)

    def stream(self, call: core.Call[Any], timeout: float) -> Iterator[Json]:
        # A stream lasts as long as the answer or the job: no deadline unless the call set one.
        replies = self._callable(call)(
            _request(call), timeout=call.timeout, metadata=_metadata(self._headers, call)
        )
        try:
            for reply in replies:
                yield _to_json(reply)
        except grpc.RpcError as err:
            raise _error(err) from None
        finally:
            replies.cancel()

    def close(self) -> None:
        self._channel.close()


class AsyncGrpcTransport:
    def __init__(self, target: str, tls: bool, headers: Mapping[str, str]) -> None:
        self._target = target
        self._tls = tls
        self._options = _channel_options(headers)
        self._headers = _call_headers(headers)
        # grpc.aio binds a channel to the running event loop: made at the first call.
        self._channel: grpc.aio.Channel | None = None
        self._callables: dict[str, Any] = {}

    def _callable(self, call: core.Call[Any]) -> Any:
        if self._channel is None:
            self._channel = (
                grpc.aio.secure_channel(
                    self._target, grpc.ssl_channel_credentials(), options=self._options
                )
                if self._tls
                else grpc.aio.insecure_channel(self._target, options=self._options)
            )
        path = call.op.grpc_method
        fn = self._callables.get(path)
        if fn is None:
            _, reply_cls = _messages(path)
            factory = self._channel.unary_stream if call.op.stream else self._channel.unary_unary
            fn = factory(
                path,
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=reply_cls.FromString,
            )
            self._callables[path] = fn
        return fn

    async def unary(self, call: core.Call[Any], timeout: float) -> Json:
        fn = self._callable(call)
        try:
            reply = await fn(
                _request(call), timeout=timeout, metadata=_metadata(self._headers, call)
            )
        except grpc.RpcError as err:
            raise _error(err) from None
        return _to_json(reply)

    async def stream(self, call: core.Call[Any], timeout: float) -> AsyncIterator[Json]:
        replies = self._callable(call)(
            _request(call), timeout=call.timeout, metadata=_metadata(self._headers, call)
        )
        try:
            async for reply in replies:
                yield _to_json(reply)
        except grpc.RpcError as err:
            raise _error(err) from None
        finally:
            replies.cancel()

    async def aclose(self) -> None:
        if self._channel is not None:
            await self._channel.close(None)
