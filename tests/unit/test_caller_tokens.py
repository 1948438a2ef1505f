"""Internal identity tokens: what verifies, what does not, and the caches around them."""

from __future__ import annotations

import asyncio

import jwt
import pytest

from ragline_core import caller
from ragline_core.errors import UnauthenticatedError

KEY = "k" * 40
WHO = caller.Caller("acme", "key_1", ("search",), "free", "api_key")


def test_a_minted_token_verifies_to_its_caller_and_keys_rotate():
    old, new = "o" * 40, "n" * 40
    token = caller.InternalTokens([old]).mint(WHO)
    # During a rotation the new key signs and the old one still verifies.
    assert caller.InternalTokens([new, old]).verify(token) == WHO
    with pytest.raises(UnauthenticatedError) as caught:
        caller.InternalTokens([new]).verify(token)
    assert caught.value.reason == "BAD_INTERNAL_TOKEN"


def test_short_or_missing_keys_are_refused_at_start():
    for keys in ([], ["short"]):
        with pytest.raises(ValueError, match="INTERNAL_TOKEN_KEYS"):
            caller.InternalTokens(keys)


def test_tampered_and_expired_tokens_are_refused():
    tokens = caller.InternalTokens([KEY])
    header, payload, signature = tokens.mint(WHO).split(".")
    forged = jwt.encode(
        {**jwt.decode(tokens.mint(WHO), options={"verify_signature": False}), "tenant": "victim"},
        "x" * 40,
        "HS256",
    )
    for bad in (f"{header}.{payload}.{signature[:-2]}AA", forged, "not-a-token"):
        with pytest.raises(UnauthenticatedError):
            tokens.verify(bad)
    with pytest.raises(UnauthenticatedError) as caught:
        tokens.verify(tokens.mint(WHO, ttl_s=-30))
    assert caught.value.reason == "INTERNAL_TOKEN_EXPIRED"


async def test_a_verified_token_is_remembered_only_until_it_expires():
    auth = caller.Authenticator(caller.InternalTokens([KEY]), None)
    short = auth.internal.mint(WHO, ttl_s=1)
    assert await auth.caller([(caller.IDENTITY_HEADER, short)]) == WHO
    assert auth._remembered(short) == WHO  # the next call skips the signature check
    await asyncio.sleep(1.1)
    assert auth._remembered(short) is None  # expired: verified afresh (and refused) again
    with pytest.raises(UnauthenticatedError) as caught:
        await auth.caller([("x-ragline-tenant", "acme")])
    assert caught.value.reason == "IDENTITY_REQUIRED"


def test_outgoing_calls_act_for_the_caller_or_as_the_service():
    auth = caller.Authenticator(caller.InternalTokens([KEY]), None)
    caller.set_current(WHO)
    ((_, same),) = auth.metadata_for("acme", "chat")
    assert auth.internal.verify(same) == WHO
    ((_, other),) = auth.metadata_for("another-tenant", "ingest")
    assert auth.internal.verify(other) == caller.Caller("another-tenant", "service:ingest", ())
