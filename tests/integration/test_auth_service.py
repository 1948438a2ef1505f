"""The auth service on its own gRPC port: ext_authz decisions and revocation across
replicas (two auth processes sharing MongoDB and Redis)."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from envoy_api.envoy.service.auth.v3 import attribute_context_pb2 as attr_pb
from envoy_api.envoy.service.auth.v3 import external_auth_pb2 as authz_pb
from envoy_api.envoy.service.auth.v3 import external_auth_pb2_grpc as authz_grpc

from ragline.auth.v1 import auth_service_pb2 as pb
from ragline.auth.v1 import auth_service_pb2_grpc as pb_grpc
from tests.conftest import free_port
from tests.support.identity import identity_channel
from tests.support.processes import extra_service


def _check(token: str, scope: str = "embeddings", grpc_call: bool = False) -> authz_pb.CheckRequest:
    headers = {"authorization": f"Bearer {token}"}
    headers["content-type"] = "application/grpc" if grpc_call else "application/json"
    return authz_pb.CheckRequest(
        attributes=attr_pb.AttributeContext(
            request=attr_pb.AttributeContext.Request(
                http=attr_pb.AttributeContext.HttpRequest(
                    method="GET", path="/api/v1/embedding-models", headers=headers
                )
            ),
            context_extensions={"scope": scope},
        )
    )


async def test_check_allows_with_identity_headers_and_removes_the_key(stack):
    async with identity_channel(stack.cfg.service_addr("auth")) as channel:
        reply = await authz_grpc.AuthorizationStub(channel).Check(_check("dev-key-1"), timeout=5)
    assert reply.status.code == 0
    headers = {h.header.key: h.header.value for h in reply.ok_response.headers}
    assert headers["x-ragline-tenant"] == "dev-1"
    assert "admin" in headers["x-ragline-scopes"].split(",")
    assert list(reply.ok_response.headers_to_remove) == ["authorization"]


async def test_check_denies_grpc_calls_with_a_plain_message(stack):
    async with identity_channel(stack.cfg.service_addr("auth")) as channel:
        reply = await authz_grpc.AuthorizationStub(channel).Check(
            _check("nope", grpc_call=True), timeout=5
        )
    assert reply.status.code == 16 and reply.denied_response.status.code == 401
    assert reply.denied_response.body == "invalid API key"


async def test_revocation_reaches_every_replica_at_once(stack, tmp_path):
    port, metrics = free_port(), free_port()
    # A long cache TTL: only the pub/sub invalidation can make the replica forget.
    with extra_service(stack, "auth", port, metrics, tmp_path / "auth2.log", KEY_CACHE_TTL="60"):
        async with (
            identity_channel(stack.cfg.service_addr("auth")) as primary,
            identity_channel(f"127.0.0.1:{port}") as replica,
        ):
            created = await pb_grpc.AuthServiceStub(primary).CreateApiKey(
                pb.CreateApiKeyRequest(tenant="replicas", scopes=["embeddings"]), timeout=5
            )
            check = authz_grpc.AuthorizationStub(replica).Check
            assert (await check(_check(created.key), timeout=5)).status.code == 0  # now cached
            await pb_grpc.AuthServiceStub(primary).RevokeApiKey(
                pb.RevokeApiKeyRequest(key_id=created.api_key.key_id), timeout=5
            )
            started = time.monotonic()
            while (await check(_check(created.key), timeout=5)).status.code == 0:
                # Far below the 60 s cache TTL: only the broadcast explains it.
                assert time.monotonic() - started < 5.0, (
                    "replica still accepts a revoked key; replica log tail:\n"
                    + (tmp_path / "auth2.log").read_text()[-3000:]
                    + "\nprimary log tail:\n"
                    + stack.log_path("auth").read_text()[-3000:]
                )
                await asyncio.sleep(0.05)
            reply = await check(_check(created.key), timeout=5)
            assert reply.denied_response.status.code == 401
            assert b"KEY_REVOKED" in reply.denied_response.body.encode()


@pytest.mark.parametrize("scopes", [["bogus"], []])
async def test_create_key_with_unknown_scope_is_invalid_argument(stack, scopes):
    async with identity_channel(stack.cfg.service_addr("auth")) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await pb_grpc.AuthServiceStub(channel).CreateApiKey(
                pb.CreateApiKeyRequest(tenant="x", scopes=scopes), timeout=5
            )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
