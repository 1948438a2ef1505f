"""AuthService and AnalyticsService servicers: validate, convert, call, convert back."""

from __future__ import annotations

from datetime import UTC as _UTC
from datetime import datetime

from google.api import httpbody_pb2
from google.protobuf import timestamp_pb2

from ragline.analytics.v1 import analytics_service_pb2 as an_pb
from ragline.analytics.v1 import analytics_service_pb2_grpc as an_grpc
from ragline.auth.v1 import auth_service_pb2 as pb
from ragline.auth.v1 import auth_service_pb2_grpc as pb_grpc
from ragline_auth import scopes as sc
from ragline_auth.docs import DocsPage
from ragline_auth.keys import ApiKey, KeyService
from ragline_auth.tokens import Signer
from ragline_auth.usage import Stats, UsageStore, period
from ragline_core.errors import (
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from ragline_core.identity import current_caller, tenant_of
from ragline_core.rpc_types import Context

_ENVIRONMENTS = {
    pb.KEY_ENVIRONMENT_UNSPECIFIED: "",
    pb.KEY_ENVIRONMENT_LIVE: "live",
    pb.KEY_ENVIRONMENT_TEST: "test",
}
_ENV_ENUM = {"live": pb.KEY_ENVIRONMENT_LIVE, "test": pb.KEY_ENVIRONMENT_TEST}


def caller_scopes(context: Context) -> tuple[str, ...]:
    """Scopes of the verified caller (signed by the auth service at the gateway)."""
    return current_caller(context).scopes


def require_admin(context: Context) -> None:
    """Key management needs the admin scope here too, not only at the gateway: the
    service's port is reachable from inside the cluster."""
    if sc.ADMIN not in caller_scopes(context):
        raise PermissionDeniedError("key management needs the 'admin' scope", reason="SCOPE_DENIED")


def _ts(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def to_proto(key: ApiKey) -> pb.ApiKey:
    now = datetime.now(key.created_at.tzinfo)
    return pb.ApiKey(
        key_id=key.key_id,
        name=key.name,
        tenant=key.tenant,
        scopes=list(key.scopes),
        tier=key.tier,
        environment=_ENV_ENUM.get(key.environment, pb.KEY_ENVIRONMENT_UNSPECIFIED),
        prefix=key.prefix,
        create_time=_ts(key.created_at),
        expire_time=_ts(key.expires_at),
        last_used_time=_ts(key.last_used_at),
        revoke_time=_ts(key.revoked_at),
        replaced_by=key.replaced_by,
        state=_STATE_ENUM.get(key.state(now), pb.API_KEY_STATE_UNSPECIFIED),
    )


_STATE_ENUM = {
    "active": pb.API_KEY_STATE_ACTIVE,
    "expired": pb.API_KEY_STATE_EXPIRED,
    "revoked": pb.API_KEY_STATE_REVOKED,
}


class AuthServicer(pb_grpc.AuthServiceServicer):
    def __init__(
        self, keys: KeyService, signer: Signer, jwt_ttl: int, openapi: bytes, docs_page: DocsPage
    ) -> None:
        self.keys = keys
        self.signer = signer
        self.jwt_ttl = jwt_ttl
        self.openapi = openapi
        self.docs_page = docs_page

    async def CreateApiKey(
        self, request: pb.CreateApiKeyRequest, context: Context
    ) -> pb.CreateApiKeyResponse:
        require_admin(context)
        if request.environment not in _ENVIRONMENTS:
            raise InvalidArgumentError("unknown environment", field="environment")
        new = await self.keys.create(
            request.tenant,
            list(request.scopes),
            name=request.name,
            tier=request.tier,
            environment=_ENVIRONMENTS[request.environment],
            ttl_seconds=request.ttl_seconds,
        )
        return pb.CreateApiKeyResponse(api_key=to_proto(new.record), key=new.plaintext)

    async def ListApiKeys(
        self, request: pb.ListApiKeysRequest, context: Context
    ) -> pb.ListApiKeysResponse:
        require_admin(context)
        keys, token = await self.keys.list(request.tenant, request.page_size, request.page_token)
        return pb.ListApiKeysResponse(api_keys=[to_proto(k) for k in keys], next_page_token=token)

    async def GetApiKey(self, request: pb.GetApiKeyRequest, context: Context) -> pb.ApiKey:
        require_admin(context)
        return to_proto(await self.keys.get(request.key_id))

    async def RotateApiKey(
        self, request: pb.RotateApiKeyRequest, context: Context
    ) -> pb.RotateApiKeyResponse:
        require_admin(context)
        new, old = await self.keys.rotate(request.key_id, request.grace_period_seconds)
        return pb.RotateApiKeyResponse(
            api_key=to_proto(new.record), key=new.plaintext, previous=to_proto(old)
        )

    async def RevokeApiKey(
        self, request: pb.RevokeApiKeyRequest, context: Context
    ) -> pb.RevokeApiKeyResponse:
        require_admin(context)
        return pb.RevokeApiKeyResponse(api_key=to_proto(await self.keys.revoke(request.key_id)))

    async def CreateToken(
        self, request: pb.CreateTokenRequest, context: Context
    ) -> pb.CreateTokenResponse:
        who = current_caller(context)
        key_id = who.key_id
        if not key_id or who.method != "api_key":
            raise UnauthenticatedError("an API key is needed to create a token")
        if request.ttl_seconds < 0:
            raise InvalidArgumentError("ttl_seconds must not be negative", field="ttl_seconds")
        ttl = min(request.ttl_seconds or self.jwt_ttl, self.jwt_ttl)
        key = await self.keys.get(key_id)
        # Read fresh from the database: a token outlives any cached "allowed" for its key.
        now = datetime.now(_UTC)
        state = key.state(now)
        if state != "active":
            raise UnauthenticatedError(f"API key {state}", reason=f"KEY_{state.upper()}")
        left = key.seconds_left(now)
        if left is not None:
            # No token outlives its key (nor a rotated key's grace period).
            ttl = min(ttl, int(left))
            if ttl < 1:
                raise UnauthenticatedError("API key expired", reason="KEY_EXPIRED")
        token, expires_in = self.signer.issue(key, ttl)
        return pb.CreateTokenResponse(
            access_token=token,
            token_type="Bearer",  # noqa: S106 - the OAuth token type, not a secret
            expires_in=expires_in,
            scope=" ".join(key.scopes),
        )

    async def GetJwks(self, request: pb.GetJwksRequest, context: Context) -> httpbody_pb2.HttpBody:
        return httpbody_pb2.HttpBody(content_type="application/json", data=self.signer.jwks())

    async def GetOpenApiDocument(
        self, request: pb.GetOpenApiDocumentRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        return httpbody_pb2.HttpBody(content_type="application/json", data=self.openapi)

    async def GetApiDocs(
        self, request: pb.GetApiDocsRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        # gRPC response headers reach the client as HTTP headers (the transcoder keeps them).
        await context.send_initial_metadata(self.docs_page.headers)
        return httpbody_pb2.HttpBody(
            content_type="text/html; charset=utf-8", data=self.docs_page.body
        )


def _stats(stats: Stats) -> an_pb.UsageStats:
    v = stats.values
    lookups = int(v["cache_lookups"])
    hits = int(v["cache_hits"])
    return an_pb.UsageStats(
        requests=int(v["requests"]),
        errors=int(v["errors"]),
        tokens_in=int(v["tokens_in"]),
        tokens_out=int(v["tokens_out"]),
        cost_usd=round(v["cost_usd"], 8),
        cache_lookups=lookups,
        cache_hits=hits,
        cache_hit_rate=hits / lookups if lookups else 0.0,
        duration_ms=int(v["duration_ms"]),
    )


class AnalyticsServicer(an_grpc.AnalyticsServiceServicer):
    def __init__(self, store: UsageStore) -> None:
        self.store = store

    async def GetUsage(
        self, request: an_pb.GetUsageRequest, context: Context
    ) -> an_pb.GetUsageResponse:
        own = tenant_of(context)
        tenant = request.tenant or own
        if not sc.TENANT_RE.match(tenant):
            raise InvalidArgumentError("tenant is not a valid tenant name", field="tenant")
        if tenant != own and sc.ADMIN not in caller_scopes(context):
            # 404, not 403: whether another tenant exists is not the caller's business.
            raise NotFoundError(f"no usage for tenant {tenant!r}", reason="TENANT_NOT_FOUND")
        if request.granularity not in (
            an_pb.GRANULARITY_UNSPECIFIED,
            an_pb.GRANULARITY_HOUR,
            an_pb.GRANULARITY_DAY,
        ):
            raise InvalidArgumentError("unknown granularity", field="granularity")
        start, end = period(
            request.start_time.ToDatetime(tzinfo=_UTC) if request.HasField("start_time") else None,
            request.end_time.ToDatetime(tzinfo=_UTC) if request.HasField("end_time") else None,
        )
        daily = request.granularity == an_pb.GRANULARITY_DAY
        total, by_endpoint, by_period = await self.store.report(tenant, start, end, daily)
        endpoints = sorted(by_endpoint.items(), key=lambda kv: (-kv[1].values["requests"], kv[0]))
        return an_pb.GetUsageResponse(
            tenant=tenant,
            start_time=_ts(start),
            end_time=_ts(end),
            total=_stats(total),
            endpoints=[an_pb.EndpointUsage(endpoint=e, stats=_stats(s)) for e, s in endpoints],
            series=[
                an_pb.PeriodUsage(start_time=_ts(when), stats=_stats(s))
                for when, s in sorted(by_period.items())
            ],
        )
