"""Idempotency-Key: the first result of a keyed ingest request is replayed for repeats."""

from __future__ import annotations

import contextlib
import hashlib
from datetime import timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ragline_core.errors import ConflictError, InvalidArgumentError
from ragline_ingest.store import IDEMPOTENCY, now

HEADER = "idempotency-key"
MAX_KEY_CHARS = 255

Doc = dict[str, Any]


def key_of(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == HEADER and isinstance(value, str):
            if not value or len(value) > MAX_KEY_CHARS:
                raise InvalidArgumentError(
                    f"Idempotency-Key must be 1-{MAX_KEY_CHARS} characters",
                    reason="BAD_IDEMPOTENCY_KEY",
                    field="Idempotency-Key",
                )
            return value
    return None


class IdempotencyStore:
    def __init__(self, db: AsyncDatabase[Doc], ttl_s: int) -> None:
        self.db = db
        self.ttl = timedelta(seconds=ttl_s)

    @staticmethod
    def _id(tenant: str, key: str) -> str:
        return f"{tenant}/{hashlib.sha256(key.encode()).hexdigest()}"

    async def replay(self, tenant: str, key: str, request: bytes) -> bytes | None:
        """The stored response for this key, None if new; 409 if the key was used for a
        different request."""
        doc = await self.db[IDEMPOTENCY].find_one({"_id": self._id(tenant, key)})
        if doc is None:
            return None
        if doc["created_at"] < now() - self.ttl:
            await self.db[IDEMPOTENCY].delete_one({"_id": doc["_id"]})
            return None
        if doc["request_hash"] != hashlib.sha256(request).hexdigest():
            raise ConflictError(
                "this Idempotency-Key was used for a different request",
                reason="IDEMPOTENCY_KEY_REUSED",
            )
        response: bytes = doc["response"]
        return response

    async def remember(self, tenant: str, key: str, request: bytes, response: bytes) -> None:
        with contextlib.suppress(DuplicateKeyError):
            await self.db[IDEMPOTENCY].insert_one(
                {
                    "_id": self._id(tenant, key),
                    "request_hash": hashlib.sha256(request).hexdigest(),
                    "response": response,
                    "created_at": now(),
                }
            )
