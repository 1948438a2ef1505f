"""Clients for the stores: MongoDB (PyMongo async) and Redis, with short timeouts so a
down store fails fast instead of hanging a request."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from pymongo import AsyncMongoClient

from ragline_core.settings import CoreSettings


def mongo_client(settings: CoreSettings, appname: str) -> AsyncMongoClient[dict[str, Any]]:
    """A pooled async client; the URI (which may hold credentials) is never logged."""
    timeout_ms = 2000
    return AsyncMongoClient(
        settings.MONGODB_URI.get_secret_value(),
        appname=appname,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        tz_aware=True,
    )


def redis_client(settings: CoreSettings) -> aioredis.Redis:
    """A pooled async Redis client that gives up quickly when Redis is down."""
    return aioredis.Redis.from_url(
        settings.REDIS_URL.get_secret_value(),
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        health_check_interval=10,
    )
