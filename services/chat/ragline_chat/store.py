"""Conversations and their messages in MongoDB (FerretDB locally).

Portable subset only: single-document atomic updates and unique indexes, no transactions.
A message's position comes from an atomic `$inc` on its conversation, and the unique
(conversation_id, sequence) index makes a duplicate impossible. Every conversation read or
write filters on its _id and tenant, so one tenant never sees another's conversations
(they get 404, not 403).

A message is stored under the key "<conversation_id>/<sequence>" (its public id is a field),
so a conversation's messages are read by _id, one point lookup each: FerretDB's SQLite
backend serves only a filter with an `_id` equality from an index, and a query on
`conversation_id` reads every message of every tenant. Conversations created before this
layout (no `keyed_messages` on the conversation) are still read with that query.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, TypeVar

from pymongo import ASCENDING, DESCENDING, DeleteOne, ReturnDocument
from pymongo.errors import PyMongoError

from ragline_chat.domain import Citation, Conversation, StoredMessage, Usage
from ragline_core.errors import InvalidArgumentError, NotFoundError, UnavailableError

log = logging.getLogger("ragline.chat.store")
T = TypeVar("T")
# Point lookups in flight at once while reading one conversation.
_READ_CONCURRENCY = 32


def message_key(conversation_id: str, sequence: int) -> str:
    """A stored message's _id: its conversation and its position in it."""
    return f"{conversation_id}/{sequence}"


def now() -> datetime:
    """Now, at the millisecond precision the database keeps."""
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def new_id() -> str:
    return uuid.uuid4().hex


def not_found(conversation_id: str) -> NotFoundError:
    return NotFoundError(
        f"conversation {conversation_id!r} not found",
        reason="CONVERSATION_NOT_FOUND",
        field="conversation_id",
    )


class ConversationStore:
    def __init__(self, db: Any) -> None:
        self.conversations = db["chat_conversations"]
        self.messages = db["chat_messages"]

    async def _guard(self, op: Callable[[], Awaitable[T]]) -> T:
        try:
            return await op()
        except PyMongoError:
            log.exception("conversation store failed")
            raise UnavailableError(
                "the conversation store is unavailable", reason="STORE_UNAVAILABLE"
            ) from None

    async def ensure_indexes(self) -> None:
        await self.conversations.create_index(
            [("tenant", ASCENDING), ("updated_at", DESCENDING), ("_id", DESCENDING)]
        )
        await self.messages.create_index(
            [("conversation_id", ASCENDING), ("sequence", ASCENDING)], unique=True
        )

    async def create(
        self, tenant: str, title: str, collection: str, model: str, conversation_id: str = ""
    ) -> Conversation:
        t = now()
        doc = {
            "_id": conversation_id or new_id(),
            "tenant": tenant,
            "title": title,
            "collection": collection,
            "model": model,
            "created_at": t,
            "updated_at": t,
            "message_count": 0,
            "keyed_messages": True,
        }
        await self._guard(lambda: self.conversations.insert_one(doc))
        return _conversation(doc)

    async def get(self, tenant: str, conversation_id: str, with_messages: bool) -> Conversation:
        """The conversation if `tenant` owns it, else 404 (the same for another tenant's)."""
        doc: dict[str, Any] | None = await self._guard(
            lambda: self.conversations.find_one({"_id": conversation_id, "tenant": tenant})
        )
        if doc is None:
            raise not_found(conversation_id)
        conv = _conversation(doc)
        if with_messages:
            conv.messages = await self._messages(doc)
        return conv

    async def _messages(self, conversation: dict[str, Any]) -> list[StoredMessage]:
        conversation_id, tenant = conversation["_id"], conversation["tenant"]
        if not conversation.get("keyed_messages"):
            return await self._legacy_messages(tenant, conversation_id)
        keys = [message_key(conversation_id, i) for i in range(conversation["message_count"])]
        limit = asyncio.Semaphore(_READ_CONCURRENCY)

        async def one(key: str) -> dict[str, Any] | None:
            async with limit:
                found: dict[str, Any] | None = await self.messages.find_one({"_id": key})
                return found

        async def run() -> list[dict[str, Any] | None]:
            return list(await asyncio.gather(*(one(k) for k in keys)))

        # A position whose insert failed after its $inc has no message: skipped.
        return [_message(d) for d in await self._guard(run) if d and d.get("tenant") == tenant]

    async def _legacy_messages(self, tenant: str, conversation_id: str) -> list[StoredMessage]:
        async def run() -> list[dict[str, Any]]:
            cursor = self.messages.find(
                {"conversation_id": conversation_id, "tenant": tenant}
            ).sort("sequence", ASCENDING)
            return [d async for d in cursor]

        return [_message(d) for d in await self._guard(run)]

    async def append(
        self, tenant: str, conversation_id: str, message: StoredMessage, **fields: str
    ) -> StoredMessage:
        """Stores `message` as the conversation's next one; sets its sequence."""
        t = now()
        updated = await self._guard(
            lambda: self.conversations.find_one_and_update(
                {"_id": conversation_id, "tenant": tenant},
                {"$inc": {"message_count": 1}, "$set": {"updated_at": t, **fields}},
                return_document=ReturnDocument.AFTER,
            )
        )
        if updated is None:
            raise not_found(conversation_id)
        message.sequence = int(updated["message_count"]) - 1
        message.created_at = t
        keyed = bool(updated.get("keyed_messages"))
        doc = {
            "_id": message_key(conversation_id, message.sequence) if keyed else message.message_id,
            "message_id": message.message_id,
            "conversation_id": conversation_id,
            "tenant": tenant,
            "sequence": message.sequence,
            "role": message.role,
            "content": message.content,
            "status": message.status,
            "model": message.model,
            "citations": [asdict(c) for c in message.citations],
            "usage": asdict(message.usage),
            "error_reason": message.error_reason,
            "search_query": message.search_query,
            "created_at": t,
        }
        await self._guard(lambda: self.messages.insert_one(doc))
        return message

    async def list(
        self, tenant: str, page_size: int, page_token: str
    ) -> tuple[list[Conversation], str]:
        query: dict[str, Any] = {"tenant": tenant}
        if page_token:
            updated_at, last_id = _decode_token(page_token)
            query["$or"] = [
                {"updated_at": {"$lt": updated_at}},
                {"updated_at": updated_at, "_id": {"$lt": last_id}},
            ]

        async def run() -> list[dict[str, Any]]:
            cursor = (
                self.conversations.find(query)
                .sort([("updated_at", DESCENDING), ("_id", DESCENDING)])
                .limit(page_size + 1)
            )
            return [d async for d in cursor]

        docs = await self._guard(run)
        more = len(docs) > page_size
        docs = docs[:page_size]
        token = _encode_token(docs[-1]["updated_at"], docs[-1]["_id"]) if more else ""
        return [_conversation(d) for d in docs], token

    async def delete(self, tenant: str, conversation_id: str) -> int:
        """Deletes the conversation, then its messages; returns how many messages went."""
        # The deleted document's count covers every position handed out before it went:
        # an append after this fails to find the conversation.
        deleted: dict[str, Any] | None = await self._guard(
            lambda: self.conversations.find_one_and_delete(
                {"_id": conversation_id, "tenant": tenant}
            )
        )
        if deleted is None:
            raise not_found(conversation_id)
        return await self._delete_messages(deleted)

    async def purge_idle(self, before: datetime, limit: int = 1000) -> int:
        """Deletes up to `limit` conversations (of any tenant) whose last message is older
        than `before`, with their messages; returns how many conversations went. The delete
        repeats the age condition, so one written to meanwhile stays."""

        async def idle() -> list[dict[str, Any]]:
            # Not by _id: a full read of the table, acceptable once an hour.
            cursor = self.conversations.find(
                {"updated_at": {"$lt": before}}, {"_id": 1, "tenant": 1}
            ).limit(limit)
            return [d async for d in cursor]

        purged = 0
        for doc in await self._guard(idle):
            deleted: dict[str, Any] | None = await self._guard(
                lambda doc=doc: self.conversations.find_one_and_delete(  # type: ignore[misc]
                    {"_id": doc["_id"], "tenant": doc["tenant"], "updated_at": {"$lt": before}}
                )
            )
            if deleted is not None:
                await self._delete_messages(deleted)
                purged += 1
        return purged

    async def _delete_messages(self, deleted: dict[str, Any]) -> int:
        """The messages of a conversation document just deleted; how many went."""
        conversation_id, tenant = deleted["_id"], deleted["tenant"]
        if not deleted.get("keyed_messages"):
            removed = await self._guard(
                lambda: self.messages.delete_many(
                    {"conversation_id": conversation_id, "tenant": tenant}
                )
            )
            return int(removed.deleted_count)
        count = int(deleted["message_count"])
        if count == 0:
            return 0
        deletes = [DeleteOne({"_id": message_key(conversation_id, i)}) for i in range(count)]
        outcome = await self._guard(lambda: self.messages.bulk_write(deletes, ordered=False))
        return int(outcome.deleted_count)


def _encode_token(updated_at: datetime, last_id: str) -> str:
    raw = json.dumps([updated_at.isoformat(), last_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        stamp, last_id = json.loads(raw)
        return datetime.fromisoformat(stamp), str(last_id)
    except (ValueError, TypeError):
        raise InvalidArgumentError(
            "page_token is not a token from a previous response",
            reason="INVALID_PAGE_TOKEN",
            field="page_token",
        ) from None


def _conversation(doc: dict[str, Any]) -> Conversation:
    return Conversation(
        conversation_id=doc["_id"],
        tenant=doc["tenant"],
        title=doc.get("title", ""),
        collection=doc.get("collection", ""),
        model=doc.get("model", ""),
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
        message_count=int(doc.get("message_count", 0)),
    )


def _message(doc: dict[str, Any]) -> StoredMessage:
    return StoredMessage(
        message_id=doc.get("message_id", doc["_id"]),
        role=doc["role"],
        content=doc.get("content", ""),
        status=doc.get("status", ""),
        sequence=int(doc["sequence"]),
        created_at=doc["created_at"],
        model=doc.get("model", ""),
        citations=[Citation(**c) for c in doc.get("citations", [])],
        usage=Usage(**doc.get("usage", {})),
        error_reason=doc.get("error_reason", ""),
        search_query=doc.get("search_query", ""),
    )
