"""Scenario 10, the soak: a mixed load held at half the measured capacity for a long time
(long profile: 30 minutes), watching every process for slow leaks: resident memory, open file
descriptors, restarts, and the stores (Redis keys and memory, the database's files and
collections) for growth beyond the data written."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from pymongo import AsyncMongoClient

from chaos.harness import (
    COLLECTION,
    ChaosStack,
    Ledger,
    Recorder,
    Tenant,
    new_tenant,
    now,
    paragraph,
    run_load,
)
from chaos.invariants import Verdict
from chaos.profiles import Profile
from chaos.scenarios import (
    Result,
    errors,
    finish_jobs,
    ingest,
    invariants,
    own,
    percentile,
    seed,
)
from ragline_core.corpus import CHUNKS, DOCUMENTS

# Bounded variety: a soak that sends a new text every time grows the caches by design
# (until their TTL), which would hide a real leak; these pools fill them in the first
# minutes, after which growth is a finding.
QUERIES = 60
TEXTS = 120
QUESTIONS = 30
# Documents rewritten in place (new content each time): the data stays the same size.
REWRITTEN = 40
VERSIONS = 3
# The first third of the run is warm-up (caches filling, arenas growing): slopes and
# growth are measured over the rest.
WARMUP_SHARE = 1 / 3
RSS_SLOPE_MB_PER_MIN = 1.0
# Open descriptors may move by a few (a connection pool's churn), not grow with time.
FD_MARGIN = 8
ERROR_RATE = 0.001
# Redis keys without an expiry (every cache entry and rate-limit window has one, so those
# are bounded by rate x TTL): after warm-up they may not grow by more than this.
REDIS_PERSISTENT_MARGIN = 10


@dataclass
class Sample:
    at: float
    rss_kb: dict[str, int]
    fds: dict[str, int]
    pids: dict[str, int]
    redis_keys: int = 0
    redis_persistent: int = 0
    redis_bytes: int = 0
    db_bytes: int = 0


@dataclass
class Watch:
    """Samples of every component's process and of the stores, taken every `interval`."""

    cs: ChaosStack
    interval: float
    samples: list[Sample] = field(default_factory=list)

    def processes(self) -> dict[str, int]:
        pids = {}
        for name in self.cs.stack.components():
            pid = self.cs.stack.child_pid(name)
            if pid is not None:
                pids[name] = pid
        return pids

    async def take(self, redis: aioredis.Redis) -> Sample:
        pids = self.processes()
        rss, fds = {}, {}
        for name, pid in pids.items():
            with contextlib.suppress(OSError, ValueError):
                rss[name], fds[name] = process_stats(pid)
        sample = Sample(
            now(), rss, fds, pids, db_bytes=folder_bytes(self.cs.cfg.run_dir / "ferretdb")
        )
        with contextlib.suppress(Exception):
            db0 = (await redis.info("keyspace")).get("db0") or {}
            sample.redis_keys = int(db0.get("keys", 0))
            sample.redis_persistent = sample.redis_keys - int(db0.get("expires", 0))
            sample.redis_bytes = int((await redis.info("memory"))["used_memory"])
        self.samples.append(sample)
        return sample

    async def run(self, stop: asyncio.Event) -> None:
        redis = aioredis.Redis.from_url(f"redis://127.0.0.1:{self.cs.cfg.redis_port}/0")
        try:
            while not stop.is_set():
                await self.take(redis)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.interval)
            await self.take(redis)
        finally:
            await redis.aclose()


def process_stats(pid: int) -> tuple[int, int]:
    """(resident memory in KiB, open file descriptors) of a process, from /proc."""
    fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]), fds
    raise ValueError(f"no VmRSS for {pid}")


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def slope_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per minute (0 for fewer than 3)."""
    if len(points) < 3:
        return 0.0
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return 60 * cov / var


@dataclass
class Rewriter:
    """Rewrites one of REWRITTEN documents with new content per call; a document is written
    again only after its previous write ended (the ledger's rule)."""

    rec: Recorder
    tenant: Tenant
    ledger: Ledger
    busy: set[str] = field(default_factory=set)
    turn: int = 0
    writes: dict[int, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    async def __call__(self) -> None:
        free = [i for i in range(REWRITTEN) if f"{self.tenant.prefix}{i}" not in self.busy]
        if not free:
            return
        i = free[self.turn % len(free)]
        self.turn += 1
        self.writes[i] = self.writes.get(i, 0) + 1
        doc_id = f"{self.tenant.prefix}{i}"
        self.busy.add(doc_id)
        try:
            # The next of VERSIONS contents: every write changes the document, and the
            # texts (and so the embedding cache) stay a bounded set.
            doc = {
                "id": doc_id,
                "title": f"note {i}",
                "content": paragraph(50_000 + i * VERSIONS + self.writes[i] % VERSIONS, 40),
            }
            job_id = await ingest(self.rec, self.tenant, self.ledger, [doc])
            if job_id and self.ledger.acked.get(doc_id) != doc["content"]:
                # Accepted, still running: polled to its end before the document may be
                # written again.
                self.problems += await finish_jobs(
                    self.rec, self.tenant, self.ledger, {job_id: [doc]}, 60
                )
        finally:
            self.busy.discard(doc_id)


def soak_ops(rec: Recorder, tenant: Tenant, writer: Rewriter) -> list[Callable[[], Awaitable[Any]]]:
    def pick(n: int) -> int:
        return secrets.randbelow(n)

    async def search() -> None:
        await rec.call(
            "search",
            tenant,
            "POST",
            "/api/v1/search",
            json={"query": paragraph(pick(QUERIES), 4), "collection": COLLECTION, "limit": 5},
        )

    async def embed() -> None:
        await rec.call(
            "embed",
            tenant,
            "POST",
            "/api/v1/embeddings",
            json={"texts": [paragraph(pick(TEXTS), 12)]},
        )

    async def chat() -> None:
        await rec.call(
            "chat",
            tenant,
            "POST",
            "/api/v1/chat",
            json={
                "message": f"What is {paragraph(pick(QUESTIONS), 3)}?",
                "collection": COLLECTION,
                "model": "extractive",
            },
        )

    # Reads outnumber writes, as in a RAG service's life.
    return [search, search, embed, chat, search, writer]


async def paced(
    ops: list[Callable[[], Awaitable[Any]]], rate: float, seconds: float, max_in_flight: int
) -> tuple[int, int]:
    """An open loop: one op every 1/rate seconds for `seconds` (bounded in time, and in
    calls in flight: a tick that finds `max_in_flight` still running is skipped and counted).
    The calls started and the ticks skipped."""
    tasks: set[asyncio.Future[Any]] = set()
    started = skipped = 0
    t0 = now()
    tick = t0
    while now() - t0 < seconds:
        if len(tasks) < max_in_flight:
            task: asyncio.Future[Any] = asyncio.ensure_future(ops[started % len(ops)]())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            started += 1
        else:
            skipped += 1
        tick += 1 / rate
        await asyncio.sleep(max(0.0, tick - now()))
    if tasks:
        await asyncio.gather(*tasks)
    return started, skipped


def _growth(values: list[float]) -> tuple[float, float]:
    """(value at the end of warm-up, value at the end)."""
    return values[0], values[-1]


async def _collection_counts(cs: ChaosStack) -> dict[str, int]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(cs.mongo_uri)
    try:
        db = client[cs.cfg.database]
        names = sorted(await db.list_collection_names())
        return {n: await db[n].estimated_document_count() for n in names}
    finally:
        await client.close()


async def soak(cs: ChaosStack, rec: Recorder, profile: Profile) -> Result:
    tenant = await new_tenant(rec, "s10")
    ledger = Ledger()
    await seed(rec, tenant, ledger, REWRITTEN)
    writer = Rewriter(rec, tenant, ledger)
    ops = soak_ops(rec, tenant, writer)
    # Capacity of this mix: a closed loop of twice the profile's clients.
    stop = asyncio.Event()
    t0 = now()
    calls = await run_load(ops, 2 * profile.clients, stop, profile.soak_capacity_s, 0.0)
    capacity = calls / (now() - t0)
    rate = capacity / 2
    counts_before = await _collection_counts(cs)
    watch = Watch(cs, profile.soak_sample_s)
    watching = asyncio.Event()
    watcher = asyncio.create_task(watch.run(watching))
    soak_start = now()
    try:
        started, skipped = await paced(ops, rate, profile.soak_s, 4 * profile.clients)
    finally:
        watching.set()
        await watcher
    counts_after = await _collection_counts(cs)
    verdicts, catch_up = await invariants(cs, rec, tenant, ledger)
    if writer.problems:
        verdicts.append(Verdict("jobs", False, "; ".join(writer.problems[:3])))

    soaked = own(rec, tenant, since=soak_start)
    failed = errors(soaked)
    error_rate = failed / max(1, len(soaked))
    measured = [s for s in watch.samples if s.at - soak_start >= WARMUP_SHARE * profile.soak_s]
    if len(measured) < 3:
        measured = watch.samples
    names = sorted(watch.samples[0].pids) if watch.samples else []
    slopes = {
        n: slope_per_min([(s.at, s.rss_kb[n] / 1024) for s in measured if n in s.rss_kb])
        for n in names
    }
    fds = {n: (measured[0].fds.get(n, 0), max(s.fds.get(n, 0) for s in measured)) for n in names}
    restarted = sorted(
        n for n in names if len({s.pids.get(n) for s in watch.samples if n in s.pids}) > 1
    )
    redis_keys = _growth([s.redis_keys for s in measured])
    redis_persistent = _growth([s.redis_persistent for s in measured])
    redis_mb = _growth([s.redis_bytes / 2**20 for s in measured])
    db_mb = _growth([s.db_bytes / 2**20 for s in measured])
    answered = [o for o in soaked if o.status == 200]
    latencies = [o.ended - o.started for o in answered]
    grown = {
        n: counts_after.get(n, 0) - counts_before.get(n, 0)
        for n in counts_after
        if counts_after.get(n, 0) != counts_before.get(n, 0)
    }
    mb_min = ", ".join(f"{n} {slopes[n]:+.2f}" for n in names)
    fd_text = ", ".join(f"{n} {a}→{b}" for n, (a, b) in fds.items())
    targets = [
        Verdict(
            "error rate < 0.1%",
            error_rate < ERROR_RATE,
            f"{failed}/{len(soaked)} ({100 * error_rate:.3f}%)",
        ),
        Verdict(
            "RSS slope of every process < 1 MB/min",
            all(v < RSS_SLOPE_MB_PER_MIN for v in slopes.values()),
            f"worst {max(slopes, key=lambda n: slopes[n], default='-')} "
            f"{max(slopes.values(), default=0):+.2f} MB/min",
        ),
        Verdict(
            "no growth in open files",
            all(b <= a + FD_MARGIN for a, b in fds.values()),
            ", ".join(f"{n} {a}→{b}" for n, (a, b) in fds.items() if b > a + FD_MARGIN)
            or f"every process within {FD_MARGIN} of its count after warm-up",
        ),
        Verdict("no process restarted", not restarted, ", ".join(restarted) or "none"),
        Verdict(
            "documents and chunks do not grow (rewritten in place)",
            not any(n in grown for n in (DOCUMENTS, CHUNKS)),
            ", ".join(f"{n} {grown.get(n, 0):+d}" for n in (DOCUMENTS, CHUNKS)),
        ),
        Verdict(
            "Redis keys without an expiry do not grow after warm-up",
            redis_persistent[1] <= redis_persistent[0] + REDIS_PERSISTENT_MARGIN,
            f"{redis_persistent[0]:.0f}→{redis_persistent[1]:.0f}",
        ),
    ]
    figures = (
        f"capacity of the mix {capacity:.1f} req/s (closed loop, {2 * profile.clients} "
        f"clients); soak at {rate:.1f} req/s for {profile.soak_s:g}s: {started} requests "
        f"({skipped} ticks skipped at {4 * profile.clients} in flight), {failed} errors "
        f"({100 * error_rate:.3f}%); p50 {percentile(latencies, 0.5) * 1000:.0f} ms p99 "
        f"{percentile(latencies, 0.99) * 1000:.0f} ms; after warm-up ({len(measured)} samples "
        f"every {profile.soak_sample_s:g}s): RSS MB/min {mb_min}; open files {fd_text}; "
        f"Redis keys {redis_keys[0]:.0f}→{redis_keys[1]:.0f} (without expiry "
        f"{redis_persistent[0]:.0f}→{redis_persistent[1]:.0f}), {redis_mb[0]:.1f}→"
        f"{redis_mb[1]:.1f} MB; database files {db_mb[0]:.1f}→{db_mb[1]:.1f} MB; documents "
        f"rewritten {writer.turn} times over {REWRITTEN} ids; rows added per collection "
        f"{grown or 'none'}; restarts {', '.join(restarted) or 'none'}; index caught up in "
        f"{catch_up:.1f}s"
    )
    return Result(
        "10 soak",
        "none: a long steady load",
        f"search/embed/chat/rewrite mix at 50% of its capacity for {profile.soak_s:g}s",
        figures,
        verdicts,
        targets=targets,
    )
