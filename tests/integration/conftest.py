"""Fixtures of the integration tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient


@pytest.fixture
async def scratch_db(stack) -> AsyncIterator[Any]:
    """A database of its own on the stack's FerretDB, dropped afterwards."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(f"mongodb://127.0.0.1:{stack.cfg.mongo_port}")
    name = f"scratch_{uuid.uuid4().hex[:8]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()
