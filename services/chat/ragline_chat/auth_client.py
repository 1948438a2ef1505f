"""What the chat service asks about a WebSocket's caller while the socket is open (Envoy
checked the credential only at the upgrade):

- `AuthClient.check`: the auth service's ext_authz Check, the API Envoy itself calls, with
  the credential the client presented: who it is, or why not, and how long the answer may
  be reused (the gateway's key-cache rule).
- `RateLimiter.take`: one hit on the key's global limit in envoyproxy/ratelimit, with the
  descriptors the gateway sends for a request (tier, endpoint group, key id), so messages
  and requests share one budget.

Every such call goes through this module, so identity or transport security on them
changes in one place.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import grpc
from envoy_api.envoy.service.auth.v3 import attribute_context_pb2 as attr_pb
from envoy_api.envoy.service.auth.v3 import external_auth_pb2 as authz_pb
from envoy_api.envoy.service.auth.v3 import external_auth_pb2_grpc as authz_grpc
from envoy_api.envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc

log = logging.getLogger("ragline.chat.auth")

# The gateway's rate-limit domain and the chat endpoint group (ragline_stack.gateway:
# RATE_LIMIT_DOMAIN, the route scope "chat"); tests/unit/test_ws_guard.py keeps them equal.
RATE_LIMIT_DOMAIN = "ragline"
CHAT_GROUP = "chat"
# Envoy's own limits for these calls: ext_authz 2 s, the rate-limit filter 0.5 s.
CHECK_TIMEOUT_S = 2.0
LIMIT_TIMEOUT_S = 0.5


@dataclass(frozen=True)
class Allowed:
    tenant: str
    key_id: str
    scopes: tuple[str, ...]
    tier: str
    method: str  # "api_key" or "jwt"
    # Seconds the auth service lets this answer be reused (0: ask every time).
    reuse_s: float


@dataclass(frozen=True)
class Denied:
    http_status: int  # 401, 403, or 503 when the auth service could not answer
    reason: str
    message: str


UNAVAILABLE = Denied(
    503, "AUTH_UNAVAILABLE", "authentication service unavailable; try again shortly"
)


class AuthClient:
    """The auth service's Authorization/Check for a credential and a scope."""

    def __init__(self, channel: grpc.aio.Channel, path: str) -> None:
        self._check = authz_grpc.AuthorizationStub(channel).Check
        # The route the decision is for, as Envoy would report it.
        self.path = path

    async def check(self, credential: str, scope: str) -> Allowed | Denied:
        http = attr_pb.AttributeContext.HttpRequest(
            method="GET",
            path=self.path,
            headers={"authorization": credential, "content-type": "application/json"},
        )
        request = authz_pb.CheckRequest(
            attributes=attr_pb.AttributeContext(
                request=attr_pb.AttributeContext.Request(http=http),
                context_extensions={"scope": scope},
            )
        )
        try:
            reply = await self._check(request, timeout=CHECK_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            log.warning("credential re-check failed", extra={"code": exc.code().name})
            return UNAVAILABLE
        if reply.status.code != 0:
            return _denied(reply)
        headers = {h.header.key: h.header.value for h in reply.ok_response.headers}
        cache_ms = reply.dynamic_metadata.fields.get("cache_ms")
        return Allowed(
            tenant=headers.get("x-ragline-tenant", ""),
            key_id=headers.get("x-ragline-key-id", ""),
            scopes=tuple(s for s in headers.get("x-ragline-scopes", "").split(",") if s),
            tier=headers.get("x-ragline-tier", ""),
            method=headers.get("x-ragline-auth", ""),
            reuse_s=cache_ms.number_value / 1000 if cache_ms is not None else 0.0,
        )


def _denied(reply: authz_pb.CheckResponse) -> Denied:
    status = reply.denied_response.status.code or 401
    if status >= 500:
        return UNAVAILABLE
    message, reason = reply.status.message, "UNAUTHENTICATED" if status == 401 else "SCOPE_DENIED"
    try:
        body = json.loads(reply.denied_response.body)
        message = str(body.get("message") or message)
        reason = str(body["details"][0]["reason"])
    except (ValueError, KeyError, IndexError, TypeError):
        pass
    return Denied(status, reason, message)


@dataclass(frozen=True)
class OverLimit:
    limit_per_minute: int
    retry_after_s: int


class RateLimiter:
    """One hit per message on envoyproxy/ratelimit; None: no limiter configured."""

    def __init__(self, channel: grpc.aio.Channel | None) -> None:
        self._should = (
            rls_pb2_grpc.RateLimitServiceStub(channel).ShouldRateLimit if channel else None
        )

    async def take(self, tier: str, key_id: str) -> OverLimit | None:
        if self._should is None or not tier or not key_id:
            return None
        entry = rls_pb2.RateLimitDescriptor.Entry
        request = rls_pb2.RateLimitRequest(
            domain=RATE_LIMIT_DOMAIN,
            descriptors=[
                rls_pb2.RateLimitDescriptor(
                    entries=[
                        entry(key="tier", value=tier),
                        entry(key="endpoint", value=CHAT_GROUP),
                        entry(key="key_id", value=key_id),
                    ]
                )
            ],
            hits_addend=1,
        )
        try:
            reply = await self._should(request, timeout=LIMIT_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            # As the gateway does (failure_mode_deny off): the limiter down serves.
            log.warning("rate limiter unavailable", extra={"code": exc.code().name})
            return None
        if reply.overall_code != rls_pb2.RateLimitResponse.OVER_LIMIT:
            return None
        status = reply.statuses[0] if reply.statuses else None
        return OverLimit(
            status.current_limit.requests_per_unit if status else 0,
            max(1, int(status.duration_until_reset.seconds)) if status else 60,
        )
