"""Assembles the auth service: key store, signer, ext_authz, access-log sink and the
AuthService/AnalyticsService APIs on one gRPC server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from pathlib import Path

import grpc
import redis.asyncio as aioredis
from envoy_api.envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from envoy_api.envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc

from ragline.analytics.v1 import analytics_service_pb2 as an_pb
from ragline.analytics.v1 import analytics_service_pb2_grpc as an_grpc
from ragline.auth.v1 import auth_service_pb2 as pb
from ragline.auth.v1 import auth_service_pb2_grpc as pb_grpc
from ragline.auth.v1 import console_service_pb2 as console_pb
from ragline.auth.v1 import console_service_pb2_grpc as console_grpc
from ragline_auth import console, docs, gateway_api
from ragline_auth.admin import Admin
from ragline_auth.audit import AuditLog
from ragline_auth.authz import AuthorizationServicer, Authorizer
from ragline_auth.configuration import ConfigurationReader
from ragline_auth.directory import Directory
from ragline_auth.failures import FailedAttempts
from ragline_auth.keys import KeyHasher, KeyService
from ragline_auth.oauth2 import ClientCredentials
from ragline_auth.oidc import OidcConfig, OidcVerifier, parse_role_map
from ragline_auth.scopes import parse_scopes
from ragline_auth.servicer import AnalyticsServicer, AuthServicer
from ragline_auth.settings import DEV_KEYS, AuthSettings
from ragline_auth.signing_keys import (
    KeyEncryption,
    SigningKeyError,
    SigningKeyStore,
    parse_encryption_keys,
)
from ragline_auth.tokens import Signer
from ragline_auth.usage import AccessLogServicer, UsageSink, UsageStore
from ragline_core.server import Runtime, ServiceSpec
from ragline_core.spend import SpendGuard

log = logging.getLogger("ragline.auth")
# How often a replica re-reads the signing keys (rotations are days apart; a new key is
# published minutes before it signs).
SIGNING_KEY_REFRESH_S = 60.0


async def seed_dev_keys(keys: KeyService, settings: AuthSettings) -> None:
    """VALID_API_KEYS: key i belongs to tenant "<DEV_KEYS_TENANT_PREFIX><i>"."""
    if not settings.SEED_DEV_KEYS:
        return
    scopes = parse_scopes(settings.DEV_KEYS_SCOPES)
    for i, plaintext in enumerate(settings.VALID_API_KEYS, start=1):
        digest = keys.hasher.digest(plaintext)
        await keys.seed(
            plaintext,
            key_id=f"dev_{digest[:12]}",
            tenant=f"{settings.DEV_KEYS_TENANT_PREFIX}{i}",
            scopes=scopes,
            tier=settings.DEV_KEYS_TIER,
        )


async def revoke_default_dev_keys(keys: KeyService) -> None:
    """Production: the development keys every checkout knows never work, even if an
    earlier start in development mode stored them."""
    for plaintext in DEV_KEYS:
        key = await keys.lookup(plaintext)
        if key is not None and key.revoked_at is None:
            await keys.revoke(key.key_id)
            log.warning("development key revoked (production mode)", extra={"key_id": key.key_id})


def oidc_verifier(settings: AuthSettings) -> OidcVerifier | None:
    """Single sign-on, when OIDC_ISSUER is set (AuthSettings checked the rest)."""
    if not settings.OIDC_ISSUER:
        return None
    return OidcVerifier(
        OidcConfig(
            issuer=settings.OIDC_ISSUER,
            audience=settings.OIDC_AUDIENCE,
            jwks_url=settings.OIDC_JWKS_URL,
            tenant_claim=settings.OIDC_TENANT_CLAIM,
            tenant=settings.OIDC_TENANT,
            role_claim=settings.OIDC_ROLE_CLAIM,
            role_map=parse_role_map(settings.OIDC_ROLE_MAP),
        )
    )


def dashboard_sso(settings: AuthSettings) -> console.SsoSettings | None:
    """The dashboard's provider sign-in, when a client id for it is configured."""
    if not settings.OIDC_DASHBOARD_CLIENT_ID:
        return None
    return console.SsoSettings(
        issuer=settings.OIDC_ISSUER,
        client_id=settings.OIDC_DASHBOARD_CLIENT_ID,
        scopes=settings.OIDC_DASHBOARD_SCOPES,
        audience=settings.OIDC_AUDIENCE,
    )


def signing_key_store(settings: AuthSettings, runtime: Runtime) -> SigningKeyStore:
    secret = settings.AUTH_KEY_ENCRYPTION_KEY
    encryption = KeyEncryption(parse_encryption_keys(secret.get_secret_value())) if secret else None
    return SigningKeyStore(
        runtime.mongo[settings.MONGODB_DATABASE]["auth_signing_keys"],
        encryption,
        settings.AUTH_SIGNING_KEY_ROTATION_S,
        settings.JWT_TTL,
    )


async def keep_signing_keys(store: SigningKeyStore, signer: Signer, stop: asyncio.Event) -> None:
    """Re-reads the ring every minute: another replica may have rotated, or a rotation or
    a retirement is due."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SIGNING_KEY_REFRESH_S)
        if stop.is_set():
            return
        try:
            signer.use(await store.ring())
        except Exception:  # the database may be down for a while: keep the current ring
            log.warning("signing keys not refreshed", exc_info=True)


async def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, AuthSettings)
    db = runtime.mongo[settings.MONGODB_DATABASE]
    hasher = KeyHasher(settings.API_KEY_PEPPER.get_secret_value().encode())
    keys = KeyService(
        db["api_keys"],
        runtime.redis,
        hasher,
        settings.KEY_CACHE_TTL,
        settings.KEY_ROTATION_GRACE,
    )
    await keys.setup()
    directory = Directory(db["users"], db["service_accounts"], hasher)
    await directory.setup()
    audit = AuditLog(db["audit_events"])
    admin = Admin(keys, directory, audit)
    await seed_dev_keys(keys, settings)
    if settings.ENVIRONMENT == "production":
        await revoke_default_dev_keys(keys)
    signing_keys = signing_key_store(settings, runtime)
    try:
        signer = Signer(await signing_keys.ring(), settings.JWT_ISSUER, settings.JWT_AUDIENCE)
    except SigningKeyError as exc:
        print(f"invalid configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    usage = UsageStore(db["usage_hourly"])
    await usage.setup()
    openapi = docs.load(settings.OPENAPI_PATH)
    docs_page = docs.page(openapi, docs.path_of(settings.OPENAPI_PATH).parent)

    oidc = oidc_verifier(settings)
    external_auth_pb2_grpc.add_AuthorizationServicer_to_server(
        AuthorizationServicer(
            Authorizer(
                keys,
                signer,
                settings.GATEWAY_KEY_CACHE_TTL,
                FailedAttempts(
                    settings.AUTH_MAX_FAILURES_PER_ADDRESS, settings.AUTH_FAILURE_WINDOW_S
                ),
                oidc,
            )
        ),
        server,
    )
    sink = UsageSink(usage, settings.USAGE_FLUSH_INTERVAL)
    als_pb2_grpc.add_AccessLogServiceServicer_to_server(AccessLogServicer(sink), server)
    client_credentials = ClientCredentials(
        directory,
        signer,
        audit,
        settings.JWT_TTL,
        FailedAttempts(settings.AUTH_MAX_FAILURES_PER_ADDRESS, settings.AUTH_FAILURE_WINDOW_S),
    )
    pb_grpc.add_AuthServiceServicer_to_server(
        AuthServicer(
            keys,
            signer,
            settings.JWT_TTL,
            openapi,
            docs_page,
            admin,
            client_credentials,
            ConfigurationReader(db, settings.RATE_LIMIT_SCALE),
        ),
        server,
    )
    spend = SpendGuard(runtime.redis, settings.SPEND_CAP_USD_PER_DAY, settings.TENANT_SPEND_CAPS)
    an_grpc.add_AnalyticsServiceServicer_to_server(AnalyticsServicer(usage, admin, spend), server)
    console_dir = Path(settings.ADMIN_UI_DIR) if settings.ADMIN_UI_DIR else console.DEFAULT_DIR
    console_grpc.add_ConsoleServiceServicer_to_server(
        console.ConsoleServicer(console_dir, dashboard_sso(settings)), server
    )

    # Revocations from other replicas, on a connection without a read timeout.
    listener_redis = aioredis.Redis.from_url(
        settings.REDIS_URL.get_secret_value(), socket_connect_timeout=0.5
    )
    stop = asyncio.Event()
    subscribed = asyncio.Event()
    loop = asyncio.get_running_loop()
    task = loop.create_task(keys.listen(stop, listener_redis, subscribed))
    # Serve only once revocations from other replicas reach this one (a key cached before
    # the subscription could outlive its revocation by the cache TTL). With Redis down,
    # start anyway: caches then expire within KEY_CACHE_TTL.
    try:
        await asyncio.wait_for(subscribed.wait(), 10)
    except TimeoutError:
        log.warning("revocation broadcasts unavailable at start-up; relying on the cache TTL")
    # Runs after the server stopped (no more access logs), so its last flush is complete.
    flusher = loop.create_task(sink.run(stop))
    rotator = loop.create_task(keep_signing_keys(signing_keys, signer, stop))
    # Single sign-on: the provider's keys fetched now and kept fresh in the background.
    keeper = loop.create_task(oidc.keep_fresh(stop)) if oidc is not None else None

    async def close() -> None:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 3)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(flusher, 10)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(rotator, 3)
        if keeper is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(keeper, 3)
        await listener_redis.aclose()

    runtime.cleanups.append(close)


SPEC = ServiceSpec(
    name="auth",
    service_names=(
        pb.DESCRIPTOR.services_by_name["AuthService"].full_name,
        an_pb.DESCRIPTOR.services_by_name["AnalyticsService"].full_name,
        console_pb.DESCRIPTOR.services_by_name["ConsoleService"].full_name,
        external_auth_pb2.DESCRIPTOR.services_by_name["Authorization"].full_name,
        als_pb2.DESCRIPTOR.services_by_name["AccessLogService"].full_name,
    ),
    register=register,
    # Reflection through the gateway reaches this service (ragline_stack.envoy_config).
    also_reflected=gateway_api.SERVICE_NAMES,
)
