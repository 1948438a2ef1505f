"""Conversation retention (CHAT_CONVERSATION_RETENTION_DAYS) on the real FerretDB: a sweep
deletes the conversations idle past the retention, with every message, of any tenant; the
recent ones, and one written to while the sweep runs, stay."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from ragline_chat.domain import StoredMessage
from ragline_chat.retention import ConversationRetention
from ragline_chat.store import ConversationStore, now


def _message(content: str) -> StoredMessage:
    return StoredMessage(
        message_id=uuid.uuid4().hex,
        role="user",
        content=content,
        status="COMPLETE",
        sequence=0,
        created_at=datetime.now(UTC),
    )


async def _conversation(store: ConversationStore, tenant: str, idle: timedelta, turns: int) -> str:
    conv = await store.create(tenant, "t", "docs", "extractive")
    for i in range(turns):
        await store.append(tenant, conv.conversation_id, _message(f"m{i}"))
    await store.conversations.update_one(
        {"_id": conv.conversation_id}, {"$set": {"updated_at": now() - idle}}
    )
    return conv.conversation_id


async def test_a_sweep_deletes_idle_conversations_with_their_messages_and_keeps_the_rest(
    scratch_db,
):
    store = ConversationStore(scratch_db)
    await store.ensure_indexes()
    old_a = await _conversation(store, "acme", timedelta(days=31), 3)
    old_b = await _conversation(store, "globex", timedelta(days=40), 2)
    recent = await _conversation(store, "acme", timedelta(days=29), 4)

    purged = await ConversationRetention(store, timedelta(days=30)).sweep()

    assert purged == 2
    ids = {d["_id"] async for d in scratch_db["chat_conversations"].find({})}
    assert ids == {recent}
    left = [d["conversation_id"] async for d in scratch_db["chat_messages"].find({})]
    assert sorted(left) == [recent] * 4, f"messages of deleted conversations left: {left}"
    assert old_a not in left and old_b not in left


async def test_a_conversation_written_to_after_it_was_found_idle_is_kept(scratch_db):
    store = ConversationStore(scratch_db)
    idle = await _conversation(store, "acme", timedelta(days=31), 1)
    original = store.conversations.find

    def find_then_write(*args, **kwargs):  # the user answers between the read and the delete
        cursor = original(*args, **kwargs)
        store.conversations.find = original
        return _WriteFirst(cursor, store, idle)

    store.conversations.find = find_then_write  # type: ignore[method-assign]
    assert await store.purge_idle(now() - timedelta(days=30)) == 0
    kept = await store.get("acme", idle, with_messages=True)
    assert [m.content for m in kept.messages] == ["m0", "late"]


class _WriteFirst:
    """A cursor that reads, then appends a message to the conversation, then yields."""

    def __init__(self, cursor, store: ConversationStore, conversation_id: str) -> None:
        self.cursor, self.store, self.conversation_id = cursor, store, conversation_id

    def limit(self, n: int) -> _WriteFirst:
        self.cursor = self.cursor.limit(n)
        return self

    def __aiter__(self):
        return self._iterate()

    async def _iterate(self):
        found = [doc async for doc in self.cursor]  # read while it was still idle
        await self.store.append("acme", self.conversation_id, _message("late"))
        for doc in found:
            yield doc


async def test_a_sweep_with_nothing_idle_deletes_nothing(scratch_db):
    store = ConversationStore(scratch_db)
    fresh = await _conversation(store, "acme", timedelta(0), 1)
    assert await ConversationRetention(store, timedelta(days=1)).sweep() == 0
    assert (await store.get("acme", fresh, with_messages=False)).conversation_id == fresh
