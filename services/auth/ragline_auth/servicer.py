"""AuthService and AnalyticsService servicers: validate, convert, call, convert back."""

from __future__ import annotations

from datetime import UTC as _UTC
from datetime import datetime, timedelta

from google.api import httpbody_pb2
from google.protobuf import timestamp_pb2

from ragline.analytics.v1 import analytics_service_pb2 as an_pb
from ragline.analytics.v1 import analytics_service_pb2_grpc as an_grpc
from ragline.auth.v1 import auth_service_pb2 as pb
from ragline.auth.v1 import auth_service_pb2_grpc as pb_grpc
from ragline_auth import roles
from ragline_auth import scopes as sc
from ragline_auth.admin import Admin
from ragline_auth.audit import AuditEvent, Origin
from ragline_auth.authz import client_address
from ragline_auth.configuration import Configuration, ConfigurationReader
from ragline_auth.directory import Member
from ragline_auth.docs import DocsPage
from ragline_auth.keys import ApiKey, KeyService
from ragline_auth.oauth2 import ClientCredentials
from ragline_auth.tokens import Signer
from ragline_auth.usage import Stats, UsageStore, percentile_ms, period
from ragline_core.errors import (
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from ragline_core.identity import current_caller, tenant_of
from ragline_core.rpc_types import Context
from ragline_core.spend import SpendGuard

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


def origin_of(context: Context) -> Origin:
    """Where the request came from: the gateway's x-forwarded-for (its last entry, which
    Envoy appends), else the peer of a direct call."""
    metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
    address = client_address(metadata)
    if not address:
        peer = context.peer() or ""
        address = peer.split(":", 1)[1].rsplit(":", 1)[0] if ":" in peer else peer
    return Origin(
        source_ip=address.strip("[]")[:64],
        user_agent=metadata.get("user-agent", "")[:256],
        request_id=metadata.get("x-request-id", "")[:128],
    )


_ROLE_ENUM = {
    roles.OWNER: pb.ROLE_OWNER,
    roles.ADMIN: pb.ROLE_ADMIN,
    roles.MEMBER: pb.ROLE_MEMBER,
    roles.VIEWER: pb.ROLE_VIEWER,
}
_ROLE_OF = {v: k for k, v in _ROLE_ENUM.items()}


def role_of(value: int) -> str:
    """The role of a request's enum; "" (a 400 from the domain) when unset or unknown."""
    return str(_ROLE_OF.get(value, ""))  # type: ignore[call-overload]


def user_to_proto(user: Member) -> pb.User:
    return pb.User(
        name=user.name,
        tenant=user.tenant,
        email=user.email,
        role=_ROLE_ENUM.get(user.role, pb.ROLE_UNSPECIFIED),
        display_name=user.display_name,
        state=pb.USER_STATE_ACTIVE if user.active else pb.USER_STATE_DELETED,
        scopes=list(user.scopes),
        create_time=_ts(user.created_at),
        update_time=_ts(user.updated_at),
        delete_time=_ts(user.deleted_at),
    )


def account_to_proto(account: Member) -> pb.ServiceAccount:
    return pb.ServiceAccount(
        name=account.name,
        tenant=account.tenant,
        display_name=account.display_name,
        role=_ROLE_ENUM.get(account.role, pb.ROLE_UNSPECIFIED),
        client_id=account.id,
        state=(
            pb.SERVICE_ACCOUNT_STATE_ACTIVE if account.active else pb.SERVICE_ACCOUNT_STATE_DELETED
        ),
        scopes=list(account.scopes),
        create_time=_ts(account.created_at),
        delete_time=_ts(account.deleted_at),
    )


def event_to_proto(event: AuditEvent) -> pb.AuditEvent:
    return pb.AuditEvent(
        name=f"auditEvents/{event.id}",
        tenant=event.tenant,
        actor=event.actor,
        actor_credential=event.actor_credential,
        action=event.action,
        target=event.target,
        create_time=_ts(event.created_at),
        source_ip=event.origin.source_ip,
        user_agent=event.origin.user_agent,
        request_id=event.origin.request_id,
        details=event.details,
    )


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
        owner=key.owner,
    )


_STATE_ENUM = {
    "active": pb.API_KEY_STATE_ACTIVE,
    "expired": pb.API_KEY_STATE_EXPIRED,
    "revoked": pb.API_KEY_STATE_REVOKED,
}


def configuration_to_proto(config: Configuration) -> pb.Configuration:
    out = pb.Configuration()
    for svc in config.services:
        item = out.services.add(service=svc.service, instance=svc.instance, version=svc.version)
        if svc.reported_at is not None:
            item.report_time.FromDatetime(svc.reported_at)
        for s in svc.settings:
            item.settings.add(name=s.name, value=s.value, redacted=s.redacted)
    for tier, groups in config.rate_limit_tiers.items():
        limits = [
            pb.RateLimit(endpoint_group=group, requests_per_minute=n) for group, n in groups.items()
        ]
        out.rate_limit_tiers.add(tier=tier, limits=limits)
    return out


class AuthServicer(pb_grpc.AuthServiceServicer):
    def __init__(
        self,
        keys: KeyService,
        signer: Signer,
        jwt_ttl: int,
        openapi: bytes,
        docs_page: DocsPage,
        admin: Admin,
        client_credentials: ClientCredentials,
        configuration: ConfigurationReader,
    ) -> None:
        self.configuration = configuration
        self.admin = admin
        self.client_credentials = client_credentials
        self.keys = keys
        self.signer = signer
        self.jwt_ttl = jwt_ttl
        self.openapi = openapi
        self.docs_page = docs_page

    async def CreateApiKey(
        self, request: pb.CreateApiKeyRequest, context: Context
    ) -> pb.CreateApiKeyResponse:
        actor = await self.admin.actor(current_caller(context))
        if request.environment not in _ENVIRONMENTS:
            raise InvalidArgumentError("unknown environment", field="environment")
        new = await self.admin.create_key(
            actor,
            origin_of(context),
            tenant=request.tenant,
            scopes=list(request.scopes),
            owner=request.owner,
            name=request.name,
            tier=request.tier,
            environment=_ENVIRONMENTS[request.environment],
            ttl_seconds=request.ttl_seconds,
        )
        return pb.CreateApiKeyResponse(api_key=to_proto(new.record), key=new.plaintext)

    async def ListApiKeys(
        self, request: pb.ListApiKeysRequest, context: Context
    ) -> pb.ListApiKeysResponse:
        actor = await self.admin.actor(current_caller(context))
        keys, token = await self.admin.list_keys(
            actor, request.tenant, request.owner, request.page_size, request.page_token
        )
        return pb.ListApiKeysResponse(api_keys=[to_proto(k) for k in keys], next_page_token=token)

    async def GetApiKey(self, request: pb.GetApiKeyRequest, context: Context) -> pb.ApiKey:
        actor = await self.admin.actor(current_caller(context))
        return to_proto(await self.admin.visible_key(actor, request.key_id))

    async def RotateApiKey(
        self, request: pb.RotateApiKeyRequest, context: Context
    ) -> pb.RotateApiKeyResponse:
        actor = await self.admin.actor(current_caller(context))
        new, old = await self.admin.rotate_key(
            actor, origin_of(context), request.key_id, request.grace_period_seconds
        )
        return pb.RotateApiKeyResponse(
            api_key=to_proto(new.record), key=new.plaintext, previous=to_proto(old)
        )

    async def RevokeApiKey(
        self, request: pb.RevokeApiKeyRequest, context: Context
    ) -> pb.RevokeApiKeyResponse:
        actor = await self.admin.actor(current_caller(context))
        revoked = await self.admin.revoke_key(actor, origin_of(context), request.key_id)
        return pb.RevokeApiKeyResponse(api_key=to_proto(revoked))

    # -- users, service accounts, audit ----------------------------------------------------
    async def CreateUser(self, request: pb.CreateUserRequest, context: Context) -> pb.User:
        actor = await self.admin.actor(current_caller(context))
        user = request.user
        created = await self.admin.create_user(
            actor,
            origin_of(context),
            user.tenant,
            user.email,
            role_of(user.role),
            user.display_name,
        )
        return user_to_proto(created)

    async def GetUser(self, request: pb.GetUserRequest, context: Context) -> pb.User:
        actor = await self.admin.actor(current_caller(context))
        return user_to_proto(await self.admin.visible_member(actor, request.name, "user"))

    async def ListUsers(
        self, request: pb.ListUsersRequest, context: Context
    ) -> pb.ListUsersResponse:
        actor = await self.admin.actor(current_caller(context))
        users, token = await self.admin.list_users(
            actor,
            request.tenant,
            request.filter,
            request.show_deleted,
            request.page_size,
            request.page_token,
        )
        return pb.ListUsersResponse(users=[user_to_proto(u) for u in users], next_page_token=token)

    async def UpdateUser(self, request: pb.UpdateUserRequest, context: Context) -> pb.User:
        actor = await self.admin.actor(current_caller(context))
        paths = set(request.update_mask.paths) if request.HasField("update_mask") else set()
        unknown = paths - {"role", "display_name"}
        if unknown:
            raise InvalidArgumentError(
                f"update_mask names {', '.join(sorted(unknown))}; only role and display_name "
                "can change",
                reason="INVALID_UPDATE_MASK",
                field="update_mask",
            )
        every = not paths
        role = None
        if "role" in paths or (every and request.user.role != pb.ROLE_UNSPECIFIED):
            role = role_of(request.user.role)
            if not role:
                raise InvalidArgumentError(
                    "user.role must be ROLE_OWNER, ROLE_ADMIN, ROLE_MEMBER or ROLE_VIEWER",
                    reason="INVALID_ROLE",
                    field="user.role",
                )
        display_name = request.user.display_name if ("display_name" in paths or every) else None
        if every and not request.user.display_name:
            display_name = None
        updated = await self.admin.update_user(
            actor, origin_of(context), request.user.name, role, display_name
        )
        return user_to_proto(updated)

    async def DeleteUser(self, request: pb.DeleteUserRequest, context: Context) -> pb.User:
        actor = await self.admin.actor(current_caller(context))
        deleted = await self.admin.delete_member(actor, origin_of(context), request.name, "user")
        return user_to_proto(deleted)

    async def CreateServiceAccount(
        self, request: pb.CreateServiceAccountRequest, context: Context
    ) -> pb.CreateServiceAccountResponse:
        actor = await self.admin.actor(current_caller(context))
        account = request.service_account
        created, secret = await self.admin.create_account(
            actor, origin_of(context), account.tenant, role_of(account.role), account.display_name
        )
        return pb.CreateServiceAccountResponse(
            service_account=account_to_proto(created), client_secret=secret
        )

    async def GetServiceAccount(
        self, request: pb.GetServiceAccountRequest, context: Context
    ) -> pb.ServiceAccount:
        actor = await self.admin.actor(current_caller(context))
        member = await self.admin.visible_member(actor, request.name, "service_account")
        return account_to_proto(member)

    async def ListServiceAccounts(
        self, request: pb.ListServiceAccountsRequest, context: Context
    ) -> pb.ListServiceAccountsResponse:
        actor = await self.admin.actor(current_caller(context))
        accounts, token = await self.admin.list_accounts(
            actor, request.tenant, request.show_deleted, request.page_size, request.page_token
        )
        return pb.ListServiceAccountsResponse(
            service_accounts=[account_to_proto(a) for a in accounts], next_page_token=token
        )

    async def DeleteServiceAccount(
        self, request: pb.DeleteServiceAccountRequest, context: Context
    ) -> pb.ServiceAccount:
        actor = await self.admin.actor(current_caller(context))
        deleted = await self.admin.delete_member(
            actor, origin_of(context), request.name, "service_account"
        )
        return account_to_proto(deleted)

    async def RotateServiceAccountSecret(
        self, request: pb.RotateServiceAccountSecretRequest, context: Context
    ) -> pb.RotateServiceAccountSecretResponse:
        actor = await self.admin.actor(current_caller(context))
        rotated, secret = await self.admin.rotate_secret(
            actor, origin_of(context), request.name, request.grace_period_seconds
        )
        return pb.RotateServiceAccountSecretResponse(
            service_account=account_to_proto(rotated),
            client_secret=secret,
            previous_secret_expire_time=_ts(rotated.previous_expires_at),
        )

    async def ListAuditEvents(
        self, request: pb.ListAuditEventsRequest, context: Context
    ) -> pb.ListAuditEventsResponse:
        actor = await self.admin.actor(current_caller(context))
        events, token = await self.admin.list_audit(
            actor, request.tenant, request.filter, request.page_size, request.page_token
        )
        return pb.ListAuditEventsResponse(
            audit_events=[event_to_proto(e) for e in events], next_page_token=token
        )

    async def CreateOAuth2Token(
        self, request: pb.CreateOAuth2TokenRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        body = await self.client_credentials.token(
            request.form.content_type,
            request.form.data,
            metadata.get("authorization", ""),
            origin_of(context),
        )
        # RFC 6749 section 5.1: the reply must not be cached.
        await context.send_initial_metadata((("cache-control", "no-store"), ("pragma", "no-cache")))
        return httpbody_pb2.HttpBody(content_type="application/json", data=body)

    async def GetCaller(self, request: pb.GetCallerRequest, context: Context) -> pb.Caller:
        who = current_caller(context)
        return pb.Caller(
            tenant=who.tenant,
            subject=who.key_id,
            scopes=list(who.scopes),
            tier=who.tier,
            credential_type=who.method,
        )

    async def GetConfiguration(
        self, request: pb.GetConfigurationRequest, context: Context
    ) -> pb.Configuration:
        require_admin(context)
        return configuration_to_proto(await self.configuration.read())

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
        p95_latency_ms=round(percentile_ms(v, 0.95), 1),
    )


class AnalyticsServicer(an_grpc.AnalyticsServiceServicer):
    def __init__(self, store: UsageStore, admin: Admin, spend: SpendGuard) -> None:
        self.store = store
        self.admin = admin
        self.spend = spend

    async def GetUsage(
        self, request: an_pb.GetUsageRequest, context: Context
    ) -> an_pb.GetUsageResponse:
        own = tenant_of(context)
        tenant = request.tenant or own
        if not sc.TENANT_RE.match(tenant):
            raise InvalidArgumentError("tenant is not a valid tenant name", field="tenant")
        if tenant != own and not (
            sc.ADMIN in caller_scopes(context)
            and await self.admin.is_operator(current_caller(context))
        ):
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
        total, by_endpoint, by_period, by_key = await self.store.report(tenant, start, end, daily)
        endpoints = sorted(by_endpoint.items(), key=lambda kv: (-kv[1].values["requests"], kv[0]))
        spent = await self.spend.spent_today(tenant)
        tomorrow = datetime.now(_UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        tomorrow += timedelta(days=1)
        return an_pb.GetUsageResponse(
            spend_cap=an_pb.SpendCap(
                daily_cap_usd=self.spend.cap_for(tenant),
                spent_today_usd=spent or 0.0,
                reset_time=_ts(tomorrow),
                known=spent is not None,
            ),
            tenant=tenant,
            start_time=_ts(start),
            end_time=_ts(end),
            total=_stats(total),
            endpoints=[an_pb.EndpointUsage(endpoint=e, stats=_stats(s)) for e, s in endpoints],
            keys=[
                an_pb.KeyUsage(key_id=k, stats=_stats(s))
                for k, s in sorted(
                    by_key.items(), key=lambda kv: (-kv[1].values["requests"], kv[0])
                )
            ],
            series=[
                an_pb.PeriodUsage(start_time=_ts(when), stats=_stats(s))
                for when, s in sorted(by_period.items())
            ],
        )
