"""POST /api/v1/tokens (AuthServicer.CreateToken) decides from the key as stored now, not
from the gateway's cached answer, and never mints a token that outlives its key."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ragline.auth.v1 import auth_service_pb2 as pb
from ragline_auth.docs import DocsPage
from ragline_auth.keys import ApiKey
from ragline_auth.servicer import AuthServicer
from ragline_core import caller
from ragline_core.errors import UnauthenticatedError

NOW = datetime.now(UTC)
KEY = ApiKey(
    key_id="k1",
    digest="d",
    prefix="rl_live_ab",
    tenant="acme",
    scopes=("search",),
    tier="free",
    environment="live",
    name="",
    created_at=NOW,
)


class _Keys:
    def __init__(self, key: ApiKey) -> None:
        self.key = key

    async def get(self, key_id: str) -> ApiKey:
        assert key_id == self.key.key_id
        return self.key


class _Signer:
    def issue(self, key: ApiKey, ttl_s: int) -> tuple[str, int]:
        return f"token-for-{key.key_id}", ttl_s


class _Context:
    """A call whose verified caller is API key k1 (set by the server interceptor)."""

    def __init__(self, method: str = "api_key") -> None:
        caller.set_current(caller.Caller("acme", "k1", ("search",), "free", method))


def _servicer(key: ApiKey) -> AuthServicer:
    # No admin or client credentials: the token exchange needs neither.
    return AuthServicer(_Keys(key), _Signer(), 900, b"{}", DocsPage(b"", ()), None, None, None)  # type: ignore[arg-type]


async def test_an_active_key_gets_a_token_of_the_full_lifetime():
    reply = await _servicer(KEY).CreateToken(pb.CreateTokenRequest(), _Context())  # type: ignore[arg-type]
    assert reply.access_token == "token-for-k1" and reply.expires_in == 900


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (replace(KEY, revoked_at=NOW), "KEY_REVOKED"),
        (replace(KEY, expires_at=NOW - timedelta(seconds=1)), "KEY_EXPIRED"),
    ],
)
async def test_a_revoked_or_expired_key_gets_no_token(key, reason):
    with pytest.raises(UnauthenticatedError) as caught:
        await _servicer(key).CreateToken(pb.CreateTokenRequest(), _Context())  # type: ignore[arg-type]
    assert caught.value.reason == reason


async def test_a_token_never_outlives_its_key():
    key = replace(KEY, expires_at=datetime.now(UTC) + timedelta(seconds=120))
    reply = await _servicer(key).CreateToken(pb.CreateTokenRequest(), _Context())  # type: ignore[arg-type]
    assert 110 <= reply.expires_in <= 120


async def test_only_an_api_key_caller_gets_a_token():
    """A JWT, or a service acting for a tenant, cannot mint tokens."""
    for method in ("jwt", "internal"):
        with pytest.raises(UnauthenticatedError):
            await _servicer(KEY).CreateToken(pb.CreateTokenRequest(), _Context(method))  # type: ignore[arg-type]
