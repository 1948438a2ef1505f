"""Atlas Vector Search: runs only against a real Atlas cluster (RAGLINE_TEST_ATLAS_URI)."""

from __future__ import annotations

import asyncio
import os
import uuid

import numpy as np
import pytest
from pymongo import AsyncMongoClient

from ragline_retriever.atlas import AtlasDense, to_bson_vector

ATLAS_URI = os.environ.get("RAGLINE_TEST_ATLAS_URI")
pytestmark = pytest.mark.skipif(not ATLAS_URI, reason="set RAGLINE_TEST_ATLAS_URI to run")


async def test_vector_search_prefilters_by_tenant_collection_and_metadata():
    client: AsyncMongoClient = AsyncMongoClient(ATLAS_URI)
    db = client[os.environ.get("RAGLINE_TEST_ATLAS_DB", "ragline_test")]
    collection = f"atlas{uuid.uuid4().hex[:8]}"
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(6, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    docs = [
        {
            "_id": f"t1/{collection}/d{i}/1/0",
            "tenant": "t1" if i < 5 else "t2",
            "collection": collection,
            "document_id": f"d{i}",
            "generation": 1,
            "metadata": {"category": "a" if i % 2 else "b"},
            "embedding": to_bson_vector(vectors[i]),
        }
        for i in range(6)
    ]
    await db["chunks"].insert_many(docs)
    try:
        dense = AtlasDense(db, os.environ.get("ATLAS_VECTOR_INDEX", "ragline_chunks_vector"), 10)
        found: list[tuple[str, float]] = []
        for _ in range(60):  # the Atlas index catches up asynchronously
            found = await dense.search(vectors[1], 5, "t1", collection, {"category": "a"})
            if found:
                break
            await asyncio.sleep(1)
        ids = [chunk_id for chunk_id, _ in found]
        assert ids[0].endswith("/d1/1/0")
        assert all(i.split("/")[2] in ("d1", "d3") for i in ids)
    finally:
        await db["chunks"].delete_many({"collection": collection})
        await client.close()
