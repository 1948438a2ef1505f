"""The chat WebSocket from a test: one question, every event until the terminal one."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp


async def ask(ws: aiohttp.ClientWebSocketResponse, payload: dict[str, Any]) -> list[dict[str, Any]]:
    await ws.send_json(payload)
    events = []
    while True:
        event = await asyncio.wait_for(ws.receive_json(), 30)
        events.append(event)
        if "done" in event or "error" in event:
            return events
