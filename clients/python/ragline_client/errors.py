"""One exception hierarchy for both transports, built from the API's `google.rpc.Status`
(the REST error body, or gRPC's `grpc-status-details-bin` trailer) and its details:
`ErrorInfo` (reason, metadata), `BadRequest` (field violations) and `RetryInfo`.

    try:
        client.get_job("nope")
    except NotFoundError as e:
        print(e.reason)            # JOB_NOT_FOUND
    except RateLimitedError as e:
        time.sleep(e.retry_after or 1)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """A request field that was refused and why (`google.rpc.BadRequest.FieldViolation`)."""

    field: str
    description: str
    reason: str = ""


class RaglineError(Exception):
    """Any error the API answered (or a transport failure, `ConnectionFailedError`).

    `code` is the gRPC status code number (`google.rpc.Status.code`), `http_status` the
    REST status (0 over gRPC), `reason` and `metadata` come from `ErrorInfo`.
    """

    grpc_code: int = 2  # UNKNOWN
    default_http_status: int = 500

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        http_status: int = 0,
        reason: str = "",
        domain: str = "",
        metadata: Mapping[str, str] | None = None,
        field_violations: Sequence[FieldViolation] = (),
        retry_after: float | None = None,
        details: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = self.grpc_code if code is None else code
        self.http_status = http_status
        self.reason = reason
        self.domain = domain
        self.metadata: dict[str, str] = dict(metadata or {})
        self.field_violations: list[FieldViolation] = list(field_violations)
        self.retry_after = retry_after
        self.details: list[dict[str, Any]] = [dict(d) for d in details]

    def __str__(self) -> str:
        where = f"HTTP {self.http_status}" if self.http_status else f"gRPC {self.code}"
        reason = f" {self.reason}" if self.reason else ""
        return f"{self.message} ({where}{reason})"


class InvalidArgumentError(RaglineError):
    """A request field is invalid (400); `field_violations` names them."""

    grpc_code = 3
    default_http_status = 400


class FailedPreconditionError(RaglineError):
    grpc_code = 9
    default_http_status = 400


class OutOfRangeError(RaglineError):
    grpc_code = 11
    default_http_status = 400


class UnauthenticatedError(RaglineError):
    """No, an unknown, a revoked or an expired credential (401)."""

    grpc_code = 16
    default_http_status = 401


class PermissionDeniedError(RaglineError):
    """The credential lacks the route's scope (403)."""

    grpc_code = 7
    default_http_status = 403


class NotFoundError(RaglineError):
    """The resource does not exist for this caller (404)."""

    grpc_code = 5
    default_http_status = 404


class AlreadyExistsError(RaglineError):
    grpc_code = 6
    default_http_status = 409


class ConflictError(RaglineError):
    """The request conflicts with the current state (409, gRPC ABORTED)."""

    grpc_code = 10
    default_http_status = 409


class ResourceExhaustedError(RaglineError):
    """A limit was hit (429, or 413 for a body over the cap)."""

    grpc_code = 8
    default_http_status = 429


class RateLimitedError(ResourceExhaustedError):
    """Too many requests (429): `retry_after` is the seconds to wait, when the gateway said."""


class RequestTooLargeError(ResourceExhaustedError):
    """The body is over the gateway's cap (413)."""

    default_http_status = 413


class CancelledError(RaglineError):
    grpc_code = 1
    default_http_status = 499


class DeadlineExceededError(RaglineError):
    """The deadline passed before the service answered (504)."""

    grpc_code = 4
    default_http_status = 504


class UnimplementedError(RaglineError):
    """The method is not served (501), or the path does not serve this method (405)."""

    grpc_code = 12
    default_http_status = 501


class InternalError(RaglineError):
    grpc_code = 13
    default_http_status = 500


class UnavailableError(RaglineError):
    """The service or a dependency is down (503); retried by the client."""

    grpc_code = 14
    default_http_status = 503


class ConnectionFailedError(UnavailableError):
    """The gateway could not be reached or the connection broke (no answer at all)."""


class DataLossError(RaglineError):
    grpc_code = 15
    default_http_status = 500


class UnknownError(RaglineError):
    grpc_code = 2
    default_http_status = 500


_BY_CODE: dict[int, type[RaglineError]] = {
    cls.grpc_code: cls
    for cls in (
        CancelledError,
        UnknownError,
        InvalidArgumentError,
        DeadlineExceededError,
        NotFoundError,
        AlreadyExistsError,
        PermissionDeniedError,
        ResourceExhaustedError,
        FailedPreconditionError,
        ConflictError,
        OutOfRangeError,
        UnimplementedError,
        InternalError,
        UnavailableError,
        DataLossError,
        UnauthenticatedError,
    )
}
_BY_HTTP: dict[int, int] = {
    400: 3,
    401: 16,
    403: 7,
    404: 5,
    405: 12,
    409: 10,
    413: 8,
    429: 8,
    499: 1,
    500: 13,
    501: 12,
    503: 14,
    504: 4,
}
_RATE_REASONS = {"RATE_LIMITED", "TOO_MANY_FAILED_ATTEMPTS", "SPEND_CAP_EXCEEDED"}


def _duration_s(value: Any) -> float | None:
    # google.protobuf.Duration in JSON: "1.500s"; as a dict from protobuf: {"seconds", "nanos"}.
    if isinstance(value, str) and value.endswith("s"):
        try:
            return float(value[:-1])
        except ValueError:
            return None
    if isinstance(value, Mapping):
        return float(value.get("seconds", 0)) + float(value.get("nanos", 0)) / 1e9
    return None


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds (the gateway sends seconds; an HTTP date is not used here)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def from_status(
    status: Mapping[str, Any] | None,
    *,
    http_status: int = 0,
    grpc_code: int | None = None,
    message: str = "",
    retry_after: float | None = None,
) -> RaglineError:
    """The exception for a `google.rpc.Status` in its JSON form (`code`, `message`,
    `details` with `@type`). Either status may be missing: the HTTP status or the gRPC code
    picks the class then."""
    status = status or {}
    code = status.get("code")
    if not isinstance(code, int) or code == 0:
        code = grpc_code if grpc_code is not None else _BY_HTTP.get(http_status, 2)
    text = str(status.get("message") or message or f"HTTP {http_status}")
    reason, domain = "", ""
    metadata: dict[str, str] = {}
    violations: list[FieldViolation] = []
    details = [d for d in status.get("details") or () if isinstance(d, Mapping)]
    for detail in details:
        kind = detail.get("@type", "")
        if kind == ERROR_INFO:
            reason = str(detail.get("reason", ""))
            domain = str(detail.get("domain", ""))
            metadata = {str(k): str(v) for k, v in (detail.get("metadata") or {}).items()}
        elif kind == BAD_REQUEST:
            for v in detail.get("field_violations") or detail.get("fieldViolations") or ():
                violations.append(
                    FieldViolation(
                        field=str(v.get("field", "")),
                        description=str(v.get("description", "")),
                        reason=str(v.get("reason", "")),
                    )
                )
        elif kind == RETRY_INFO and retry_after is None:
            retry_after = _duration_s(detail.get("retry_delay") or detail.get("retryDelay"))
    cls = _BY_CODE.get(code, UnknownError)
    if cls is ResourceExhaustedError:
        if http_status == 413 or reason == "REQUEST_TOO_LARGE":
            cls = RequestTooLargeError
        elif http_status == 429 or reason in _RATE_REASONS or retry_after is not None:
            cls = RateLimitedError
    return cls(
        text,
        code=code,
        http_status=http_status,
        reason=reason,
        domain=domain,
        metadata=metadata,
        field_violations=violations,
        retry_after=retry_after,
        details=details,
    )


__all__ = [
    "AlreadyExistsError",
    "CancelledError",
    "ConflictError",
    "ConnectionFailedError",
    "DataLossError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "FieldViolation",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "RaglineError",
    "RateLimitedError",
    "RequestTooLargeError",
    "ResourceExhaustedError",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "UnknownError",
    "from_status",
]
