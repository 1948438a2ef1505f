"""Signed identities for tests that call a service's port directly, as the gateway (or
another service) would: the session stack verifies them with TEST_INTERNAL_KEY."""

from __future__ import annotations

import secrets
from typing import Any

import grpc

from ragline_core.caller import IDENTITY_HEADER, Caller, InternalTokens

# INTERNAL_TOKEN_KEYS of the session stack (tests/conftest.py).
TEST_INTERNAL_KEY = secrets.token_urlsafe(48)
ALL_SCOPES = ("embeddings", "search", "chat", "ingest", "analytics", "admin")
# Long enough for a whole test session: module-level metadata is minted once.
_TTL_S = 6 * 3600


def as_tenant(
    tenant: str,
    scopes: tuple[str, ...] = ALL_SCOPES,
    *,
    key_id: str = "test-caller",
    method: str = "api_key",
    key: str = TEST_INTERNAL_KEY,
) -> tuple[tuple[str, str], ...]:
    """gRPC metadata that identifies the caller as `tenant`."""
    token = InternalTokens([key]).mint(Caller(tenant, key_id, scopes, "standard", method), _TTL_S)
    return ((IDENTITY_HEADER, token),)


class _WithIdentity:
    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.metadata = metadata

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = list(details.metadata or ())
        if not any(k == IDENTITY_HEADER for k, _ in metadata):
            metadata += self.metadata
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )


class _Unary(_WithIdentity, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _Stream(_WithIdentity, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


def identity_channel(
    addr: str, tenant: str = "dev-1", scopes: tuple[str, ...] = ALL_SCOPES
) -> grpc.aio.Channel:
    """A channel straight to a service whose calls carry `tenant`'s signed identity
    (unless a call brings its own)."""
    metadata = as_tenant(tenant, scopes)
    return grpc.aio.insecure_channel(addr, interceptors=[_Unary(metadata), _Stream(metadata)])
