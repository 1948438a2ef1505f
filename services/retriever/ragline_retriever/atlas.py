"""Dense search through MongoDB Atlas Vector Search, for corpora past one machine.

With VECTOR_BACKEND=atlas, ingest also writes each chunk's vector as a BSON vector
(`embedding`, float32) and the retriever sends the dense half of a search to Atlas's
`$vectorSearch` stage instead of its in-memory index: tenant, collection and the metadata
filter become its pre-filter, so `limit` hits still come back when that many match. The
Atlas index must declare the vector and every filtered field (docs/retrieval.md has the
definition). Keyword search and fusion stay in the retriever.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from bson.binary import Binary, BinaryVectorDtype
from pymongo.asynchronous.database import AsyncDatabase

from ragline_core.corpus import CHUNKS

VECTOR_FIELD = "embedding"
Doc = dict[str, Any]


def to_bson_vector(vector: npt.NDArray[np.float32]) -> Binary:
    return Binary.from_vector(
        np.asarray(vector, dtype=np.float32).tolist(), BinaryVectorDtype.FLOAT32
    )


def atlas_filter(tenant: str, collection: str, filters: dict[str, Any] | None) -> Doc:
    """The $vectorSearch pre-filter: our (already validated) filter with metadata paths."""
    clauses: list[Doc] = [{"tenant": {"$eq": tenant}}, {"collection": {"$eq": collection}}]
    if filters:
        clauses.append(_prefix(filters))
    return {"$and": clauses}


def _prefix(spec: Any) -> Any:
    if isinstance(spec, dict):
        out: Doc = {}
        for key, value in spec.items():
            if key in ("$and", "$or"):
                out[key] = [_prefix(v) for v in value]
            elif key.startswith("$"):
                out[key] = value
            elif isinstance(value, dict):
                out[f"metadata.{key}"] = value
            else:
                out[f"metadata.{key}"] = {"$eq": value}
        return out
    return spec


def pipeline(
    index: str,
    query: npt.NDArray[np.float32],
    k: int,
    tenant: str,
    collection: str,
    filters: dict[str, Any] | None,
    candidates_factor: int = 10,
) -> list[Doc]:
    return [
        {
            "$vectorSearch": {
                "index": index,
                "path": VECTOR_FIELD,
                "queryVector": to_bson_vector(query),
                "numCandidates": max(k * candidates_factor, 100),
                "limit": k,
                "filter": atlas_filter(tenant, collection, filters),
            }
        },
        {"$project": {"_id": 1, "score": {"$meta": "vectorSearchScore"}}},
    ]


class AtlasDense:
    def __init__(self, db: AsyncDatabase[Doc], index: str, candidates_factor: int) -> None:
        self.db = db
        self.index = index
        self.candidates_factor = candidates_factor

    async def search(
        self,
        query: npt.NDArray[np.float32],
        k: int,
        tenant: str,
        collection: str,
        filters: dict[str, Any] | None,
    ) -> list[tuple[str, float]]:
        """(chunk id, score), best first. Chunks of superseded generations may appear;
        the caller keeps only those its index knows as visible."""
        cursor = await self.db[CHUNKS].aggregate(
            pipeline(self.index, query, k, tenant, collection, filters, self.candidates_factor)
        )
        return [(str(d["_id"]), float(d["score"])) async for d in cursor]
