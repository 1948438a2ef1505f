"""FerretDB as built by scripts/install_ferretdb.sh selects by _id for any filter with a
top-level _id equality (its patch); the rest of the filter must still decide. These are
the compare-and-set shapes ingest, jobs and chat rely on."""

from __future__ import annotations

from pymongo import ReturnDocument


async def test_the_rest_of_a_filter_with_an_id_still_decides(scratch_db):
    docs = scratch_db["cas"]
    await docs.insert_many(
        [
            {"_id": "a", "state": "open", "owner": "", "n": 1},
            {"_id": "b", "state": "closed", "owner": "x", "n": 2},
        ]
    )
    assert await docs.find_one({"_id": "a", "state": "closed"}) is None
    assert (await docs.find_one({"_id": "a", "state": "open"}))["n"] == 1

    missed = await docs.update_one({"_id": "a", "owner": "someone"}, {"$set": {"n": 99}})
    assert missed.matched_count == 0
    claimed = await docs.find_one_and_update(
        {"_id": "a", "state": {"$in": ["open", "pending"]}, "owner": ""},
        {"$set": {"owner": "me"}},
        return_document=ReturnDocument.AFTER,
    )
    assert claimed is not None and claimed["owner"] == "me"
    again = await docs.find_one_and_update({"_id": "a", "owner": ""}, {"$set": {"owner": "you"}})
    assert again is None  # the compare-and-set lost: someone owns it now

    either = {"_id": "b", "$or": [{"state": "open"}, {"owner": "x"}]}
    assert (await docs.find_one(either))["n"] == 2
    neither = {"_id": "b", "$or": [{"state": "open"}, {"owner": "y"}]}
    assert await docs.find_one(neither) is None

    assert (await docs.delete_one({"_id": "b", "state": "open"})).deleted_count == 0
    assert (await docs.delete_one({"_id": "b", "state": "closed"})).deleted_count == 1
    assert await docs.count_documents({"_id": {"$in": ["a", "b"]}, "owner": "me"}) == 1
    assert [d["_id"] async for d in docs.find({"_id": "a", "n": {"$gte": 1}})] == ["a"]
