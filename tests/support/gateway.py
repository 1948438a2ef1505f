"""Helpers for gateway tests: key management through the real API."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx


async def create_key(
    api: httpx.AsyncClient, tenant: str, scopes: list[str], **extra: Any
) -> tuple[str, dict[str, Any]]:
    """Creates a key with the admin dev key; returns (plaintext, record)."""
    reply = await api.post("/api/v1/keys", json={"tenant": tenant, "scopes": scopes, **extra})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    return body["key"], body["api_key"]


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def wait_until(check: Any, timeout: float, interval: float = 0.1) -> float:
    """Awaits `check()` until true; returns the seconds it took (fails after timeout)."""
    started = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def cors_preflight(client: httpx.AsyncClient, path: str) -> httpx.Response:
    """A browser's preflight for a POST with a bearer token from the dev UI's origin."""
    return await client.options(
        path,
        headers={
            "origin": "http://localhost:3000",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )
