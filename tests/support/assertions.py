"""Checks every error response must pass."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import OPENAI_TEST_KEY, VOYAGE_TEST_KEY

FORBIDDEN_IN_ERRORS = (
    "Traceback",
    'File "',
    "mongodb://",
    "redis://",
    OPENAI_TEST_KEY,
    VOYAGE_TEST_KEY,
    "pymongo",
    "grpc._cython",
)


def error_body(response: httpx.Response, status: int) -> dict[str, Any]:
    """Asserts a google.rpc.Status JSON error with `status`; returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body: dict[str, Any] = response.json()
    assert isinstance(body.get("code"), int) and body["code"] != 0, body
    assert isinstance(body.get("message"), str) and body["message"], body
    for leak in FORBIDDEN_IN_ERRORS:
        assert leak not in response.text, f"{leak!r} leaked: {response.text}"
    return body


def reason_of(body: dict[str, Any]) -> str:
    for detail in body.get("details", []):
        if detail.get("@type", "").endswith("google.rpc.ErrorInfo"):
            return str(detail["reason"])
    raise AssertionError(f"no ErrorInfo in {body}")
