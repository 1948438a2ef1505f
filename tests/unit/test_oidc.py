"""Single sign-on: verifying a provider's tokens and mapping their claims (the provider's
keys come from a JWKS served by the test's fetch function; the real provider, Ory Hydra,
is in tests/e2e/test_sso_oidc.py)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from ragline_auth.oidc import OidcConfig, OidcError, OidcVerifier, map_claims, parse_role_map

ISSUER = "https://idp.example.com/"
JWKS_URL = "https://idp.example.com/.well-known/jwks.json"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CONFIG = OidcConfig(
    issuer=ISSUER,
    audience="ragline",
    jwks_url=JWKS_URL,
    tenant_claim="org.id",
    role_claim="groups",
    role_map={"rl-admins": "admin", "rl-readers": "viewer"},
)


def _jwks() -> dict[str, Any]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
    return {"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}


def _token(**claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": "ragline", "sub": "alice", "iat": now, "exp": now + 60}
    body.update(claims)
    return jwt.encode(body, KEY, "RS256", headers={"kid": "k1"})


def _verifier() -> tuple[OidcVerifier, list[str]]:
    fetched: list[str] = []

    async def fetch(url: str) -> dict[str, Any]:
        fetched.append(url)
        return _jwks()

    return OidcVerifier(CONFIG, fetch), fetched


async def test_a_valid_token_maps_to_tenant_and_highest_role():
    verifier, fetched = _verifier()
    token = _token(org={"id": "acme"}, groups=["rl-readers", "rl-admins", "other"])
    assert verifier.handles(token)
    sso = await verifier.verify(token)
    assert (sso.tenant, sso.role, sso.subject) == ("acme", "admin", "alice")
    assert sso.key_id == "oidc:admin:alice"
    await verifier.verify(token)
    assert fetched == [JWKS_URL]  # the JWKS is cached


@pytest.mark.parametrize(
    ("claims", "reason", "status"),
    [
        ({"exp": int(time.time()) - 60}, "TOKEN_EXPIRED", 401),
        ({"aud": "someone-else"}, "INVALID_TOKEN", 401),
        ({"org": {"id": "acme"}, "groups": ["nobody"]}, "ROLE_NOT_MAPPED", 403),
        ({"org": None}, "TENANT_NOT_MAPPED", 403),
        ({"org": {"id": "not a tenant!"}, "groups": ["rl-admins"]}, "TENANT_NOT_MAPPED", 403),
    ],
)
async def test_bad_tokens_are_refused_with_the_reason(claims, reason, status):
    verifier, _ = _verifier()
    with pytest.raises(OidcError) as caught:
        await verifier.verify(_token(**{"org": {"id": "acme"}, "groups": ["rl-admins"], **claims}))
    assert (caught.value.reason, caught.value.status) == (reason, status)


async def test_another_issuer_or_a_foreign_key_is_not_accepted():
    verifier, _ = _verifier()
    assert not verifier.handles(_token(iss="ragline"))
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        {"iss": ISSUER, "aud": "ragline", "sub": "x", "exp": int(time.time()) + 60},
        other,
        "RS256",
        headers={"kid": "k1"},
    )
    with pytest.raises(OidcError) as caught:
        await verifier.verify(forged)
    assert caught.value.reason == "INVALID_TOKEN"
    hmac = jwt.encode({"iss": ISSUER}, "s" * 32, "HS256", headers={"kid": "k1"})
    with pytest.raises(OidcError, match="algorithm"):
        await verifier.verify(hmac)


def test_mapping_rules():
    fixed = OidcConfig(issuer=ISSUER, audience="a", tenant="acme", role_claim="scope")
    # A fixed tenant for a one-tenant provider; role names map to themselves; a space-separated
    # string claim is a list.
    assert map_claims(fixed, {"scope": "openid member"}) == ("acme", "member")
    assert parse_role_map('{"g": "owner"}') == {"g": "owner"}
    with pytest.raises(ValueError, match="unknown roles"):
        parse_role_map('{"g": "superuser"}')
    with pytest.raises(ValueError, match="JSON"):
        parse_role_map("{nope")


async def test_keys_are_fetched_ahead_of_the_first_request():
    fetched: list[str] = []
    first = asyncio.Event()

    async def fetch(url: str) -> dict[str, Any]:
        fetched.append(url)
        first.set()
        return _jwks()

    verifier = OidcVerifier(CONFIG, fetch)
    stop = asyncio.Event()
    task = asyncio.create_task(verifier.keep_fresh(stop))
    await asyncio.wait_for(first.wait(), 5)
    stop.set()
    await task
    await verifier.verify(_token(org={"id": "acme"}, groups=["rl-readers"]))
    assert fetched == [JWKS_URL]  # the request did not wait for a fetch
