"""A chat WebSocket's guard. Envoy checks the credential, the rate limit and the usage of
the upgrade only, and a socket lives on; so each message is checked here (docs/chat.md,
"Close codes"):

- Credential: the gateway forwards the one the client presented (CREDENTIAL_HEADER, set by
  envoy/ws_bearer.lua; client copies are stripped at the edge). Before a message is
  answered it is checked again with the auth service, an API key's answer reused for as
  long as the auth service allows (GATEWAY_KEY_CACHE_TTL, counted from when it was asked),
  a JWT's until the token expires. Revoked, expired or unknown: close 4401; the chat scope
  gone: 4403; the auth service down: an AUTH_UNAVAILABLE error event, the message unanswered.
- Rate limit: each message (a cancel excepted) is one hit on the key's chat limit; over
  it, a RATE_LIMITED error event and the socket stays open.
- Usage: each message counts as one request, `WS /api/v1/chat/ws`, with its tokens.
- Lifetime: CHAT_WS_MAX_SESSION_SECONDS (close 4408), or the JWT's expiry (4401).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import grpc
import jwt

from ragline_chat.auth_client import Allowed, AuthClient, Denied, RateLimiter
from ragline_chat.domain import ErrorEvent, Usage
from ragline_chat.usage_log import UsageLog
from ragline_core.errors import (
    PermissionDeniedError,
    RaglineError,
    UnauthenticatedError,
    UnavailableError,
)

CREDENTIAL_HEADER = "x-ragline-ws-credential"
SCOPE = "chat"
CLOSE_CREDENTIAL = 4401
CLOSE_SCOPE = 4403
CLOSE_LIFETIME = 4408
_MAX_REASON_BYTES = 123  # RFC 6455: a close frame's reason


@dataclass(frozen=True)
class Close:
    """How a session ends: a WebSocket close code and a short reason."""

    code: int
    reason: str

    def message(self) -> bytes:
        return self.reason.encode()[:_MAX_REASON_BYTES].decode(errors="ignore").encode()


def _error(denied: Denied) -> RaglineError:
    """A refusal before the upgrade, as the HTTP error the gateway would give."""
    if denied.http_status == 403:
        return PermissionDeniedError(denied.message, reason=denied.reason)
    if denied.http_status >= 500:
        return UnavailableError(denied.message, reason=denied.reason)
    return UnauthenticatedError(denied.message, reason=denied.reason)


def _token_expiry(credential: str) -> float | None:
    """Monotonic time a JWT credential expires (the auth service verified it already)."""
    token = credential.partition(" ")[2].strip()
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return None
    if not isinstance(exp, int | float):
        return None
    return time.monotonic() + (float(exp) - time.time())


class SocketGuards:
    """Opens a guard per socket; shares the clients and the session limit."""

    def __init__(
        self, auth: AuthClient, limiter: RateLimiter, usage: UsageLog, max_session_s: float
    ) -> None:
        self.auth = auth
        self.limiter = limiter
        self.usage = usage
        self.max_session_s = max_session_s

    async def open(self, headers: Mapping[str, str], tenant: str) -> SocketGuard:
        """Checks the forwarded credential before the upgrade (an HTTP error if refused)."""
        credential = headers.get(CREDENTIAL_HEADER, "")
        if not credential:
            raise UnauthenticatedError(
                "the chat WebSocket needs the client's credential: connect through the gateway",
                reason="MISSING_CREDENTIALS",
            )
        asked = time.monotonic()
        answer = await self.auth.check(credential, SCOPE)
        if isinstance(answer, Denied):
            raise _error(answer)
        if answer.tenant != tenant:
            raise UnauthenticatedError(
                "the credential does not match the connection's identity",
                reason="IDENTITY_MISMATCH",
            )
        return SocketGuard(self, credential, answer, asked)


class SocketGuard:
    """One socket: its credential, identity, reuse window and end of life."""

    def __init__(
        self, guards: SocketGuards, credential: str, identity: Allowed, asked: float
    ) -> None:
        self.guards = guards
        self.credential = credential
        self.identity = identity
        now = time.monotonic()
        self.ends_at = now + guards.max_session_s
        self.ending = Close(CLOSE_LIFETIME, "session lifetime reached; reconnect")
        self._token_expires = _token_expiry(credential) if identity.method == "jwt" else None
        if self._token_expires is not None and self._token_expires < self.ends_at:
            self.ends_at = self._token_expires
            self.ending = Close(CLOSE_CREDENTIAL, "TOKEN_EXPIRED: the token has expired")
        self._valid_until = self._reusable_until(identity, asked)

    def _reusable_until(self, identity: Allowed, asked: float) -> float:
        if identity.method == "jwt" and self._token_expires is not None:
            return self._token_expires  # a JWT is not revoked: it expires
        return asked + identity.reuse_s

    def seconds_left(self) -> float:
        return max(0.0, self.ends_at - time.monotonic())

    async def admit(self, charged: bool) -> Close | ErrorEvent | None:
        """Before a message is handled: None to go on, an error event to send instead, or
        how the session ends. `charged`: the message counts against the rate limit."""
        now = time.monotonic()
        if now >= self.ends_at:
            return self.ending
        if now >= self._valid_until:
            answer = await self.guards.auth.check(self.credential, SCOPE)
            if isinstance(answer, Denied):
                if answer.http_status >= 500:
                    code = grpc.StatusCode.UNAVAILABLE.value[0]
                    return ErrorEvent(code, answer.message, answer.reason)
                code = CLOSE_SCOPE if answer.http_status == 403 else CLOSE_CREDENTIAL
                return Close(code, f"{answer.reason}: {answer.message}")
            if answer.tenant != self.identity.tenant:
                return Close(CLOSE_CREDENTIAL, "IDENTITY_MISMATCH: the credential changed hands")
            self.identity = answer
            self._valid_until = self._reusable_until(answer, now)
        if charged:
            over = await self.guards.limiter.take(self.identity.tier, self.identity.key_id)
            if over is not None:
                self.record(429, time.time(), None)
                return ErrorEvent(
                    grpc.StatusCode.RESOURCE_EXHAUSTED.value[0],
                    f"rate limit reached ({over.limit_per_minute} chat requests a minute for "
                    f"this key); retry in {over.retry_after_s} s",
                    "RATE_LIMITED",
                )
        return None

    def record(self, status: int, started: float, usage: Usage | None) -> None:
        """One message's usage (`started`: time.time() when it arrived)."""
        self.guards.usage.record(self.identity.tenant, status, started, usage)
