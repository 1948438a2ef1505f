"""Zero trust behind the gateway: a service's port answers only a caller whose identity it
verified itself (ragline_core.caller), never plain `x-ragline-*` metadata.

Each probe is what an attacker with a shell beside the services tried (issue 12): read
another tenant's data, mint an admin key, list every tenant's keys, mint a token for
another key. Each must be UNAUTHENTICATED without a signed identity, and the same calls
work with one, so the refusals are not an outage.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import httpx
import jwt
import pytest
from google.rpc import error_details_pb2, status_pb2

from ragline.analytics.v1 import analytics_service_pb2 as an_pb
from ragline.analytics.v1 import analytics_service_pb2_grpc as an_grpc
from ragline.auth.v1 import auth_service_pb2 as auth_pb
from ragline.auth.v1 import auth_service_pb2_grpc as auth_grpc
from ragline.chat.v1 import chat_service_pb2 as chat_pb
from ragline.chat.v1 import chat_service_pb2_grpc as chat_grpc
from ragline.embedder.v1 import embedder_service_pb2 as emb_pb
from ragline.embedder.v1 import embedder_service_pb2_grpc as emb_grpc
from ragline.ingest.v1 import ingest_service_pb2 as ingest_pb
from ragline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from ragline.retriever.v1 import retriever_service_pb2 as ret_pb
from ragline.retriever.v1 import retriever_service_pb2_grpc as ret_grpc
from ragline_core.caller import AUDIENCE, IDENTITY_HEADER, ISSUER, Caller, InternalTokens
from tests.support.auth import DEV_TENANT
from tests.support.identity import TEST_INTERNAL_KEY, as_tenant

pytestmark = pytest.mark.e2e

Metadata = tuple[tuple[str, str], ...]
# What the gateway used to set, and what the attacker sent straight to the ports.
FORGED: Metadata = (
    ("x-ragline-tenant", "dev-2"),
    ("x-ragline-key-id", "key_dev_2"),
    ("x-ragline-scopes", "embeddings,search,chat,ingest,analytics,admin"),
    ("x-ragline-auth", "api_key"),
)


def _calls(channel: grpc.aio.Channel) -> dict[str, Callable[[Metadata], Awaitable[Any]]]:
    """One representative call per service (auth: the ones the attacker used)."""
    emb = emb_grpc.EmbedderServiceStub(channel)
    ret = ret_grpc.RetrieverServiceStub(channel)
    chat = chat_grpc.ChatServiceStub(channel)
    ingest = ingest_grpc.IngestServiceStub(channel)
    auth = auth_grpc.AuthServiceStub(channel)
    usage = an_grpc.AnalyticsServiceStub(channel)
    return {
        "embedder": lambda md: emb.CreateEmbeddings(
            emb_pb.CreateEmbeddingsRequest(text="x"), metadata=md, timeout=20
        ),
        "retriever": lambda md: ret.Search(
            ret_pb.SearchRequest(query="x", collection="nope"), metadata=md, timeout=20
        ),
        "chat": lambda md: chat.ListConversations(
            chat_pb.ListConversationsRequest(), metadata=md, timeout=20
        ),
        "ingest": lambda md: ingest.ListCollections(
            ingest_pb.ListCollectionsRequest(), metadata=md, timeout=20
        ),
        "auth:create-key": lambda md: auth.CreateApiKey(
            auth_pb.CreateApiKeyRequest(tenant="dev-1", scopes=["admin"]), metadata=md, timeout=20
        ),
        "auth:list-keys": lambda md: auth.ListApiKeys(
            auth_pb.ListApiKeysRequest(), metadata=md, timeout=20
        ),
        "auth:token": lambda md: auth.CreateToken(
            auth_pb.CreateTokenRequest(), metadata=md, timeout=20
        ),
        "auth:usage": lambda md: usage.GetUsage(
            an_pb.GetUsageRequest(tenant="dev-2"), metadata=md, timeout=20
        ),
    }


CALLS = (
    "embedder",
    "retriever",
    "chat",
    "ingest",
    "auth:create-key",
    "auth:list-keys",
    "auth:token",
    "auth:usage",
)


def _service(call: str) -> str:
    return call.split(":")[0]


def _token(claims: dict[str, Any], key: str = TEST_INTERNAL_KEY) -> Metadata:
    """An internal token with exactly these claims (signed as the stack's would be)."""
    kid = jwt.get_unverified_header(InternalTokens([key]).mint(Caller("t", "k", ())))["kid"]
    return ((IDENTITY_HEADER, jwt.encode(claims, key, "HS256", headers={"kid": kid})),)


def _claims(**override: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "key_dev_2",
        "tenant": "dev-2",
        "scopes": ["admin"],
        "auth": "api_key",
        "iat": now,
        "exp": now + 60,
    }
    claims.update(override)
    return claims


def bad_identities() -> dict[str, tuple[Metadata, str]]:
    """Minted when asked: the valid-but-wrong ones must not expire before the test runs."""
    return {
        "none": ((), "IDENTITY_REQUIRED"),
        "forged headers": (FORGED, "IDENTITY_REQUIRED"),
        "another key": (
            as_tenant("dev-2", key="an-attackers-own-secret-of-forty-characters!"),
            "BAD_INTERNAL_TOKEN",
        ),
        "expired": (
            _token(_claims(iat=int(time.time()) - 600, exp=int(time.time()) - 300)),
            "INTERNAL_TOKEN_EXPIRED",
        ),
        "another audience": (_token(_claims(aud="somebody-else")), "BAD_INTERNAL_TOKEN"),
        "no signature": (
            ((IDENTITY_HEADER, jwt.encode(_claims(), None, "none")),),
            "BAD_INTERNAL_TOKEN",
        ),
        "a forged user jwt": (
            (("authorization", "Bearer " + jwt.encode(_claims(aud="ragline-api"), "x" * 40)),),
            "INVALID_TOKEN",
        ),
    }


def _reason(error: grpc.aio.AioRpcError) -> str:
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info.reason
    return ""


@pytest.mark.parametrize("identity", list(bad_identities()))
async def test_every_service_refuses_a_caller_it_cannot_verify(stack, identity):
    metadata, reason = bad_identities()[identity]
    for call in CALLS:
        async with grpc.aio.insecure_channel(stack.cfg.service_addr(_service(call))) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _calls(channel)[call](metadata)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, (call, refused.value)
        assert _reason(refused.value) == reason, (call, refused.value)


async def test_a_verified_identity_is_served_and_scoped(stack):
    """The same ports answer a signed identity: its own tenant's data, and key management
    only with the admin scope (the port is not a way around the gateway's scopes)."""
    own = as_tenant(DEV_TENANT, ("embeddings", "chat", "ingest", "search"))
    for call in ("embedder", "chat", "ingest"):
        async with grpc.aio.insecure_channel(stack.cfg.service_addr(_service(call))) as channel:
            assert await _calls(channel)[call](own) is not None
    async with grpc.aio.insecure_channel(stack.cfg.service_addr("auth")) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await _calls(channel)["auth:create-key"](own)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # A service acting for a tenant (no key, no scopes) cannot mint a token either.
        internal = as_tenant(DEV_TENANT, (), key_id="service:chat", method="internal")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _calls(channel)["auth:token"](internal)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_the_chat_http_edge_refuses_plain_headers(stack):
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{stack.cfg.chat_http_port}", timeout=20
    ) as edge:
        forged = await edge.get("/v1/models", headers=dict(FORGED))
        assert forged.status_code == 401, forged.text
        ok = await edge.get("/v1/models", headers=dict(as_tenant(DEV_TENANT)))
        assert ok.status_code == 200, ok.text


async def test_through_the_gateway_api_keys_and_jwts_still_work(api, anon_api):
    """Both credential paths reach the services with an identity they accept: an API key
    (ext_authz mints the internal token) and a JWT (forwarded, verified again)."""
    assert (await api.post("/api/v1/embeddings", json={"text": "zero trust"})).status_code == 200
    minted = await api.post("/api/v1/tokens", json={})
    assert minted.status_code == 200, minted.text
    bearer = {"Authorization": f"Bearer {minted.json()['access_token']}"}
    reply = await anon_api.post("/api/v1/embeddings", json={"text": "zero trust"}, headers=bearer)
    assert reply.status_code == 200, reply.text
    # A client cannot smuggle its own identity past the gateway either.
    smuggled = await anon_api.post(
        "/api/v1/embeddings",
        json={"text": "x"},
        headers={IDENTITY_HEADER: as_tenant("dev-2")[0][1]},
    )
    assert smuggled.status_code == 401, smuggled.text
