"""SystemService.GetHealth: the deployment's health as one answer.

Every service serves it, so the gateway can route `/health` to any that is up. It checks
the database, Redis and each service's gRPC health (plus named sub-components such as
model providers) and fails with UNAVAILABLE (HTTP 503) when something needed is down.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pymongo import AsyncMongoClient

from ragline.system.v1 import system_service_pb2, system_service_pb2_grpc
from ragline_core.errors import UnavailableError
from ragline_core.rpc_types import Context

SERVICES = ("embedder", "retriever", "chat", "ingest", "auth")
SERVING = "SERVING"
NOT_SERVING = "NOT_SERVING"
# A component that is optional and switched off (e.g. a paid provider without a key).
NOT_CONFIGURED = "NOT_CONFIGURED"

# Sub-components a service reports through gRPC health under these names.
PROVIDER_HEALTH_NAMES = {
    "embedder": ("provider.local", "provider.openai", "provider.voyage"),
}

_CHECK_TIMEOUT = 1.5


def this_process() -> str:
    """`{host}:{pid}`: which replica (and which worker process of it) reports something.
    Called each time, not cached at import: worker processes fork after it."""
    return f"{socket.gethostname()}:{os.getpid()}"


class HealthChecker:
    """Checks every component concurrently with a short timeout each."""

    def __init__(
        self,
        mongo: AsyncMongoClient[dict[str, Any]],
        redis: aioredis.Redis,
        channels: Mapping[str, grpc.aio.Channel],
        version: str,
    ) -> None:
        self.mongo = mongo
        self.redis = redis
        self.channels = channels
        self.version = version

    async def check(self) -> dict[str, str]:
        checks: dict[str, Callable[[], Awaitable[str]]] = {
            "mongodb": self._mongo,
            "redis": self._redis,
        }
        for service, channel in self.channels.items():
            checks[service] = _grpc_check(channel, "")
            for name in PROVIDER_HEALTH_NAMES.get(service, ()):
                checks[f"{service}.{name}"] = _grpc_check(channel, name)
        names = list(checks)
        results = await asyncio.gather(*(_guarded(checks[n]) for n in names))
        return dict(zip(names, results, strict=True))

    async def _mongo(self) -> str:
        await self.mongo.admin.command("ping")
        return SERVING

    async def _redis(self) -> str:
        await self.redis.ping()
        return SERVING


def _grpc_check(channel: grpc.aio.Channel, name: str) -> Callable[[], Awaitable[str]]:
    stub = health_pb2_grpc.HealthStub(channel)

    async def check() -> str:
        try:
            reply = await stub.Check(
                health_pb2.HealthCheckRequest(service=name), timeout=_CHECK_TIMEOUT
            )
        except grpc.aio.AioRpcError as exc:
            if name and exc.code() == grpc.StatusCode.NOT_FOUND:
                return NOT_CONFIGURED
            raise
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    return check


async def _guarded(check: Callable[[], Awaitable[str]]) -> str:
    try:
        return await asyncio.wait_for(check(), _CHECK_TIMEOUT)
    except Exception:
        return NOT_SERVING


def overall(components: Mapping[str, str]) -> str:
    ok = all(state in (SERVING, NOT_CONFIGURED) for state in components.values())
    return SERVING if ok else NOT_SERVING


class SystemServicer(system_service_pb2_grpc.SystemServiceServicer):
    """Thin servicer over HealthChecker."""

    def __init__(self, checker: HealthChecker) -> None:
        self.checker = checker

    async def GetHealth(
        self, request: system_service_pb2.GetHealthRequest, context: Context
    ) -> system_service_pb2.GetHealthResponse:
        components = await self.checker.check()
        status = overall(components)
        if status != SERVING:
            down = sorted(n for n, s in components.items() if s not in (SERVING, NOT_CONFIGURED))
            raise UnavailableError(
                "unhealthy: " + ", ".join(down), reason="UNHEALTHY", metadata=components
            )
        return system_service_pb2.GetHealthResponse(
            status=status, components=components, version=self.checker.version
        )
