"""gRPC interceptors: errors to statuses, one log line and metrics per RPC, deadlines.

The server interceptor is the only place exceptions become statuses: a `RaglineError`
keeps its code, message and reason; anything else becomes INTERNAL with a generic
message (the stack trace goes to the log only).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from pymongo.errors import ConnectionFailure

from ragline_core import caller, deadlines
from ragline_core.errors import (
    InternalError,
    PermissionDeniedError,
    RaglineError,
    ServerBusyError,
    UnavailableError,
)
from ragline_core.internal_tls import EDGE_WORKLOADS, peer_workload
from ragline_core.metrics import IN_FLIGHT_REFUSED, RPC_DURATION, RPC_REQUESTS
from ragline_core.rpc_types import Context, Handler
from ragline_core.telemetry import GATEWAY_PLUMBING_PREFIX

log = logging.getLogger("ragline.rpc")

# Probes arrive every few seconds, and Envoy calls ext_authz once per API request (its
# access log has that request already); logging them at INFO would drown real traffic.
_QUIET_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.", f"/{GATEWAY_PLUMBING_PREFIX}")

# Calls that carry no caller identity: probes, reflection, Envoy's own calls to the auth
# service (ext_authz checks and the usage access log), and the public documents.
_ANONYMOUS_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.",
    f"/{GATEWAY_PLUMBING_PREFIX}",
    "/ragline.system.v1.SystemService/",
    "/ragline.auth.v1.AuthService/GetJwks",
    "/ragline.auth.v1.AuthService/GetOpenApiDocument",
    "/ragline.auth.v1.AuthService/GetApiDocs",
    # The admin dashboard's static files (its API calls carry the admin's token).
    "/ragline.auth.v1.ConsoleService/",
    # The OAuth 2.0 token endpoint: the client authenticates with its own credentials.
    "/ragline.auth.v1.AuthService/CreateOAuth2Token",
)

# Calls admission control never refuses: probes, reflection, the gateway's own calls and
# GET /health (a busy process is alive, and says so).
_NEVER_REFUSED = (*_QUIET_PREFIXES, "/ragline.system.v1.SystemService/")

UnaryBehavior = Callable[[Any, Context], Awaitable[Any]]
StreamBehavior = Callable[[Any, Context], AsyncIterator[Any]]


async def abort_with(context: Context, error: RaglineError) -> None:
    """Ends the call with `error` as a rich status (ErrorInfo in the details); a
    ServerBusyError also says when to come back (the gateway passes it on as a header)."""
    status = error.to_status()
    metadata: tuple[tuple[str, str | bytes], ...] = (
        ("grpc-status-details-bin", status.SerializeToString()),
    )
    if isinstance(error, ServerBusyError):
        metadata += (("retry-after", str(error.retry_after_s)),)
    await context.abort(error.code, error.message, trailing_metadata=metadata)


class ServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Wraps every handler with error mapping, logging, metrics, deadline capture and, with
    an authenticator, the verified caller (UNAUTHENTICATED without one)."""

    def __init__(
        self,
        service: str,
        authenticator: caller.Authenticator | None = None,
        *,
        gateway_peer_required: bool = False,
        max_in_flight: int = 0,
    ) -> None:
        self.service = service
        self.authenticator = authenticator
        # Admission control (MAX_IN_FLIGHT; 0: none): calls being worked on now.
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        # With mutual TLS, the edge's calls (ext_authz checks, the usage access log, from
        # Envoy and from the chat WebSocket) carry no caller token: the certificate must
        # then be an edge workload's.
        self.gateway_peer_required = gateway_peer_required

    def _admit(self, method: str) -> bool:
        """Counts the call in, or refuses it (ServerBusyError) at the cap. Probes and the
        gateway's own calls are never refused: a busy process is still alive, and its
        callers' checks must go on. True when the call was counted."""
        if self.max_in_flight <= 0 or method.startswith(_NEVER_REFUSED):
            return False
        if self.in_flight >= self.max_in_flight:
            IN_FLIGHT_REFUSED.labels(self.service).inc()
            raise ServerBusyError(
                f"the {self.service} service is at its limit of {self.max_in_flight} calls "
                "in flight: retry after the number of seconds in Retry-After"
            )
        self.in_flight += 1
        return True

    async def _authenticate(self, method: str, context: Context) -> None:
        if self.gateway_peer_required and method.startswith(f"/{GATEWAY_PLUMBING_PREFIX}"):
            peer = peer_workload(context)
            if peer not in EDGE_WORKLOADS:
                raise PermissionDeniedError(
                    f"{method} is for the gateway only; the caller's certificate names "
                    f"{peer or 'no workload'}",
                    reason="GATEWAY_ONLY",
                )
        if self.authenticator is None or method.startswith(_ANONYMOUS_PREFIXES):
            return
        caller.set_current(await self.authenticator.caller(context.invocation_metadata()))

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary),  # type: ignore[arg-type]
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, handler.unary_stream),  # type: ignore[arg-type]
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            # Envoy's usage access log (client stream): only the caller check applies.
            return grpc.stream_unary_rpc_method_handler(
                self._client_stream(method, handler.stream_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _client_stream(self, method: str, behavior: Any) -> Any:
        async def wrapper(requests: Any, context: Context) -> Any:
            try:
                await self._authenticate(method, context)
            except RaglineError as exc:
                await abort_with(context, exc)
            return await behavior(requests, context)

        return wrapper

    def _unary(self, method: str, behavior: UnaryBehavior) -> UnaryBehavior:
        async def wrapper(request: Any, context: Context) -> Any:
            started = _begin(context)
            code = grpc.StatusCode.OK
            admitted = False
            try:
                admitted = self._admit(method)
                await self._authenticate(method, context)
                return await behavior(request, context)
            except BaseException as exc:
                code = _code_of(exc, context)
                await self._abort(exc, method, context)
                raise
            finally:
                if admitted:
                    self.in_flight -= 1
                self._record(method, code, started, context)

        return wrapper

    def _stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        async def wrapper(request: Any, context: Context) -> AsyncIterator[Any]:
            started = _begin(context)
            code = grpc.StatusCode.OK
            admitted = False
            try:
                admitted = self._admit(method)
                await self._authenticate(method, context)
                async for item in behavior(request, context):
                    yield item
            except BaseException as exc:
                code = _code_of(exc, context)
                await self._abort(exc, method, context)
                raise
            finally:
                if admitted:
                    self.in_flight -= 1
                self._record(method, code, started, context)

        return wrapper

    async def _abort(self, exc: BaseException, method: str, context: Context) -> None:
        """Ends the call with the status for `exc`. abort() raises grpc's AbortError,
        which replaces `exc` (so grpc does not log it again); a call already over
        (cancelled, or aborted by the handler) is left as it is."""
        if isinstance(exc, asyncio.CancelledError | grpc.aio.AbortError):
            return
        error = known_error(exc)
        if error is None:
            log.exception("unhandled error", extra={"method": method})
            error = InternalError("internal error")
        elif not isinstance(exc, RaglineError):
            log.warning("database unreachable", extra={"method": method, "error": repr(exc)})
        await abort_with(context, error)

    def _record(
        self,
        method: str,
        code: grpc.StatusCode,
        started: float,
        context: Context,
    ) -> None:
        elapsed = time.perf_counter() - started
        RPC_REQUESTS.labels(self.service, method, code.name).inc()
        RPC_DURATION.labels(self.service, method).observe(elapsed)
        level = logging.DEBUG if method.startswith(_QUIET_PREFIXES) else logging.INFO
        if not log.isEnabledFor(level):
            return
        log.log(
            level,
            "rpc",
            extra={
                "method": method,
                "code": code.name,
                "duration_ms": round(elapsed * 1000, 2),
                "peer": context.peer(),
            },
        )


def known_error(exc: BaseException) -> RaglineError | None:
    """The status of an exception a handler let escape, when it has one: a RaglineError's
    own, and for the database out of reach (PyMongo's ConnectionFailure: no server
    selected, the connection lost or timed out, wherever in a handler it happened) a 503
    naming the database; None for anything else (an INTERNAL). Found by the fault battery:
    a search reaching the retriever while FerretDB was down answered 500."""
    if isinstance(exc, RaglineError):
        return exc
    if isinstance(exc, ConnectionFailure):
        return UnavailableError(
            "the database is unavailable: retry shortly", reason="DATABASE_UNAVAILABLE"
        )
    return None


def _code_of(exc: BaseException, context: Context) -> grpc.StatusCode:
    """The status code a call ends with when `exc` escapes its handler."""
    if isinstance(exc, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    if isinstance(exc, grpc.aio.AbortError):
        code = context.code()
        return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN
    error = known_error(exc)
    return error.code if error is not None else grpc.StatusCode.INTERNAL


def _begin(context: Context) -> float:
    deadlines.set_deadline(context.time_remaining())
    return time.perf_counter()


class _DeadlineDetails:
    """Gives every outgoing call the caller's remaining time (capped by the default)."""

    def __init__(self, default_timeout: float) -> None:
        self.default_timeout = default_timeout

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        budget = deadlines.remaining(self.default_timeout)
        timeout = budget if details.timeout is None else min(details.timeout, budget)
        return grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=max(timeout, 0.001),
            metadata=details.metadata,
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
        )


# grpc.aio files an interceptor under the first call type it implements, so each call type
# needs its own object.
class _UnaryUnaryDeadline(_DeadlineDetails, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._details(client_call_details), request)


class _UnaryStreamDeadline(_DeadlineDetails, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_stream(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._details(client_call_details), request)


def deadline_interceptors(default_timeout: float) -> list[Any]:
    """Client interceptors that carry the caller's deadline on unary and streaming calls."""
    return [_UnaryUnaryDeadline(default_timeout), _UnaryStreamDeadline(default_timeout)]
