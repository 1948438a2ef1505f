"""OpenAI's error shape on the OpenAI-compatible `/v1/*` routes.

Every error there carries `{"error": {"message", "type", "code", "param"}}` (what the
`openai` SDKs read) next to the google.rpc.Status fields the rest of the API uses (`code`,
`message`, `details`), so both kinds of client find what they parse. The chat service's
HTTP edge, the auth service's denials and the gateway's own replies all use this module.
"""

from __future__ import annotations

from typing import Any

# The paths that answer in OpenAI's shape (the gateway routes them to chat's HTTP edge).
PATH_PREFIX = "/v1/"

# OpenAI's `type` by HTTP status (the SDKs choose their exception class by the status).
TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    431: "invalid_request_error",
    501: "api_error",
    503: "service_unavailable",
    504: "timeout_error",
}


def error_type(http_status: int) -> str:
    return TYPES.get(http_status, "api_error")


def error(http_status: int, message: str, code: str, param: str | None = None) -> dict[str, Any]:
    """The `error` object of an OpenAI error body."""
    return {"message": message, "type": error_type(http_status), "code": code, "param": param}


def is_openai_path(path: str) -> bool:
    return path.startswith(PATH_PREFIX)
