"""The chat WebSocket's guard (ragline_chat.ws_guard) on its own: how long a credential
check is reused, what a refusal does to the session, the per-message rate limit, and the
session's end of life. The whole path through Envoy is tests/e2e/test_websocket_reauth.py."""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest

from ragline_chat import auth_client
from ragline_chat.auth_client import Allowed, Denied, OverLimit
from ragline_chat.domain import ErrorEvent
from ragline_chat.ws_guard import CREDENTIAL_HEADER, Close, SocketGuards
from ragline_core.errors import UnauthenticatedError
from ragline_stack import gateway

KEY = Allowed("acme", "key_1", ("chat",), "free", "api_key", reuse_s=0.2)


class FakeAuth:
    def __init__(self, *answers: Allowed | Denied) -> None:
        self.answers = list(answers)
        self.asked = 0

    async def check(self, credential: str, scope: str) -> Allowed | Denied:
        assert scope == "chat"
        self.asked += 1
        return self.answers[min(self.asked, len(self.answers)) - 1]


class FakeLimiter:
    def __init__(self, over: OverLimit | None = None) -> None:
        self.over = over
        self.hits = 0

    async def take(self, tier: str, key_id: str) -> OverLimit | None:
        self.hits += 1
        return self.over


class FakeUsage:
    def __init__(self) -> None:
        self.records: list[tuple[str, int]] = []

    def record(self, tenant: str, status: int, started: float, usage: object) -> None:
        self.records.append((tenant, status))


def _guards(auth: FakeAuth, limiter: FakeLimiter | None = None, session_s: float = 3600):
    usage = FakeUsage()
    guards = SocketGuards(auth, limiter or FakeLimiter(), usage, session_s)  # type: ignore[arg-type]
    return guards, usage


async def _until(check, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while not (found := await check()):
        assert time.monotonic() < deadline, "condition not met"
        await asyncio.sleep(0.02)
    return found


def test_the_limiter_and_the_credential_header_match_the_gateway():
    assert auth_client.RATE_LIMIT_DOMAIN == gateway.RATE_LIMIT_DOMAIN
    assert all(auth_client.CHAT_GROUP in groups for groups in gateway.RATE_LIMIT_TIERS.values())
    # Client copies are stripped at the edge; only envoy/ws_bearer.lua sets it.
    assert CREDENTIAL_HEADER in gateway.IDENTITY_HEADERS
    assert CREDENTIAL_HEADER in (gateway.ENVOY_DIR / "ws_bearer.lua").read_text()


async def test_an_answer_is_reused_for_its_window_then_a_revocation_closes_4401():
    revoked = Denied(401, "KEY_REVOKED", "API key revoked")
    auth = FakeAuth(KEY, KEY, revoked)
    guards, _ = _guards(auth)
    guard = await guards.open({CREDENTIAL_HEADER: "Bearer k"}, "acme")
    assert await guard.admit(charged=True) is None and auth.asked == 1  # within 0.2 s
    await _until(lambda: _asked_again(guard, auth, 2))
    verdict = await _until(lambda: guard.admit(charged=True))
    assert verdict == Close(4401, "KEY_REVOKED: API key revoked")


async def _asked_again(guard, auth: FakeAuth, times: int) -> bool:
    await guard.admit(charged=False)
    return auth.asked >= times


@pytest.mark.parametrize(
    ("denied", "expected"),
    [
        (Denied(403, "SCOPE_DENIED", "no chat"), Close(4403, "SCOPE_DENIED: no chat")),
        (
            auth_client.UNAVAILABLE,
            ErrorEvent(14, auth_client.UNAVAILABLE.message, "AUTH_UNAVAILABLE"),
        ),
    ],
)
async def test_a_lost_scope_closes_4403_and_an_auth_outage_answers_nothing(denied, expected):
    guards, _ = _guards(FakeAuth(KEY, denied))
    guard = await guards.open({CREDENTIAL_HEADER: "Bearer k"}, "acme")
    assert await _until(lambda: guard.admit(charged=True)) == expected


async def test_a_message_over_the_limit_gets_an_error_event_and_counts_as_429():
    limiter = FakeLimiter(OverLimit(20, 42))
    guards, usage = _guards(FakeAuth(KEY), limiter)
    guard = await guards.open({CREDENTIAL_HEADER: "Bearer k"}, "acme")
    verdict = await guard.admit(charged=True)
    assert isinstance(verdict, ErrorEvent) and verdict.reason == "RATE_LIMITED"
    assert "20" in verdict.message and "42 s" in verdict.message
    assert usage.records == [("acme", 429)]
    # A cancel is not charged.
    assert await guard.admit(charged=False) is None and limiter.hits == 1


async def test_the_session_ends_at_its_lifetime_with_4408():
    guards, _ = _guards(FakeAuth(KEY), session_s=0.1)
    guard = await guards.open({CREDENTIAL_HEADER: "Bearer k"}, "acme")
    assert guard.ending.code == 4408 and 0 < guard.seconds_left() <= 0.1
    assert await _until(lambda: guard.admit(charged=True)) == guard.ending


async def test_a_jwt_session_ends_at_the_tokens_expiry_with_4401():
    token = jwt.encode({"sub": "key_1", "exp": int(time.time()) + 2}, "k" * 32, "HS256")
    identity = Allowed("acme", "key_1", ("chat",), "free", "jwt", reuse_s=0)
    auth = FakeAuth(identity)
    guards, _ = _guards(auth)
    guard = await guards.open({CREDENTIAL_HEADER: f"Bearer {token}"}, "acme")
    assert guard.ending.code == 4401 and "TOKEN_EXPIRED" in guard.ending.reason
    assert 0 < guard.seconds_left() <= 2
    # Until then the verified token is not asked about again.
    assert await guard.admit(charged=True) is None and auth.asked == 1


async def test_a_socket_without_the_forwarded_credential_or_of_another_tenant_is_refused():
    guards, _ = _guards(FakeAuth(KEY))
    with pytest.raises(UnauthenticatedError) as missing:
        await guards.open({}, "acme")
    assert missing.value.reason == "MISSING_CREDENTIALS"
    with pytest.raises(UnauthenticatedError) as other:
        await guards.open({CREDENTIAL_HEADER: "Bearer k"}, "someone-else")
    assert other.value.reason == "IDENTITY_MISMATCH"


def test_a_close_reason_fits_a_close_frame():
    assert len(Close(4401, "é" * 200).message()) <= 123
