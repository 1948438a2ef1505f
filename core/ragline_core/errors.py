"""One error hierarchy for every service.

Each class knows its gRPC status code and a default UPPER_SNAKE reason. The server
interceptor turns them into `google.rpc.Status` with an `ErrorInfo` detail, which Envoy's
transcoder renders as JSON with the matching HTTP status.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

ERROR_DOMAIN = "ragline.dev"
# Messages echo input (a filter key, a file name): never more than this many characters.
MAX_MESSAGE_CHARS = 1024
QUOTED_CHARS = 64


def quoted(value: str, limit: int = QUOTED_CHARS) -> str:
    """repr() of a value from the request, shortened for an error message."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value)} characters)"


def truncated(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."


class RaglineError(Exception):
    """Base of every error a client may see. The message is shown to the client."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        field: str | None = None,
    ) -> None:
        message = truncated(message)
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.metadata = dict(metadata or {})
        self.field = field

    def to_status(self) -> status_pb2.Status:
        """The rich status sent as `grpc-status-details-bin`."""
        details: list[any_pb2.Any] = []
        info = error_details_pb2.ErrorInfo(
            reason=self.reason, domain=ERROR_DOMAIN, metadata=self.metadata
        )
        packed = any_pb2.Any()
        packed.Pack(info)
        details.append(packed)
        if self.field is not None:
            bad = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=self.field, description=self.message
                    )
                ]
            )
            packed_bad = any_pb2.Any()
            packed_bad.Pack(bad)
            details.append(packed_bad)
        return status_pb2.Status(
            code=_CODE_NUMBERS[self.code], message=self.message, details=details
        )


class InvalidArgumentError(RaglineError):
    """Bad input (HTTP 400)."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"


class FailedPreconditionError(RaglineError):
    """The request is valid but the system is not in a state to run it (HTTP 400)."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class UnauthenticatedError(RaglineError):
    """No or bad credentials (HTTP 401)."""

    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class PermissionDeniedError(RaglineError):
    """Credentials lack the scope (HTTP 403)."""

    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class NotFoundError(RaglineError):
    """The resource does not exist for this caller (HTTP 404)."""

    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"


class ConflictError(RaglineError):
    """The request conflicts with the current state (HTTP 409)."""

    code = grpc.StatusCode.ABORTED
    reason = "CONFLICT"


class AlreadyExistsError(RaglineError):
    """The resource already exists (HTTP 409)."""

    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"


class ResourceExhaustedError(RaglineError):
    """A limit or quota was hit (HTTP 429)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "RESOURCE_EXHAUSTED"


class ServerBusyError(ResourceExhaustedError):
    """The process is at its admission cap (MAX_IN_FLIGHT): retry after `retry_after_s`,
    sent as the retry-after header (HTTP 429)."""

    reason = "SERVER_BUSY"
    retry_after_s = 1


class UnavailableError(RaglineError):
    """A dependency or provider is down (HTTP 503)."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = "UNAVAILABLE"


class DeadlineExceededError(RaglineError):
    """The caller's deadline passed (HTTP 504)."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


class UnimplementedError(RaglineError):
    """The method is part of the contract but not served yet (HTTP 501)."""

    code = grpc.StatusCode.UNIMPLEMENTED
    reason = "UNIMPLEMENTED"


class InternalError(RaglineError):
    """A bug or unexpected failure; the message never carries internals (HTTP 500)."""

    code = grpc.StatusCode.INTERNAL
    reason = "INTERNAL"


_CODE_NUMBERS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: code_pb2.OK,
    grpc.StatusCode.CANCELLED: code_pb2.CANCELLED,
    grpc.StatusCode.UNKNOWN: code_pb2.UNKNOWN,
    grpc.StatusCode.INVALID_ARGUMENT: code_pb2.INVALID_ARGUMENT,
    grpc.StatusCode.DEADLINE_EXCEEDED: code_pb2.DEADLINE_EXCEEDED,
    grpc.StatusCode.NOT_FOUND: code_pb2.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS: code_pb2.ALREADY_EXISTS,
    grpc.StatusCode.PERMISSION_DENIED: code_pb2.PERMISSION_DENIED,
    grpc.StatusCode.RESOURCE_EXHAUSTED: code_pb2.RESOURCE_EXHAUSTED,
    grpc.StatusCode.FAILED_PRECONDITION: code_pb2.FAILED_PRECONDITION,
    grpc.StatusCode.ABORTED: code_pb2.ABORTED,
    grpc.StatusCode.OUT_OF_RANGE: code_pb2.OUT_OF_RANGE,
    grpc.StatusCode.UNIMPLEMENTED: code_pb2.UNIMPLEMENTED,
    grpc.StatusCode.INTERNAL: code_pb2.INTERNAL,
    grpc.StatusCode.UNAVAILABLE: code_pb2.UNAVAILABLE,
    grpc.StatusCode.DATA_LOSS: code_pb2.DATA_LOSS,
    grpc.StatusCode.UNAUTHENTICATED: code_pb2.UNAUTHENTICATED,
}

_BY_CODE: dict[grpc.StatusCode, type[RaglineError]] = {
    cls.code: cls
    for cls in (
        InvalidArgumentError,
        FailedPreconditionError,
        UnauthenticatedError,
        PermissionDeniedError,
        NotFoundError,
        ConflictError,
        AlreadyExistsError,
        ResourceExhaustedError,
        UnavailableError,
        DeadlineExceededError,
        UnimplementedError,
    )
}


def from_rpc_error(exc: grpc.aio.AioRpcError, *, upstream: str) -> RaglineError:
    """Maps an error from a downstream ragline service to our hierarchy.

    Client errors (bad input, not found) keep their message; anything else becomes a
    generic message naming only the upstream, so internals never travel further.
    """
    code = exc.code()
    cls = _BY_CODE.get(code, InternalError)
    if code in (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.PERMISSION_DENIED,
    ):
        return cls(exc.details() or code.name, reason=_reason_of(exc))
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceededError(f"deadline exceeded waiting for {upstream}")
    if code == grpc.StatusCode.UNAVAILABLE:
        # The downstream's reason travels on (e.g. PROVIDER_UNAVAILABLE: a paid provider
        # failed after the embedder's own retries), so a caller can tell it from the
        # upstream itself being down and not retry what was already retried.
        reason = _reason_of(exc) or "UPSTREAM_UNAVAILABLE"
        return UnavailableError(f"{upstream} is unavailable", reason=reason)
    return InternalError(f"{upstream} failed", reason="UPSTREAM_ERROR")


def _reason_of(exc: grpc.aio.AioRpcError) -> str | None:
    """The ErrorInfo reason carried in a downstream error's rich status, if any."""
    for item in exc.trailing_metadata() or ():
        key, value = item[0], item[1]  # type: ignore[index]
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return str(info.reason)
    return None
