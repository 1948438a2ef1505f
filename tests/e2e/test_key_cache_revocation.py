"""A revoked key stays revoked at the gateway: a slow call that started before the
revocation must not put the key back into Envoy's key cache (envoy/key_cache.lua) when it
finishes. The cache entry's lifetime counts from the auth service's decision, never from
the response."""

from __future__ import annotations

import asyncio
import secrets
import time

import httpx
import pytest

from ragline_stack.stack import Stack
from tests.support.fake_llm import FakeLlm
from tests.support.gateway import bearer, create_key

pytestmark = pytest.mark.e2e

TTL_S = 1.0  # GATEWAY_KEY_CACHE_TTL's default, which the test stack keeps
# Concurrent slow calls, each on its own connection: Envoy's workers each get some, so
# whichever worker answers a poll has seen a slow call finish.
SLOW_CALLS = 4


async def _slow_chat(stack: Stack, key: str, collection: str) -> tuple[int, float]:
    """A non-streamed chat (Envoy sees its response only at the end); status, seconds."""
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=stack.cfg.base_url, timeout=60) as client:
        reply = await client.post(
            "/api/v1/chat",
            json={
                "message": "Tell me about wrens",
                "model": "gpt-4o-mini",
                "collection": collection,
            },
            headers=bearer(key),
        )
    return reply.status_code, time.monotonic() - started


async def _poll(stack: Stack, key: str) -> int:
    """One request on a new connection (so polls land on every Envoy worker)."""
    async with httpx.AsyncClient(base_url=stack.cfg.base_url, timeout=10) as client:
        reply = await client.get(
            "/api/v1/chat-models", headers={**bearer(key), "connection": "close"}
        )
    return reply.status_code


async def test_a_slow_call_does_not_bring_back_a_key_revoked_while_it_ran(
    stack, api, anon_api, fake_chat_openai: FakeLlm
):
    key, record = await create_key(
        api, f"kc-{secrets.token_hex(4)}", ["chat", "ingest"], tier="enterprise"
    )
    doc = {"title": "Wren", "content": "The wren is a small brown bird with a loud song."}
    ingest = await anon_api.post(
        "/api/v1/ingest", json={"collection": "birds", "documents": [doc]}, headers=bearer(key)
    )
    assert ingest.status_code == 200, ingest.text
    # Setup, not an assertion: the ingest's own cached answers expire first, so only the
    # slow calls' answers are in play below.
    await asyncio.sleep(TTL_S + 0.2)
    # ~2.5 s per call: well over the cache's TTL.
    fake_chat_openai.reset(
        answer="small brown bird " * 4, first_token_delay_s=1.5, token_delay_s=0.1
    )
    try:
        calls = [asyncio.create_task(_slow_chat(stack, key, "birds")) for _ in range(SLOW_CALLS)]
        # Every slow call has passed the gateway once the model has its request.
        deadline = time.monotonic() + 20
        while len(fake_chat_openai.script.requests) < SLOW_CALLS:
            assert time.monotonic() < deadline, "the slow calls never reached the model"
            await asyncio.sleep(0.05)
        revoked = await api.post(f"/api/v1/keys/{record['key_id']}:revoke", json={})
        assert revoked.status_code == 200, revoked.text
        revoked_at = time.monotonic()

        statuses: list[tuple[float, int]] = []
        finished_at: float | None = None
        # Poll from the revocation until well after the last slow call finished (past
        # the TTL a stored answer would have lived).
        while finished_at is None or time.monotonic() < finished_at + 2 * TTL_S + 0.5:
            statuses.append((time.monotonic() - revoked_at, await _poll(stack, key)))
            if finished_at is None and all(c.done() for c in calls):
                finished_at = time.monotonic()
            assert time.monotonic() - revoked_at < 60, "the slow calls never finished"
        results = [c.result() for c in calls]
    finally:
        fake_chat_openai.reset()

    # The slow calls were allowed before the revocation and outlived the TTL.
    assert all(status == 200 for status, _ in results), results
    assert min(took for _, took in results) > TTL_S + 0.3, results
    # From the revocation until well after the slow calls finished, every poll is 401.
    allowed = [(round(t, 2), s) for t, s in statuses if s != 401]
    assert len(statuses) > 10 and not allowed, f"answered after the revocation: {allowed}"
