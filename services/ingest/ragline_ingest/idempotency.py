"""Idempotency-Key: a keyed ingest request is bound to its job before the job exists, so
every repeat of it (after a timeout, a disconnect or a crash) answers with that job.

The binding is one insert with the key as `_id`: a unique-index insert is atomic on
MongoDB and FerretDB alike (no compare-and-set), so of two concurrent requests exactly one
gets to create the job; the other replays it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ragline_core.errors import ConflictError, InvalidArgumentError
from ragline_ingest.store import IDEMPOTENCY, now

HEADER = "idempotency-key"
MAX_KEY_CHARS = 255
# Tries to bind a key whose previous binding expired or was released meanwhile.
_CLAIM_ATTEMPTS = 3

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


@dataclass(frozen=True)
class Claim:
    """What a key is bound to. `won`: this request bound it and must create the job."""

    job_id: str
    won: bool
    created_at: datetime
    # A whole reply stored by a version that remembered replies, not jobs (replayed as is
    # until it expires).
    response: bytes | None = None

    def age_s(self) -> float:
        return (now() - self.created_at).total_seconds()


def key_in_use() -> ConflictError:
    return ConflictError(
        "a request with this Idempotency-Key is still being accepted; retry shortly",
        reason="IDEMPOTENCY_KEY_IN_USE",
    )


class IdempotencyStore:
    def __init__(self, db: AsyncDatabase[Doc], ttl_s: int) -> None:
        self.db = db
        self.ttl = timedelta(seconds=ttl_s)

    @staticmethod
    def _id(tenant: str, key: str) -> str:
        return f"{tenant}/{hashlib.sha256(key.encode()).hexdigest()}"

    async def claim(self, tenant: str, key: str, request: bytes, job_id: str) -> Claim:
        """Binds the key to `job_id` (won), or returns the job it is bound to already;
        409 IDEMPOTENCY_KEY_REUSED if the key was used for a different request."""
        _id = self._id(tenant, key)
        digest = hashlib.sha256(request).hexdigest()
        for _ in range(_CLAIM_ATTEMPTS):
            stamp = now()
            try:
                await self.db[IDEMPOTENCY].insert_one(
                    {"_id": _id, "request_hash": digest, "job_id": job_id, "created_at": stamp}
                )
                return Claim(job_id, True, stamp)
            except DuplicateKeyError:
                pass
            doc = await self.db[IDEMPOTENCY].find_one({"_id": _id})
            if doc is None:
                continue  # released since the insert failed: bind it again
            if doc["created_at"] < now() - self.ttl:
                # Expired: only this very binding goes (a newer one stays).
                await self.db[IDEMPOTENCY].delete_one({"_id": _id, "created_at": doc["created_at"]})
                continue
            if doc["request_hash"] != digest:
                raise ConflictError(
                    "this Idempotency-Key was used for a different request",
                    reason="IDEMPOTENCY_KEY_REUSED",
                )
            return Claim(doc.get("job_id", ""), False, doc["created_at"], doc.get("response"))
        raise key_in_use()

    async def release(self, tenant: str, key: str, job_id: str) -> None:
        """Unbinds the key from a job that was never created (its request failed first, or
        the request that bound it died), so that a retry starts afresh."""
        await self.db[IDEMPOTENCY].delete_one({"_id": self._id(tenant, key), "job_id": job_id})
