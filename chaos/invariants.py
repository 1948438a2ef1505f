"""The invariants every scenario is checked against (issue 17), each a reusable check that
returns a Verdict instead of raising, so a run reports every violation it finds.

- data: every acknowledged document is stored once with all its chunks; nothing deleted or
  superseded survives; no orphaned or phantom ids; no NaN vectors; every retriever replica's
  index holds exactly the database's visible chunk ids (count and checksum; chunk ids carry
  the generation, so the checksum compares generations too).
- requests: every request got an answer within its deadline + 1 s, a success or a clear
  error (503 naming the component, 504, 429): never a hang, a 500, or another tenant's data.
- accounting: usage analytics count every answered request of the tenant exactly once.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pymongo import AsyncMongoClient

from chaos.harness import Ledger, Outcome, Recorder, Tenant, now
from ragline_core.corpus import CHUNKS, COLLECTIONS, DOCUMENTS, chunk_id_hash, chunk_keys

ANALYTICS = "GET /api/v1/analytics/usage"


@dataclass
class Verdict:
    name: str
    ok: bool
    detail: str

    def cell(self) -> str:
        return f"{self.name} {'ok' if self.ok else 'VIOLATED'}"

    def target_cell(self) -> str:
        return f"target {self.name}: {'met' if self.ok else 'MISSED'} ({self.detail})"


async def check_data(
    mongo_uri: str, database: str, tenant: str, collection: str, ledger: Ledger
) -> tuple[Verdict, tuple[int, int]]:
    """The stored collection against the ledger; also the database's (chunks, checksum)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri)
    problems: list[str] = []
    try:
        db = client[database]
        info = await db[COLLECTIONS].find_one({"_id": f"{tenant}/{collection}"})
        dims = int(info["dimensions"]) if info else 0
        docs = [d async for d in db[DOCUMENTS].find({"tenant": tenant, "collection": collection})]
        counts = Counter(d["document_id"] for d in docs)
        if dupes := [k for k, n in counts.items() if n > 1]:
            problems.append(f"{len(dupes)} stored twice, e.g. {dupes[:3]}")
        stored = {d["document_id"]: d for d in docs}
        if missing := sorted(set(ledger.acked) - set(stored)):
            problems.append(f"{len(missing)} acknowledged but missing, e.g. {missing[:3]}")
        if resurrected := sorted(ledger.deleted & set(stored)):
            problems.append(f"{len(resurrected)} deleted but stored, e.g. {resurrected[:3]}")
        if phantom := sorted(set(stored) - set(ledger.attempted)):
            problems.append(f"{len(phantom)} never written (phantom), e.g. {phantom[:3]}")
        wrong = [
            k
            for k, content in ledger.acked.items()
            if k in stored
            and stored[k]["content"] != content
            and stored[k]["content"] not in ledger.attempted.get(k, set())
        ]
        if wrong:
            problems.append(f"{len(wrong)} with content never sent, e.g. {wrong[:3]}")
        stale = [
            k
            for k, content in ledger.acked.items()
            if k in stored and stored[k]["content"] != content
        ]
        visible: set[str] = set()
        for d in docs:
            visible.update(
                chunk_keys(
                    tenant,
                    collection,
                    d["document_id"],
                    int(d["generation"]),
                    int(d.get("chunk_count", 0)),
                )
            )
        chunk_ids: list[str] = []
        nan, bad_dims = 0, 0
        async for c in db[CHUNKS].find(
            {"tenant": tenant, "collection": collection}, {"_id": 1, "vector": 1}
        ):
            chunk_ids.append(str(c["_id"]))
            vector = np.frombuffer(c["vector"], dtype="<f4")
            nan += int(not np.all(np.isfinite(vector)))
            bad_dims += int(dims != 0 and vector.shape[0] != dims)
        present = set(chunk_ids)
        if lost := visible - present:
            problems.append(f"{len(lost)} visible chunks missing, e.g. {sorted(lost)[:2]}")
        if orphans := present - visible:
            problems.append(
                f"{len(orphans)} orphaned chunks (invisible: of superseded, deleted or unfinished "
                f"writes), e.g. {sorted(orphans)[:2]}"
            )
        if nan:
            problems.append(f"{nan} chunks with NaN/inf vectors")
        if bad_dims:
            problems.append(f"{bad_dims} chunks of the wrong dimensions")
        checksum = 0
        for key in visible & present:
            checksum ^= chunk_id_hash(key)
        detail = "; ".join(problems) or (
            f"{len(stored)} documents, {len(visible)} chunks"
            + (f" ({len(stale)} hold a later unacknowledged write)" if stale else "")
        )
        return Verdict("data", not problems, detail), (len(visible & present), checksum)
    finally:
        await client.close()


async def metric_samples(metrics_port: int) -> list[Sample]:
    """Every sample a process's /metrics shows."""
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


async def replica_view(metrics_port: int, tenant: str, collection: str) -> tuple[float, float]:
    chunks = checksum = math.nan
    for sample in await metric_samples(metrics_port):
        if sample.labels.get("tenant") == tenant and sample.labels.get("collection") == collection:
            if sample.name == "ragline_index_chunks":
                chunks = sample.value
            elif sample.name == "ragline_index_chunk_ids_checksum":
                checksum = sample.value
    return chunks, checksum


async def check_replicas(
    metrics_ports: list[int],
    tenant: str,
    collection: str,
    truth: tuple[int, int],
    timeout: float = 30.0,
) -> tuple[Verdict, float]:
    """Every replica's index equals the database once writes stop (waited for up to
    `timeout`); the verdict and the seconds it took to converge."""
    started = now()
    views: list[tuple[float, float] | str] = []
    while True:
        views = []
        for port in metrics_ports:
            try:
                views.append(await replica_view(port, tenant, collection))
            except httpx.HTTPError as exc:
                views.append(f"unreachable: {type(exc).__name__}")
        if all(v == (float(truth[0]), float(truth[1])) for v in views):
            took = now() - started
            return Verdict(
                "replicas", True, f"{len(views)} equal the database in {took:.1f}s"
            ), took
        if now() - started > timeout:
            return Verdict(
                "replicas", False, f"after {timeout:g}s database {truth}, replicas {views}"
            ), math.nan
        await asyncio.sleep(0.3)


def check_requests(outcomes: list[Outcome]) -> Verdict:
    bad = [o for o in outcomes if o.verdict == "bad"]
    if not bad:
        clear = Counter(o.status for o in outcomes if o.verdict == "clear")
        return Verdict("requests", True, f"{len(outcomes)} answered; clear errors {dict(clear)}")
    whys = Counter(f"{o.op}: {o.why}" for o in bad)
    return Verdict(
        "requests", False, f"{len(bad)}/{len(outcomes)} violations: {dict(whys.most_common(4))}"
    )


async def usage_requests(rec: Recorder, tenant: Tenant) -> int:
    """Requests counted for the tenant, the analytics calls left out."""
    reply = await rec.client.get("/api/v1/analytics/usage", headers=tenant.headers())
    if reply.status_code != 200:
        return -1
    return sum(
        int(e["stats"].get("requests", 0))
        for e in reply.json().get("endpoints", [])
        if e["endpoint"] != ANALYTICS
    )


async def check_accounting(rec: Recorder, tenant: Tenant, timeout: float = 20.0) -> Verdict:
    """The tenant's usage equals the answers it got: waits for the count to reach them
    (Envoy batches 1 s, the sink writes every 1 s), then a quiet spell, then compares."""
    expected = sum(1 for o in rec.outcomes if o.tenant == tenant.name and o.counted)
    started = now()
    counted = await usage_requests(rec, tenant)
    while counted < expected and now() - started < timeout:
        await asyncio.sleep(0.5)
        counted = await usage_requests(rec, tenant)
    await asyncio.sleep(2.5)
    counted = await usage_requests(rec, tenant)
    ok = counted == expected
    return Verdict("accounting", ok, f"{counted} counted for {expected} answered")
