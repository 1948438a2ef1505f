"""The conversation store on the real FerretDB: messages keyed by conversation and
position (read by _id, FerretDB's only indexed filter), conversations of the older layout
still readable and deletable, and one tenant never reading another's."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from ragline_chat.domain import StoredMessage
from ragline_chat.store import ConversationStore, message_key
from ragline_core.errors import NotFoundError


def _message(content: str, role: str = "user") -> StoredMessage:
    return StoredMessage(
        message_id=uuid.uuid4().hex,
        role=role,
        content=content,
        status="COMPLETE",
        sequence=0,
        created_at=datetime.now(UTC),
    )


async def test_messages_are_keyed_by_position_and_read_back_in_order(scratch_db):
    store = ConversationStore(scratch_db)
    await store.ensure_indexes()
    conv = await store.create("acme", "t", "docs", "extractive")
    sent = [_message(f"m{i}", "user" if i % 2 == 0 else "assistant") for i in range(5)]
    for message in sent:
        await store.append("acme", conv.conversation_id, message)

    got = await store.get("acme", conv.conversation_id, with_messages=True)
    assert [m.content for m in got.messages] == [f"m{i}" for i in range(5)]
    assert [m.message_id for m in got.messages] == [m.message_id for m in sent]
    assert [m.sequence for m in got.messages] == list(range(5))
    raw = await scratch_db["chat_messages"].find_one({"_id": message_key(conv.conversation_id, 3)})
    assert raw is not None and raw["content"] == "m3" and raw["tenant"] == "acme"

    with pytest.raises(NotFoundError):
        await store.get("other", conv.conversation_id, with_messages=True)
    with pytest.raises(NotFoundError):
        await store.append("other", conv.conversation_id, _message("intrude"))
    with pytest.raises(NotFoundError):
        await store.delete("other", conv.conversation_id)

    assert await store.delete("acme", conv.conversation_id) == 5
    assert await scratch_db["chat_messages"].count_documents({}) == 0
    with pytest.raises(NotFoundError):
        await store.get("acme", conv.conversation_id, with_messages=False)


async def test_a_position_whose_message_was_never_written_is_skipped(scratch_db):
    store = ConversationStore(scratch_db)
    conv = await store.create("acme", "t", "docs", "extractive")
    await store.append("acme", conv.conversation_id, _message("first"))
    # An append whose insert failed after taking its position leaves a gap.
    await scratch_db["chat_conversations"].update_one(
        {"_id": conv.conversation_id}, {"$inc": {"message_count": 1}}
    )
    await store.append("acme", conv.conversation_id, _message("third"))
    got = await store.get("acme", conv.conversation_id, with_messages=True)
    assert [(m.sequence, m.content) for m in got.messages] == [(0, "first"), (2, "third")]
    assert got.message_count == 3
    assert await store.delete("acme", conv.conversation_id) == 2


async def test_conversations_of_the_older_layout_still_read_append_and_delete(scratch_db):
    store = ConversationStore(scratch_db)
    conv_id, now = uuid.uuid4().hex, datetime.now(UTC)
    await scratch_db["chat_conversations"].insert_one(
        {
            "_id": conv_id,
            "tenant": "acme",
            "title": "old",
            "collection": "docs",
            "model": "extractive",
            "created_at": now,
            "updated_at": now,
            "message_count": 2,
        }
    )
    old_ids = [uuid.uuid4().hex, uuid.uuid4().hex]
    await scratch_db["chat_messages"].insert_many(
        [
            {
                "_id": old_ids[i],
                "conversation_id": conv_id,
                "tenant": "acme",
                "sequence": i,
                "role": "user",
                "content": f"old{i}",
                "created_at": now,
            }
            for i in range(2)
        ]
    )
    await store.append("acme", conv_id, _message("new"))
    got = await store.get("acme", conv_id, with_messages=True)
    assert [m.content for m in got.messages] == ["old0", "old1", "new"]
    assert [m.message_id for m in got.messages][:2] == old_ids
    assert await store.delete("acme", conv_id) == 3
    assert await scratch_db["chat_messages"].count_documents({}) == 0
