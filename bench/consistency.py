"""Does a retriever replica's index hold exactly the chunks the database shows as visible?
(the replica invariant, docs/retrieval.md "Replica consistency")

Measured from outside: the database's visible chunk ids (count and checksum, read with
pymongo) against the replica's `ragline_index_chunks` and
`ragline_index_chunk_ids_checksum`, plus the replica's own reconciliation figures
(`ragline_index_gap_chunks`, `ragline_index_repairs_total`).
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from pymongo import MongoClient

from ragline_core.corpus import chunk_id_hash, chunk_keys

# The tenant of dev-key-1, the key benchmarks call with.
DEV_TENANT = "dev-1"


@dataclass(frozen=True)
class Consistency:
    db_chunks: int
    index_chunks: int
    same_ids: bool
    gap_metric: float | None
    repairs: dict[str, float]


def database_chunks(mongo_port: int, database: str, collection: str) -> tuple[int, int]:
    """(visible chunks, XOR of their id hashes) of a dev-tenant collection."""
    client: MongoClient[dict[str, Any]] = MongoClient(f"mongodb://127.0.0.1:{mongo_port}")
    with client:
        docs = client[database]["documents"].find(
            {"tenant": DEV_TENANT, "collection": collection},
            {"document_id": 1, "generation": 1, "chunk_count": 1},
        )
        count, checksum = 0, 0
        for d in docs:
            keys = chunk_keys(
                DEV_TENANT, collection, d["document_id"], d["generation"], d["chunk_count"]
            )
            for key in keys:
                checksum ^= chunk_id_hash(key)
            count += len(keys)
    return count, checksum


def replica_samples(metrics_port: int, collection: str) -> dict[str, Any]:
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    out: dict[str, Any] = {"repairs": {}}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("collection") == collection:
                out[sample.name] = sample.value
            elif sample.name == "ragline_index_repairs_total":
                out["repairs"][sample.labels["reason"]] = sample.value
    return out


def check(stack: Any, collection: str) -> Consistency:
    count, checksum = database_chunks(stack.cfg.mongo_port, stack.cfg.database, collection)
    seen = replica_samples(stack.cfg.metrics_ports["retriever"], collection)
    return Consistency(
        db_chunks=count,
        index_chunks=int(seen.get("ragline_index_chunks", -1)),
        same_ids=seen.get("ragline_index_chunk_ids_checksum") == float(checksum),
        gap_metric=seen.get("ragline_index_gap_chunks"),
        repairs=seen["repairs"],
    )
