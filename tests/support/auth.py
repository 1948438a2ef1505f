"""Credentials for tests: the development keys and a gRPC interceptor that sends one."""

from __future__ import annotations

from typing import Any

import grpc

# VALID_API_KEYS defaults: key i belongs to tenant "dev-<i>" with every scope.
DEV_KEY = "dev-key-1"
DEV_KEY_2 = "dev-key-2"
DEV_TENANT = "dev-1"
DEV_TENANT_2 = "dev-2"


class _BearerDetails:
    def __init__(self, token: str) -> None:
        self.token = token

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = list(details.metadata or [])
        if not any(k == "authorization" for k, _ in metadata):
            metadata.append(("authorization", f"Bearer {self.token}"))
        return grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=details.timeout,
            metadata=grpc.aio.Metadata(*metadata),
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
        )


# grpc.aio files an interceptor under the first call type it implements: one per type.
class _Bearer(_BearerDetails, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _BearerStream(_BearerDetails, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


def bearer_interceptors(token: str) -> list[Any]:
    """Interceptors for grpc.aio channels that send `Authorization: Bearer <token>`."""
    # grpc.aio files an interceptor under the first call type it implements: one object
    # per call type.
    return [_Bearer(token), _BearerStream(token)]
