"""WebSocket auth from a browser: the token as a subprotocol (`ragline.bearer.<token>`)
beside the real one (`ragline.chat.v1`), checked by the same JWT / ext_authz / scope path as
a header, with only the real subprotocol reaching the service and echoed back."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import aiohttp
import pytest

from tests.support.gateway import bearer, create_key
from tests.support.websocket import ask

pytestmark = pytest.mark.e2e

SUBPROTOCOL = "ragline.chat.v1"


def _url(stack) -> str:
    return f"ws://127.0.0.1:{stack.cfg.api_port}/api/v1/chat/ws"


def _tenant() -> str:
    return f"ws-{secrets.token_hex(4)}"


async def _key_with_a_collection(api, anon_api) -> tuple[str, str]:
    """A new tenant's chat key and a collection of its own to chat over."""
    key, _ = await create_key(api, _tenant(), ["chat", "ingest"])
    doc = {"title": "Wren", "content": "Wren is a small bird that sings loudly."}
    reply = await anon_api.post(
        "/api/v1/ingest", json={"collection": "birds", "documents": [doc]}, headers=bearer(key)
    )
    assert reply.status_code == 200, reply.text
    return key, "birds"


async def _handshake_status(stack, protocols: tuple[str, ...], **headers: str) -> int:
    async with aiohttp.ClientSession(headers=headers) as session:
        try:
            async with session.ws_connect(_url(stack), protocols=protocols):
                return 101
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


async def test_api_key_as_subprotocol_chats_as_its_tenant(stack, api, anon_api):
    key, collection = await _key_with_a_collection(api, anon_api)
    # Only subprotocols, as a browser's `new WebSocket(url, [...])` sends them; a forged
    # identity header is stripped at the edge like on any route.
    async with (
        aiohttp.ClientSession(headers={"x-ragline-tenant": "dev-1"}) as session,
        session.ws_connect(_url(stack), protocols=(SUBPROTOCOL, f"ragline.bearer.{key}")) as ws,
    ):
        # Only the real subprotocol is echoed (the token never reaches the service).
        assert ws.protocol == SUBPROTOCOL
        events = await ask(ws, {"message": "What sings loudly?", "collection": collection})
        assert "start" in events[0] and "done" in events[-1], events
        conversation = events[0]["start"]["conversation_id"]
    mine = await anon_api.get(f"/api/v1/conversations/{conversation}", headers=bearer(key))
    assert mine.status_code == 200
    # Another tenant (dev-1) does not see it: 404, not 403.
    assert (await api.get(f"/api/v1/conversations/{conversation}")).status_code == 404


async def test_jwt_as_subprotocol(stack, api, anon_api):
    key, collection = await _key_with_a_collection(api, anon_api)
    token = (await anon_api.post("/api/v1/tokens", json={}, headers=bearer(key))).json()
    protocols = (SUBPROTOCOL, f"ragline.bearer.{token['access_token']}")
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(_url(stack), protocols=protocols) as ws,
    ):
        assert ws.protocol == SUBPROTOCOL
        events = await ask(ws, {"message": "What is a wren?", "collection": collection})
        assert "start" in events[0] and "done" in events[-1], events


async def test_subprotocol_tokens_get_the_same_checks_as_headers(stack, api, anon_api):
    no_chat, _ = await create_key(api, _tenant(), ["search"])
    token = (await anon_api.post("/api/v1/tokens", json={}, headers=bearer(no_chat))).json()
    cases = {
        (SUBPROTOCOL,): 401,  # no credential at all
        (SUBPROTOCOL, "ragline.bearer."): 401,
        (SUBPROTOCOL, "ragline.bearer.rl_live_doesnotexist0000000000000000000"): 401,
        (SUBPROTOCOL, f"ragline.bearer.{no_chat}"): 403,  # API key without the chat scope
        (SUBPROTOCOL, f"ragline.bearer.{token['access_token']}"): 403,  # JWT, same
    }
    for protocols, status in cases.items():
        assert await _handshake_status(stack, protocols) == status, protocols


async def test_header_clients_are_unchanged(stack):
    # Non-browser clients keep using Authorization (the subprotocol is optional).
    assert await _handshake_status(stack, (), authorization="Bearer dev-key-1") == 101
    assert await _handshake_status(stack, (SUBPROTOCOL,), authorization="Bearer dev-key-1") == 101


async def test_subprotocol_key_is_not_logged(stack, api, anon_api):
    key, collection = await _key_with_a_collection(api, anon_api)
    protocols = (SUBPROTOCOL, f"ragline.bearer.{key}")
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(_url(stack), protocols=protocols) as ws,
    ):
        await ask(ws, {"message": "Hi", "collection": collection})
    await asyncio.sleep(1.0)
    assert await asyncio.to_thread(_logs_mentioning, Path(stack.cfg.log_dir), key) == []


def _logs_mentioning(folder: Path, text: str) -> list[str]:
    return [log.name for log in folder.glob("*.log") if text in log.read_text(errors="replace")]
