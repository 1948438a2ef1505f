"""The JWT signing keys in `auth_signing_keys`: encrypted at rest with
AUTH_KEY_ENCRYPTION_KEY (plain keys from before are sealed on start), rotated on a schedule
with the next key published before it signs and the old one until its tokens expire."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime, timedelta

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ragline.auth.v1 import auth_service_pb2 as pb
from ragline.auth.v1 import auth_service_pb2_grpc as pb_grpc
from ragline_auth.keys import ApiKey
from ragline_auth.signing_keys import (
    KeyEncryption,
    SigningKeyError,
    SigningKeyStore,
    parse_encryption_keys,
)
from ragline_auth.tokens import Signer, TokenError
from ragline_stack.stack import free_port
from tests.support.processes import extra_service

ROTATION_S, PUBLISH_S, TOKEN_TTL_S = 3600, 360, 900


def _kek() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _store(db, *keks: str) -> SigningKeyStore:
    keys = [k for kek in keks for k in parse_encryption_keys(kek)]
    encryption = KeyEncryption(keys) if keys else None
    return SigningKeyStore(db["auth_signing_keys"], encryption, ROTATION_S, TOKEN_TTL_S, PUBLISH_S)


def _api_key() -> ApiKey:
    return ApiKey("key_1", "d", "rl_", "acme", ("search",), "free", "live", "", datetime.now(UTC))


def _plain_pem() -> str:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


async def _docs(db) -> list[dict]:
    return [doc async for doc in db["auth_signing_keys"].find({})]


async def test_a_new_key_is_sealed_and_another_replica_opens_it(scratch_db):
    kek = _kek()
    ring = await _store(scratch_db, kek).ring()
    [doc] = await _docs(scratch_db)
    stored = json.dumps(doc, default=str)
    assert "PRIVATE KEY" not in stored and "private_pem" not in doc
    assert doc["private"]["alg"] == "A256GCM" and doc["kid"] == ring.signing.kid
    # A second replica with the same key reads the same signing key.
    other = await _store(scratch_db, kek).ring()
    assert other.signing.kid == ring.signing.kid
    token, _ = Signer(ring, "ragline", "ragline-api").issue(_api_key(), 60)
    assert Signer(other, "ragline", "ragline-api").verify(token).tenant == "acme"


async def test_a_plain_key_from_before_is_sealed_on_start_and_keeps_its_tokens(scratch_db):
    pem = _plain_pem()
    # The document the previous version wrote (one key, never rotated).
    await scratch_db["auth_signing_keys"].insert_one(
        {"_id": "current", "kid": "rl-legacy", "private_pem": pem, "created_at": datetime.now(UTC)}
    )
    before = jwt.encode(
        {"iss": "ragline", "aud": "ragline-api", "sub": "key_1", "iat": 0, "exp": 2**31},
        serialization.load_pem_private_key(pem.encode(), None),
        algorithm="RS256",
        headers={"kid": "rl-legacy"},
    )
    ring = await _store(scratch_db, _kek()).ring()
    [doc] = await _docs(scratch_db)
    assert "private_pem" not in doc and "PRIVATE KEY" not in json.dumps(doc, default=str)
    assert ring.signing.kid == "rl-legacy"
    assert Signer(ring, "ragline", "ragline-api").verify(before).key_id == "key_1"


async def test_a_key_sealed_with_another_key_is_refused_naming_the_setting(scratch_db):
    await _store(scratch_db, _kek()).ring()
    for store in (_store(scratch_db, _kek()), _store(scratch_db)):
        with pytest.raises(SigningKeyError, match="AUTH_KEY_ENCRYPTION_KEY"):
            await store.ring()


async def test_the_encryption_key_rotates_by_listing_the_new_one_first(scratch_db):
    old, new = _kek(), _kek()
    kid = (await _store(scratch_db, old).ring()).signing.kid
    assert (await _store(scratch_db, new, old).ring()).signing.kid == kid
    [doc] = await _docs(scratch_db)
    assert doc["private"]["kek"] == KeyEncryption(parse_encryption_keys(new)).ref
    # Re-sealed: the old key can go.
    assert (await _store(scratch_db, new).ring()).signing.kid == kid


async def test_rotation_publishes_first_and_retires_after_the_last_token(scratch_db):
    store, t0 = _store(scratch_db, _kek()), datetime.now(UTC)
    first = await store.ring(t0)
    old_kid = first.signing.kid
    assert [k.kid for k in first.published] == [old_kid]
    # Due: the next key is published ahead of signing, the current one still signs.
    ahead = await store.ring(t0 + timedelta(seconds=ROTATION_S - PUBLISH_S))
    assert ahead.signing.kid == old_kid and len(ahead.published) == 2
    token, _ = Signer(ahead, "ragline", "ragline-api").issue(_api_key(), TOKEN_TTL_S)
    # Rotated: the new key signs; the old one still verifies the tokens it signed.
    rotated = await store.ring(t0 + timedelta(seconds=ROTATION_S))
    signer = Signer(rotated, "ragline", "ragline-api")
    assert rotated.signing.kid != old_kid
    assert {k["kid"] for k in json.loads(signer.jwks())["keys"]} == {old_kid, rotated.signing.kid}
    assert signer.verify(token).key_id == "key_1"
    # After its last token expired, the old key leaves the JWKS and the database.
    later = await store.ring(t0 + timedelta(seconds=ROTATION_S + TOKEN_TTL_S + 61))
    signer = Signer(later, "ragline", "ragline-api")
    assert [k["kid"] for k in json.loads(signer.jwks())["keys"]] == [later.signing.kid]
    assert [d["kid"] for d in await _docs(scratch_db)] == [later.signing.kid]
    with pytest.raises(TokenError):
        signer.verify(token)


async def test_the_auth_service_seals_its_signing_key(stack, scratch_db, tmp_path):
    pem = _plain_pem()
    await scratch_db["auth_signing_keys"].insert_one(
        {"_id": "current", "kid": "rl-before", "private_pem": pem, "created_at": datetime.now(UTC)}
    )
    port, metrics = free_port(), free_port()
    env = {"MONGODB_DATABASE": scratch_db.name, "AUTH_KEY_ENCRYPTION_KEY": _kek()}
    with extra_service(stack, "auth", port, metrics, tmp_path / "auth.log", **env):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            jwks = await pb_grpc.AuthServiceStub(channel).GetJwks(pb.GetJwksRequest(), timeout=5)
    assert [k["kid"] for k in json.loads(jwks.data)["keys"]] == ["rl-before"]
    [doc] = await _docs(scratch_db)
    assert "private_pem" not in doc and doc["private"]["alg"] == "A256GCM"
    assert pem.splitlines()[1] not in json.dumps(doc, default=str)
