"""Envoy's external authorization (envoy.service.auth.v3.Authorization/Check).

Envoy asks before every request that is not public and carries no verified JWT. The route
tells which scope it needs (`scope` in the ext_authz context extensions, set per route by
the gateway config). An allowed request gets the trusted identity headers; a denied one gets
a google.rpc.Status JSON body (REST) or a gRPC status (native gRPC).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from envoy_api.envoy.config.core.v3 import base_pb2 as core_pb
from envoy_api.envoy.service.auth.v3 import external_auth_pb2 as authz_pb
from envoy_api.envoy.service.auth.v3 import external_auth_pb2_grpc as authz_grpc
from envoy_api.envoy.type.v3 import http_status_pb2
from google.protobuf import struct_pb2
from google.rpc import code_pb2, status_pb2

from ragline_auth import scopes as sc
from ragline_auth.failures import FailedAttempts
from ragline_auth.keys import KeyService
from ragline_auth.oidc import OidcError, OidcVerifier
from ragline_auth.roles import scopes_of
from ragline_auth.tokens import Signer, TokenError, looks_like_jwt
from ragline_core import caller, openai_errors
from ragline_core.errors import ERROR_DOMAIN, RaglineError
from ragline_core.identity import KEY_ID_HEADER, TENANT_HEADER
from ragline_core.rpc_types import Context

log = logging.getLogger("ragline.auth.authz")

SCOPES_HEADER = "x-ragline-scopes"
TIER_HEADER = "x-ragline-tier"
AUTH_METHOD_HEADER = "x-ragline-auth"
# Every identity header the gateway sets; client-supplied copies are stripped at the edge.
IDENTITY_HEADERS = (
    caller.IDENTITY_HEADER,
    TENANT_HEADER,
    KEY_ID_HEADER,
    SCOPES_HEADER,
    TIER_HEADER,
    AUTH_METHOD_HEADER,
)


@dataclass(frozen=True)
class Identity:
    key_id: str
    tenant: str
    scopes: tuple[str, ...]
    tier: str
    method: str  # "api_key", "jwt" or "oidc" (a token of the SSO provider)
    # How long the gateway may reuse this answer for the same key (envoy/key_cache.lua).
    cache_ms: int = 0


@dataclass(frozen=True)
class Denial:
    http_status: int
    code: int
    reason: str
    message: str
    retry_after_s: int = 0


def _unauthenticated(reason: str, message: str) -> Denial:
    return Denial(401, code_pb2.UNAUTHENTICATED, reason, message)


def _too_many_failures(wait_s: float) -> Denial:
    seconds = max(1, math.ceil(wait_s))
    return Denial(
        429,
        code_pb2.RESOURCE_EXHAUSTED,
        "TOO_MANY_FAILED_ATTEMPTS",
        f"too many unknown API keys from this address; retry in {seconds} s",
        retry_after_s=seconds,
    )


class Authorizer:
    """Decides one request from its headers and the scope its route needs."""

    def __init__(
        self,
        keys: KeyService,
        signer: Signer,
        gateway_cache_ttl: float = 0.0,
        failures: FailedAttempts | None = None,
        oidc: OidcVerifier | None = None,
    ) -> None:
        self.oidc = oidc
        self.keys = keys
        self.signer = signer
        self.gateway_cache_ttl = gateway_cache_ttl
        self.failures = failures or FailedAttempts(0, 0.0)

    async def decide(
        self, headers: Mapping[str, str], scope: str, source: str = ""
    ) -> Identity | Denial:
        header = headers.get("authorization", "")
        if not header:
            return _unauthenticated(
                "MISSING_CREDENTIALS",
                "missing API key: send the header 'Authorization: Bearer <key>'",
            )
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token:
            return _unauthenticated(
                "MALFORMED_CREDENTIALS",
                "malformed Authorization header: expected 'Bearer <key>'",
            )
        if looks_like_jwt(token) and self.oidc is not None and self.oidc.handles(token):
            identity: Identity | Denial = await self._from_oidc(token)
        elif looks_like_jwt(token):
            identity = self._from_jwt(token)
        else:
            identity = await self._from_key(token, source)
        if isinstance(identity, Denial):
            return identity
        return self._check_scope(identity, scope)

    def _from_jwt(self, token: str) -> Identity | Denial:
        # Normally Envoy's jwt_authn verified the token and this service is not asked; a
        # token seen here failed there (or the JWKS was not fetched yet): verify it here.
        try:
            claims = self.signer.verify(token)
        except TokenError as exc:
            return _unauthenticated("TOKEN_EXPIRED" if exc.expired else "INVALID_TOKEN", str(exc))
        return Identity(claims.key_id, claims.tenant, claims.scopes, claims.tier, "jwt")

    async def _from_oidc(self, token: str) -> Identity | Denial:
        """A token of the SSO provider: its tenant and role from the configured claims."""
        assert self.oidc is not None
        try:
            sso = await self.oidc.verify(token)
        except OidcError as exc:
            code = {401: code_pb2.UNAUTHENTICATED, 403: code_pb2.PERMISSION_DENIED}.get(
                exc.status, code_pb2.UNAVAILABLE
            )
            return Denial(exc.status, code, exc.reason, str(exc))
        return Identity(sso.key_id, sso.tenant, scopes_of(sso.role), sc.DEFAULT_TIER, "oidc")

    async def _from_key(self, token: str, source: str) -> Identity | Denial:
        if len(token) > 256:
            return _unauthenticated("INVALID_API_KEY", "invalid API key")
        wait = self.failures.blocked_for(source)
        if wait is None:
            key = await self.keys.lookup(token)
        else:
            # Over the limit: no store read; only a key this process knows is answered.
            key = self.keys.cached(token)
            if key is None:
                return _too_many_failures(wait)
        if key is None:
            self.failures.record(source)
            return _unauthenticated("INVALID_API_KEY", "invalid API key")
        now = datetime.now(UTC)
        state = key.state(now)
        if state == "revoked":
            return _unauthenticated("KEY_REVOKED", "API key revoked")
        if state == "expired":
            return _unauthenticated("KEY_EXPIRED", "API key expired")
        self.keys.touch(key)
        # Never reused past the key's expiry (nor a rotated key's grace period).
        left = key.seconds_left(now)
        cache_s = self.gateway_cache_ttl if left is None else min(self.gateway_cache_ttl, left)
        cache_ms = int(cache_s * 1000)
        return Identity(key.key_id, key.tenant, key.scopes, key.tier, "api_key", max(cache_ms, 0))

    @staticmethod
    def _check_scope(identity: Identity, scope: str) -> Identity | Denial:
        if scope in ("", sc.AUTHENTICATED):
            return identity
        if scope == sc.API_KEY_ONLY:
            if identity.method == "api_key":
                return identity
            return Denial(
                403,
                code_pb2.PERMISSION_DENIED,
                "API_KEY_REQUIRED",
                "this endpoint needs an API key, not a token",
            )
        if scope in identity.scopes:
            return identity
        return Denial(
            403,
            code_pb2.PERMISSION_DENIED,
            "SCOPE_DENIED",
            f"this key lacks the {scope!r} scope this endpoint needs",
        )


def _header(key: str, value: str) -> core_pb.HeaderValueOption:
    return core_pb.HeaderValueOption(
        header=core_pb.HeaderValue(key=key, value=value),
        append_action=core_pb.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD,
    )


def allowed(identity: Identity) -> authz_pb.CheckResponse:
    # The signed identity the services verify (the plain headers are for the access log);
    # it outlives the longest key-cache reuse (INTERNAL_TOKEN_TTL_S > GATEWAY_KEY_CACHE_TTL).
    token = caller.mint(
        caller.Caller(
            identity.tenant, identity.key_id, identity.scopes, identity.tier, identity.method
        )
    )
    metadata = struct_pb2.Struct()
    metadata.update({"tenant": identity.tenant, "key_id": identity.key_id})
    if identity.cache_ms > 0:
        # What the gateway's key cache needs to answer for this key by itself.
        metadata.update(
            {
                "cache_ms": identity.cache_ms,
                "scopes": ",".join(identity.scopes),
                "tier": identity.tier,
                "identity": token,
            }
        )
    return authz_pb.CheckResponse(
        status=status_pb2.Status(code=code_pb2.OK),
        ok_response=authz_pb.OkHttpResponse(
            headers=[
                _header(TENANT_HEADER, identity.tenant),
                _header(KEY_ID_HEADER, identity.key_id),
                _header(SCOPES_HEADER, ",".join(identity.scopes)),
                _header(TIER_HEADER, identity.tier),
                _header(AUTH_METHOD_HEADER, identity.method),
                _header(caller.IDENTITY_HEADER, token),
            ],
            # Services never see the credential.
            headers_to_remove=["authorization"],
        ),
        dynamic_metadata=metadata,
    )


def denied(denial: Denial, grpc_request: bool, openai: bool = False) -> authz_pb.CheckResponse:
    """The gateway's reply to a refused call: Status JSON for REST, plus OpenAI's `error`
    object on the OpenAI-compatible paths (`openai`), a plain message for gRPC."""
    headers = []
    if denial.http_status == 401:
        headers.append(_header("www-authenticate", 'Bearer realm="ragline"'))
    if denial.retry_after_s:
        headers.append(_header("retry-after", str(denial.retry_after_s)))
    if grpc_request:
        body = denial.message
    else:
        headers.append(_header("content-type", "application/json"))
        reply: dict[str, object] = {
            "code": denial.code,
            "message": denial.message,
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": denial.reason,
                    "domain": ERROR_DOMAIN,
                }
            ],
        }
        if openai:
            reply["error"] = openai_errors.error(denial.http_status, denial.message, denial.reason)
        body = json.dumps(reply)
    return authz_pb.CheckResponse(
        status=status_pb2.Status(code=denial.code, message=denial.message),
        denied_response=authz_pb.DeniedHttpResponse(
            status=http_status_pb2.HttpStatus(code=denial.http_status),
            headers=headers,
            body=body,
        ),
    )


def client_address(headers: Mapping[str, str]) -> str:
    """The client's address as the gateway saw it: the gateway appends its peer to
    x-forwarded-for (use_remote_address), so only the last entry is not the client's say."""
    return headers.get("x-forwarded-for", "").rpartition(",")[2].strip()[:64]


def _is_grpc(headers: Mapping[str, str]) -> bool:
    return headers.get("content-type", "").startswith("application/grpc")


class AuthorizationServicer(authz_grpc.AuthorizationServicer):
    """envoy.service.auth.v3.Authorization on the auth service's port."""

    def __init__(self, authorizer: Authorizer) -> None:
        self.authorizer = authorizer

    async def Check(
        self, request: authz_pb.CheckRequest, context: Context
    ) -> authz_pb.CheckResponse:
        http = request.attributes.request.http
        headers = dict(http.headers)
        scope = request.attributes.context_extensions.get("scope", "")
        source = client_address(headers)
        try:
            decision = await self.authorizer.decide(headers, scope, source)
        except RaglineError as exc:
            # The key store is down: fail closed with 503, never a pass.
            log.warning("authorization failed closed", extra={"reason": exc.reason})
            decision = Denial(503, code_pb2.UNAVAILABLE, exc.reason, exc.message)
        if isinstance(decision, Denial):
            return denied(decision, _is_grpc(headers), openai_errors.is_openai_path(http.path))
        return allowed(decision)
