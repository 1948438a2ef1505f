"""The chat WebSocket does not outlive its credential: Envoy checks the upgrade only, so the
chat service checks every message again (ragline_chat.ws_guard). A revoked key is cut off
on an open socket (close 4401), each message counts against the key's rate limit and in
usage analytics, and a socket ends when its JWT expires."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import aiohttp
import pytest

from tests.support.gateway import bearer, create_key, wait_until

pytestmark = pytest.mark.e2e

SUBPROTOCOL = "ragline.chat.v1"
TTL_S = 1.0  # GATEWAY_KEY_CACHE_TTL's default, which the test stack keeps
FREE_CHAT_PER_MINUTE = 20  # ragline_stack.gateway.RATE_LIMIT_TIERS["free"]["chat"]
WS_ENDPOINT = "WS /api/v1/chat/ws"


def _url(stack) -> str:
    return f"ws://127.0.0.1:{stack.cfg.api_port}/api/v1/chat/ws"


async def _key(api, anon_api, **extra: Any) -> tuple[str, dict[str, Any], str]:
    """A new tenant's chat key (with analytics, to read its usage) and a collection."""
    tenant = f"wsr-{secrets.token_hex(4)}"
    key, record = await create_key(api, tenant, ["chat", "ingest", "analytics"], **extra)
    doc = {"title": "Wren", "content": "The wren is a small brown bird with a loud song."}
    reply = await anon_api.post(
        "/api/v1/ingest", json={"collection": "birds", "documents": [doc]}, headers=bearer(key)
    )
    assert reply.status_code == 200, reply.text
    return key, record, tenant


def _connect(session: aiohttp.ClientSession, stack, token: str):
    return session.ws_connect(_url(stack), protocols=(SUBPROTOCOL, f"ragline.bearer.{token}"))


async def _outcome(ws: aiohttp.ClientWebSocketResponse) -> tuple[str, Any]:
    """After a question: ("done", None), ("error", reason) or ("closed", close code)."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), 30)
        if msg.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSING,
            aiohttp.WSMsgType.CLOSED,
        ):
            return "closed", ws.close_code
        event = msg.json()
        if "done" in event:
            return "done", None
        if "error" in event:
            return "error", event["error"].get("reason")


async def _ask(ws: aiohttp.ClientWebSocketResponse) -> tuple[str, Any]:
    try:
        await ws.send_json({"message": "What sings loudly?", "collection": "birds"})
    except ConnectionResetError:
        return "closed", ws.close_code
    return await _outcome(ws)


async def test_a_key_revoked_while_its_socket_is_open_is_cut_off(stack, api, anon_api):
    key, record, _ = await _key(api, anon_api, tier="enterprise")
    async with aiohttp.ClientSession() as session, _connect(session, stack, key) as ws:
        assert await _ask(ws) == ("done", None)
        revoked = await api.post(f"/api/v1/keys/{record['key_id']}:revoke", json={})
        assert revoked.status_code == 200, revoked.text
        revoked_at = time.monotonic()
        answered_late = []
        while True:
            sent = time.monotonic() - revoked_at
            outcome = await _ask(ws)
            if outcome[0] == "closed":
                break
            # An answer reused for up to the cache TTL is allowed, nothing later.
            if outcome[0] == "done" and sent > TTL_S + 0.2:
                answered_late.append(round(sent, 2))
            assert time.monotonic() - revoked_at < 10, (
                f"the socket still answers a revoked key: {len(answered_late)} late answers"
            )
        assert not answered_late, answered_late
        assert ws.close_code == 4401


async def test_each_message_counts_against_the_keys_rate_limit(stack, api, anon_api):
    key, _, _ = await _key(api, anon_api, tier="free")  # 20 chat requests a minute
    # Setup: envoyproxy/ratelimit counts per calendar minute; start well inside one.
    if time.time() % 60 > 40:
        await asyncio.sleep(61 - time.time() % 60)
    outcomes = []
    async with aiohttp.ClientSession() as session, _connect(session, stack, key) as ws:
        # The upgrade was one request; 25 messages go past the limit.
        for _ in range(25):
            outcomes.append(await _ask(ws))
        answered = sum(1 for kind, _ in outcomes if kind == "done")
        limited = [reason for kind, reason in outcomes if kind == "error"]
        assert answered <= FREE_CHAT_PER_MINUTE - 1, outcomes
        assert limited and set(limited) == {"RATE_LIMITED"}, outcomes
        # Limited, not closed: the socket answers again once the minute is over.
        assert not ws.closed


async def test_each_message_counts_in_usage(stack, api, anon_api):
    key, _, tenant = await _key(api, anon_api, tier="enterprise")
    messages = 4
    async with aiohttp.ClientSession() as session, _connect(session, stack, key) as ws:
        for _ in range(messages):
            assert await _ask(ws) == ("done", None)

    async def by_endpoint() -> dict[str, Any]:
        reply = await anon_api.get("/api/v1/analytics/usage", headers=bearer(key))
        assert reply.status_code == 200, reply.text
        assert reply.json()["tenant"] == tenant
        return {e["endpoint"]: e["stats"] for e in reply.json()["endpoints"]}

    async def counted() -> bool:
        return int((await by_endpoint()).get(WS_ENDPOINT, {}).get("requests", 0)) >= messages

    await wait_until(counted, timeout=10, interval=0.3)
    stats = (await by_endpoint())[WS_ENDPOINT]
    assert int(stats["requests"]) == messages and int(stats["errors"]) == 0, stats


async def test_a_socket_ends_when_its_jwt_expires(stack, api, anon_api):
    key, _, _ = await _key(api, anon_api, tier="enterprise")
    token = await anon_api.post("/api/v1/tokens", json={"ttl_seconds": 3}, headers=bearer(key))
    assert token.status_code == 200, token.text
    expires_at = time.monotonic() + token.json()["expires_in"]
    async with (
        aiohttp.ClientSession() as session,
        _connect(session, stack, token.json()["access_token"]) as ws,
    ):
        assert await _ask(ws) == ("done", None)
        # Quiet: nothing sent, yet the server closes the socket at the token's expiry.
        msg = await asyncio.wait_for(ws.receive(), expires_at - time.monotonic() + 5)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg
        assert ws.close_code == 4401 and "TOKEN_EXPIRED" in (msg.extra or "")
        assert time.monotonic() > expires_at - 1.5
