"""Exit codes by error class, and the one line an error prints on stderr.

Scripts branch on the exit code, people read the line: it names the class, the API's
message, the reason (`ErrorInfo.reason`) and each refused field (`BadRequest`)."""

from __future__ import annotations

import enum

from ragline_client.errors import (
    AlreadyExistsError,
    CancelledError,
    ConflictError,
    ConnectionFailedError,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    OutOfRangeError,
    PermissionDeniedError,
    RaglineError,
    RequestTooLargeError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
)


class Exit(enum.IntEnum):
    """The CLI's exit codes (documented in clients/python/README.md, "Exit codes")."""

    OK = 0
    UNEXPECTED = 1  # a 500 or an error of no class below
    USAGE = 2  # a bad command line (click's own code for usage errors)
    AUTH = 3  # 401 no/unknown/expired credential, 403 missing scope
    NOT_FOUND = 4  # 404
    INVALID = 5  # 400 invalid argument, 409 conflict, 413 too large
    LIMITED = 6  # 429 rate limit, quota, spend cap
    UNAVAILABLE = 7  # 503 (also: nothing answered), 504 deadline, cancelled
    INGEST_FAILED = 8  # ingest ran, but documents (or the job) failed
    INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT


# Most specific first: RequestTooLargeError is a ResourceExhaustedError.
_CLASSES: tuple[tuple[tuple[type[RaglineError], ...], Exit, str], ...] = (
    ((UnauthenticatedError,), Exit.AUTH, "unauthenticated"),
    ((PermissionDeniedError,), Exit.AUTH, "permission denied"),
    ((NotFoundError,), Exit.NOT_FOUND, "not found"),
    ((RequestTooLargeError,), Exit.INVALID, "too large"),
    (
        (InvalidArgumentError, FailedPreconditionError, OutOfRangeError),
        Exit.INVALID,
        "invalid argument",
    ),
    ((ConflictError, AlreadyExistsError), Exit.INVALID, "conflict"),
    ((ResourceExhaustedError,), Exit.LIMITED, "rate limited"),
    ((DeadlineExceededError,), Exit.UNAVAILABLE, "deadline exceeded"),
    ((UnavailableError, CancelledError), Exit.UNAVAILABLE, "unavailable"),
)


def exit_code(err: RaglineError) -> Exit:
    return _classify(err)[0]


def _classify(err: RaglineError) -> tuple[Exit, str]:
    for classes, code, label in _CLASSES:
        if isinstance(err, classes):
            return code, label
    return Exit.UNEXPECTED, "error"


def error_line(err: RaglineError) -> str:
    """`error: not found: job no-such-job does not exist [JOB_NOT_FOUND, HTTP 404]`."""
    _, label = _classify(err)
    parts = [err.message.rstrip(".")]
    for v in err.field_violations:
        # The field and why, unless the message already says exactly that.
        if v.description and v.description not in err.message:
            parts.append(f"{v.field}: {v.description}")
        elif v.field and v.field not in err.message:
            parts.append(f"field {v.field}")
    where = [err.reason] if err.reason else []
    if not isinstance(err, ConnectionFailedError):  # nothing answered: no status to show
        where.append(f"HTTP {err.http_status}" if err.http_status else f"gRPC code {err.code}")
    if err.retry_after is not None:
        where.append(f"retry after {err.retry_after:g}s")
    tail = f" [{', '.join(where)}]" if where else ""
    return f"error: {label}: {'; '.join(parts)}{tail}"
