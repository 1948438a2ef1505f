"""The scenarios: each injects one fault under load on the shared battery stack, then checks
the invariants (chaos.invariants) and reports its figures."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import os
import secrets
import signal
import socket
import subprocess
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc

from chaos.harness import (
    COLLECTION,
    DEADLINE_S,
    ChaosStack,
    Ledger,
    Outcome,
    Recorder,
    Tenant,
    classify,
    error_info,
    new_tenant,
    now,
    paragraph,
    run_load,
    wait_for,
)
from chaos.invariants import (
    Verdict,
    check_accounting,
    check_data,
    check_replicas,
    check_requests,
    metric_samples,
)
from chaos.profiles import Profile
from chaos.toxiproxy import toxiproxy
from ragline.retriever.v1 import retriever_service_pb2 as ret_pb
from ragline.retriever.v1 import retriever_service_pb2_grpc as ret_grpc
from ragline_stack.stack import ROOT, free_port

VEGETA = ROOT / ".bin" / "vegeta"

TERMINAL = ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED")


@dataclass
class Result:
    scenario: str
    fault: str
    load: str
    figures: str
    verdicts: list[Verdict] = field(default_factory=list)
    seconds: float = 0.0
    # The target figures (met or missed): reported, not failing the run; only the
    # invariants do.
    targets: list[Verdict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)


Scenario = Callable[[ChaosStack, Recorder, Profile], Awaitable[Result]]


# -- helpers -----------------------------------------------------------------------------
def job_of(body: Any) -> dict[str, Any]:
    """The job of an ingest or GetJob reply (wrapped in "job" or the resource itself)."""
    if isinstance(body, dict):
        inner = body.get("job", body)
        return inner if isinstance(inner, dict) else {}
    return {}


def listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


def docs_of(tenant: Tenant, ids: range, seed: int, words: int = 80) -> list[dict[str, str]]:
    return [
        {"id": f"{tenant.prefix}{i}", "title": f"note {i}", "content": paragraph(seed + i, words)}
        for i in ids
    ]


async def ingest(
    rec: Recorder,
    tenant: Tenant,
    ledger: Ledger,
    docs: list[dict[str, str]],
    key: str | None = None,
    tries: int = 1,
) -> str | None:
    """One ingest request (retried with the same Idempotency-Key on a clear error); the job
    id once accepted. A job that succeeded at once acknowledges its documents."""
    for d in docs:
        ledger.attempt(d["id"], d["content"])
    headers = {"idempotency-key": key or secrets.token_hex(8)}
    for attempt in range(tries):
        outcome, body = await rec.call(
            "ingest",
            tenant,
            "POST",
            "/api/v1/ingest",
            json={"collection": COLLECTION, "documents": docs},
            headers=headers,
        )
        if outcome.status == 200:
            job = job_of(body)
            if job.get("state") == "JOB_STATE_SUCCEEDED" and not int(
                job.get("documents_failed") or 0
            ):
                for d in docs:
                    ledger.ack(d["id"], d["content"])
            return str(job.get("job_id") or job.get("id") or job.get("name", "")).rpartition("/")[2]
        if attempt + 1 < tries:
            await asyncio.sleep(0.5)
    return None


async def job_state(rec: Recorder, tenant: Tenant, job_id: str) -> dict[str, Any] | None:
    outcome, body = await rec.call("job", tenant, "GET", f"/api/v1/jobs/{job_id}")
    return job_of(body) if outcome.status == 200 else None


async def finish_jobs(
    rec: Recorder,
    tenant: Tenant,
    ledger: Ledger,
    jobs: dict[str, list[dict[str, str]]],
    timeout: float,
) -> list[str]:
    """Polls the jobs until each ends; acknowledges the documents of those that succeeded.
    The problems: jobs that failed or did not end."""
    problems: list[str] = []
    pending = dict(jobs)
    deadline = now() + timeout
    while pending and now() < deadline:
        for job_id in list(pending):
            job = await job_state(rec, tenant, job_id)
            if job and job.get("state") in TERMINAL:
                docs = pending.pop(job_id)
                if job["state"] == "JOB_STATE_SUCCEEDED" and not int(
                    job.get("documents_failed") or 0
                ):
                    for d in docs:
                        ledger.ack(d["id"], d["content"])
                else:
                    problems.append(
                        f"accepted job {job_id} ended {job.get('state')}: "
                        f"{job.get('failure_reason')!s} {str(job.get('errors'))[:200]}"
                    )
        await asyncio.sleep(0.5)
    problems += [f"job {j} not finished after {timeout:g}s" for j in pending]
    return problems


async def search(rec: Recorder, tenant: Tenant) -> Outcome:
    outcome, _ = await rec.call(
        "search",
        tenant,
        "POST",
        "/api/v1/search",
        json={"query": "harbour lantern orchard", "collection": COLLECTION, "limit": 5},
    )
    return outcome


async def embed(rec: Recorder, tenant: Tenant) -> Outcome:
    outcome, _ = await rec.call(
        "embed",
        tenant,
        "POST",
        "/api/v1/embeddings",
        json={"texts": [paragraph(secrets.randbelow(10**6), 12)]},
    )
    return outcome


async def chat(rec: Recorder, tenant: Tenant) -> Outcome:
    outcome, _ = await rec.call(
        "chat",
        tenant,
        "POST",
        "/api/v1/chat",
        json={
            "message": "Where is the harbour lantern?",
            "collection": COLLECTION,
            "model": "extractive",
        },
    )
    return outcome


class Writer:
    """Writes one new document per call (synchronous ingest), for the ledger."""

    def __init__(self, rec: Recorder, tenant: Tenant, ledger: Ledger, start: int) -> None:
        self.rec, self.tenant, self.ledger, self.next = rec, tenant, ledger, start
        self.jobs: dict[str, list[dict[str, str]]] = {}
        self.acked = 0

    async def __call__(self) -> None:
        i, self.next = self.next, self.next + 1
        docs = docs_of(self.tenant, range(i, i + 1), 5000, 30)
        before = len(self.ledger.acked)
        job_id = await ingest(self.rec, self.tenant, self.ledger, docs)
        if len(self.ledger.acked) > before:
            self.acked += 1
        elif job_id:  # accepted, still running: acknowledged once it ends
            self.jobs[job_id] = docs


async def seed(rec: Recorder, tenant: Tenant, ledger: Ledger, n: int) -> None:
    """n documents of the tenant, stored before the fault."""
    for start in range(0, n, 16):
        docs = docs_of(tenant, range(start, min(n, start + 16)), 0, 40)
        job_id = await ingest(rec, tenant, ledger, docs, tries=5)
        if job_id is None:
            raise RuntimeError("seeding failed")
        if docs[0]["id"] not in ledger.acked:
            problems = await finish_jobs(rec, tenant, ledger, {job_id: docs}, 120)
            if problems:
                raise RuntimeError(f"seeding failed: {problems}")


async def invariants(
    cs: ChaosStack,
    rec: Recorder,
    tenant: Tenant,
    ledger: Ledger,
    replica_ports: list[int] | None = None,
    accounting: bool = True,
) -> tuple[list[Verdict], float]:
    """Every invariant for the tenant after a scenario; also the replicas' catch-up time."""
    verdicts = [check_requests([o for o in rec.outcomes if o.tenant == tenant.name])]
    data, truth = await check_data(cs.mongo_uri, cs.cfg.database, tenant.name, COLLECTION, ledger)
    verdicts.append(data)
    ports = replica_ports or [cs.cfg.metrics_ports["retriever"]]
    replicas, took = await check_replicas(ports, tenant.name, COLLECTION, truth, timeout=60)
    verdicts.append(replicas)
    if accounting:
        verdicts.append(await check_accounting(rec, tenant))
    return verdicts, took


def errors(outcomes: list[Outcome], op: str | None = None) -> int:
    return sum(1 for o in outcomes if o.verdict != "ok" and (op is None or o.op == op))


def own(rec: Recorder, tenant: Tenant, since: float = -math.inf) -> list[Outcome]:
    return [o for o in rec.outcomes if o.tenant == tenant.name and o.started >= since]


async def wait_serving(
    cs: ChaosStack, name: str, old_pid: int | None, timeout: float = 180
) -> float:
    """Seconds until the supervisor's new process of `name` listens on its port."""
    port = cs.stack.port(name)

    async def up() -> bool:
        child = cs.stack.child_pid(name)
        return child is not None and child != old_pid and listening(port)

    return await wait_for(up, timeout, f"{name} serving again", 0.1)


# -- 1. kill -9 the ingest service during a large ingest ----------------------------------
async def ingest_kills(cs: ChaosStack, rec: Recorder, profile: Profile) -> Result:
    tenant = await new_tenant(rec, "s1")
    ledger = Ledger()
    n, kills, batch = profile.ingest_docs, profile.ingest_kills, 50
    started = now()
    jobs: dict[str, list[dict[str, str]]] = {}
    for start in range(0, n, batch):
        docs = docs_of(tenant, range(start, min(n, start + batch)), 0)
        job_id = await ingest(rec, tenant, ledger, docs, tries=10)
        if job_id is None:
            raise RuntimeError("the battery's ingest was not accepted")
        jobs[job_id] = docs
    stop = asyncio.Event()
    first_job = next(iter(jobs))
    # A searcher and a job poller: the poller meets the ingest service while it is down.
    load = asyncio.create_task(
        run_load(
            [lambda: search(rec, tenant), lambda: job_state(rec, tenant, first_job)],
            2,
            stop,
            900,
            0.2,
        )
    )
    downtimes: list[float] = []
    done_by: dict[str, int] = {}
    finished: set[str] = set()
    try:
        for k in range(kills):
            target = n * (k + 1) // (kills + 1)

            async def progressed(target: int = target) -> bool:
                # Finished jobs are not asked again: the poll stays below the rate limit.
                for job_id in jobs:
                    if job_id not in finished:
                        job = await job_state(rec, tenant, job_id)
                        if job is not None:
                            done_by[job_id] = int(job.get("documents_done") or 0)
                            if job.get("state") in TERMINAL:
                                finished.add(job_id)
                return sum(done_by.values()) >= target

            await wait_for(progressed, 300, f"{target} documents ingested", 1.0)
            pid = cs.stack.child_pid("ingest")
            if pid is None:
                raise RuntimeError("no ingest process to kill")
            os.kill(pid, signal.SIGKILL)
            downtimes.append(await wait_serving(cs, "ingest", pid))
        problems = await finish_jobs(rec, tenant, ledger, jobs, 900)
        ingest_s = now() - started
        # Then supersede a tenth and delete a twentieth of the documents (after the jobs:
        # the last acknowledged write of each is known).
        updates = docs_of(tenant, range(0, max(1, n // 10)), 90_000)
        for start in range(0, len(updates), 16):
            chunk = updates[start : start + 16]
            job_id = await ingest(rec, tenant, ledger, chunk, tries=5)
            if job_id is None:
                problems.append("an update was not accepted")
            elif any(ledger.acked.get(d["id"]) != d["content"] for d in chunk):
                problems += await finish_jobs(rec, tenant, ledger, {job_id: chunk}, 120)
        for i in range(n - max(1, n // 20), n):
            outcome, _ = await rec.call(
                "delete",
                tenant,
                "DELETE",
                f"/api/v1/collections/{COLLECTION}/documents/{tenant.prefix}{i}",
            )
            if outcome.status == 200:
                ledger.ack_delete(f"{tenant.prefix}{i}")
    finally:
        stop.set()
        await load
    verdicts, catch_up = await invariants(cs, rec, tenant, ledger)
    if problems:
        verdicts.insert(0, Verdict("jobs", False, "; ".join(problems[:3])))
    log = cs.stack.log_path("ingest").read_text(errors="replace")
    resumed = log.count("resuming job")
    polls = own(rec, tenant)
    figures = (
        f"{n} docs in {len(jobs)} jobs done in {ingest_s:.0f}s with {kills} kills; "
        f"jobs resumed {resumed}x; ingest back in {', '.join(f'{d:.1f}' for d in downtimes)}s; "
        f"{errors(polls, 'job')}/{sum(1 for o in polls if o.op == 'job')} job polls and "
        f"{errors(polls, 'search')}/{sum(1 for o in polls if o.op == 'search')} searches "
        f"answered with an error; index caught up in {catch_up:.1f}s"
    )
    return Result(
        "1 ingest kill -9",
        f"kill -9 ingest x{kills}",
        f"{n}-doc ingest in {batch}-doc jobs + 1 searcher + 1 job poller",
        figures,
        verdicts,
    )


# -- 2. kill -9 one of two retriever replicas under steady search load -------------------
async def direct_search(
    stub: ret_grpc.RetrieverServiceStub,
    tenant: Tenant,
    identity: tuple[tuple[str, str], ...],
    query: str,
    deadline_s: float,
    *,
    late_is_lost: bool = False,
) -> Outcome:
    """A search straight to a retriever replica (not counted in usage: no gateway); with
    `late_is_lost`, an answer later than the deadline + 1 s counts as none."""
    t0 = now()
    status, reason = 200, ""
    try:
        reply = await stub.Search(
            ret_pb.SearchRequest(query=query, collection=COLLECTION, limit=5),
            timeout=deadline_s,
            metadata=identity,
        )
        if any(not h.document_id.startswith(tenant.prefix) for h in reply.hits):
            status, reason = 500, "another tenant's data"
    except grpc.aio.AioRpcError as exc:
        status = {
            grpc.StatusCode.UNAVAILABLE: 503,
            grpc.StatusCode.DEADLINE_EXCEEDED: 504,
        }.get(exc.code(), 500)
        reason = f"{exc.code().name} retriever: {exc.details()}"
    ended = now()
    if late_is_lost and ended - t0 > deadline_s + 1:
        status, reason = 0, f"answered after {ended - t0:.1f}s"
    verdict, why = classify(status, "", reason)
    return Outcome(
        "direct-search", tenant.name, t0, ended, status, "", reason, verdict, why, counted=False
    )


async def replica_kill(cs: ChaosStack, rec: Recorder, profile: Profile) -> Result:
    tenant = await new_tenant(rec, "s2")
    ledger = Ledger()
    await seed(rec, tenant, ledger, 32)
    port, metrics = free_port(), free_port()
    proc = cs.start_extra("retriever", port, metrics)
    try:
        main_port = cs.cfg.service_ports["retriever"]
        await wait_for(lambda: _true(listening(port)), 180, "the second replica serving", 0.2)
        target = f"ipv4:127.0.0.1:{main_port},127.0.0.1:{port}"
        identity = cs.identity(tenant.name)
        direct: list[Outcome] = []
        async with grpc.aio.insecure_channel(
            target, options=[("grpc.lb_policy_name", "round_robin")]
        ) as channel:
            stub = ret_grpc.RetrieverServiceStub(channel)

            async def search_direct() -> None:
                # UNAVAILABLE: the connection to the killed replica dropped; the client
                # retries on the other one.
                direct.append(
                    await direct_search(stub, tenant, identity, "harbour lantern", DEADLINE_S)
                )

            # Warm both replicas so round robin uses both.
            await wait_for(lambda: _direct_ok(search_direct, direct), 60, "direct search ok", 0.2)
            direct.clear()
            stop = asyncio.Event()
            load = asyncio.create_task(
                run_load(
                    [search_direct, search_direct, lambda: search(rec, tenant)],
                    profile.clients,
                    stop,
                    profile.replica_load_s * 3,
                    0.02,
                )
            )
            await asyncio.sleep(profile.replica_load_s / 3)
            pid = cs.stack.child_pid("retriever")
            if pid is None:
                raise RuntimeError("no retriever to kill")
            killed = now()
            os.kill(pid, signal.SIGKILL)
            # Written while the replica is down: the restarted one must load them.
            writer = Writer(rec, tenant, ledger, 1000)
            for _ in range(3):
                await writer()
            back = await wait_serving(cs, "retriever", pid)
            await asyncio.sleep(profile.replica_load_s / 3)
            stop.set()
            await load
            jobs_problems = await finish_jobs(rec, tenant, ledger, writer.jobs, 120)
        verdicts, catch_up = await invariants(
            cs, rec, tenant, ledger, [cs.cfg.metrics_ports["retriever"], metrics]
        )
        verdicts[0] = check_requests(direct + own(rec, tenant))
        if jobs_problems:
            verdicts.append(Verdict("jobs", False, "; ".join(jobs_problems)))
    finally:
        cs.stop_extra(proc)
    failed = [o for o in direct if o.verdict != "ok"]
    during = [o for o in direct if o.started >= killed]
    last_error = max((o.ended for o in failed), default=killed)
    gateway = [o for o in own(rec, tenant, killed) if o.op == "search"]
    figures = (
        f"direct round-robin: {len(failed)}/{len(direct)} errors "
        f"({100 * len(failed) / max(1, len(direct)):.1f}%), {len(failed)} of {len(during)} "
        f"after the kill; zero errors {last_error - killed:.2f}s after the kill; replica back "
        f"in {back:.1f}s; "
        f"gateway (one replica) {errors(gateway)}/{len(gateway)} clear errors; "
        f"index caught up in {catch_up:.1f}s"
    )
    return Result(
        "2 retriever replica kill -9",
        "kill -9 1 of 2 retrievers",
        f"{profile.clients} searchers ({profile.replica_load_s:g}s)",
        figures,
        verdicts,
    )


async def _true(value: bool) -> bool:
    return value


async def _direct_ok(call: Callable[[], Awaitable[None]], out: list[Outcome]) -> bool:
    await call()
    return out[-1].verdict == "ok"


# -- 5. the database down ---------------------------------------------------------------
async def database_down(cs: ChaosStack, rec: Recorder, profile: Profile) -> Result:
    return await _store_down(
        cs, rec, profile, "ferretdb", profile.db_down_s, "s5", "5 database down", "FerretDB stopped"
    )


# -- 4. Redis down ----------------------------------------------------------------------
async def redis_down(cs: ChaosStack, rec: Recorder, profile: Profile) -> Result:
    return await _store_down(
        cs, rec, profile, "redis", profile.redis_down_s, "s4", "4 Redis down", "Redis stopped"
    )


async def _store_down(
    cs: ChaosStack,
    rec: Recorder,
    profile: Profile,
    store: str,
    down_s: float,
    label: str,
    scenario: str,
    fault: str,
) -> Result:
    tenant = await new_tenant(rec, label)
    ledger = Ledger()
    await seed(rec, tenant, ledger, 16)
    writer = Writer(rec, tenant, ledger, 1000)
    ops: list[Callable[[], Awaitable[Any]]] = [
        writer,
        lambda: search(rec, tenant),
        lambda: embed(rec, tenant),
        lambda: chat(rec, tenant),
    ]
    stop = asyncio.Event()
    load = asyncio.create_task(run_load(ops, profile.clients, stop, down_s * 4 + 120, 0.05))
    await asyncio.sleep(3)
    stopped = now()
    cs.stack.stop(store)
    try:
        await asyncio.sleep(down_s)
    finally:
        restarted = now()
        cs.stack.start(store)
        cs.stack.wait_port(store, cs.stack.port(store), 60)

    async def writes_again() -> bool:
        return any(
            o.op == "ingest" and o.verdict == "ok" and o.started >= restarted
            for o in rec.outcomes
            if o.tenant == tenant.name
        )

    try:
        recovery = await wait_for(writes_again, 120, "writes succeeding again", 0.2)
    except TimeoutError:
        recovery = math.nan
    await asyncio.sleep(5)
    stop.set()
    await load
    problems = await finish_jobs(rec, tenant, ledger, writer.jobs, 120)
    verdicts, catch_up = await invariants(cs, rec, tenant, ledger)
    if problems:
        verdicts.append(Verdict("jobs", False, "; ".join(problems[:3])))
    outs = own(rec, tenant)
    window = [o for o in outs if o.started >= stopped and o.started < restarted]
    last_error = max((o.ended for o in outs if o.verdict != "ok"), default=restarted)
    ok_rate = 100 * sum(o.verdict == "ok" for o in outs) / max(1, len(outs))
    by_op = {
        op: f"{errors(window, op)}/{sum(o.op == op for o in window)}"
        for op in ("ingest", "search", "embed", "chat")
    }
    figures = (
        f"{len(outs)} requests, {ok_rate:.1f}% succeeded; errors while down per op {by_op}; "
        f"writes succeed {recovery:.1f}s after restart, last error "
        f"{last_error - restarted:.1f}s after; {writer.acked} writes acknowledged, 0 lost checked; "
        f"index caught up in {catch_up:.1f}s"
    )
    # The target for Redis (caches and the feed degrade); the database has none.
    targets = (
        [Verdict("success >= 99%", ok_rate >= 99.0, f"{ok_rate:.1f}%")] if store == "redis" else []
    )
    return Result(
        scenario,
        f"{fault} {down_s:g}s",
        f"{profile.clients} clients: 1-doc ingest, search, embed, chat",
        figures,
        verdicts,
        targets=targets,
    )


# -- 6. the auth service down -----------------------------------------------------------
async def auth_down(cs: ChaosStack, rec: Recorder, profile: Profile) -> Result:
    tenant = await new_tenant(rec, "s6")
    models = "/api/v1/embedding-models"
    await rec.call("models", tenant, "GET", models)  # the key is now in the gateway's cache
    unseen: list[Outcome] = []
    cached: list[Outcome] = []
    stop = asyncio.Event()

    async def unseen_call() -> None:
        stranger = Tenant("unseen", f"rl_live_{secrets.token_hex(32)}", "")
        outcome, _ = await rec.call("unseen", stranger, "GET", models, allowed=(401,))
        unseen.append(outcome)

    async def cached_call() -> None:
        outcome, _ = await rec.call("cached", tenant, "GET", models)
        cached.append(outcome)

    cs.stack.stop("auth")
    stopped = now()
    try:
        await run_load([unseen_call, cached_call], profile.clients, stop, profile.auth_down_s, 0.05)
    finally:
        cs.stack.start_service("auth")
        cs.stack.wait_port("auth", cs.cfg.service_ports["auth"], 180)
    restarted = now()

    async def serving() -> bool:
        outcome, _ = await rec.call("models", tenant, "GET", models)
        return outcome.status == 200

    back = await wait_for(serving, 60, "keys accepted again", 0.2)
    let_through = [o for o in unseen if o.status == 200]
    served = [o for o in cached if o.status == 200]
    served_for = max((o.ended - stopped for o in served), default=0.0)
    verdicts = [check_requests([o for o in rec.outcomes if o.tenant in (tenant.name, "unseen")])]
    verdicts.append(
        Verdict(
            "unseen refused",
            not let_through,
            f"{len(unseen) - len(let_through)}/{len(unseen)} refused",
        )
    )
    verdicts.append(await check_accounting(rec, tenant))
    figures = (
        f"unseen keys refused {100 * (len(unseen) - len(let_through)) / max(1, len(unseen)):.0f}% "
        f"({len(unseen)}); the cached key served {len(served)}/{len(cached)}, the last "
        f"{served_for:.1f}s after the stop (GATEWAY_KEY_CACHE_TTL 1 s); keys accepted "
        f"{back:.1f}s after auth listened again ({restarted - stopped:.0f}s down)"
    )
    return Result(
        "6 auth down",
        f"auth stopped {profile.auth_down_s:g}s",
        f"{profile.clients} clients: unseen + cached keys",
        figures,
        verdicts,
    )


# The battery's ops that need each service (auth: every one).
USES = {
    "embedder": ("embed", "ingest", "search"),
    "retriever": ("search", "chat"),
    "chat": ("chat",),
    "ingest": ("ingest",),
}


# -- 3. SIGTERM each service under load -------------------------------------------------
async def sigterm_each(cs: ChaosStack, rec: Recorder, profile: Profile) -> Result:
    tenant = await new_tenant(rec, "s3")
    ledger = Ledger()
    await seed(rec, tenant, ledger, 16)
    writer = Writer(rec, tenant, ledger, 1000)
    ops: list[Callable[[], Awaitable[Any]]] = [
        writer,
        lambda: search(rec, tenant),
        lambda: embed(rec, tenant),
        lambda: chat(rec, tenant),
    ]
    lost: dict[str, int] = {}
    in_flight: dict[str, int] = {}
    back: dict[str, float] = {}
    for name in profile.sigterm_services:
        stop = asyncio.Event()
        load = asyncio.create_task(run_load(ops, profile.clients, stop, 300, 0.05))
        try:
            await asyncio.sleep(3)
            pid = cs.stack.child_pid(name)
            if pid is None:
                raise RuntimeError(f"no {name} process")
            # Signal while the service has work in flight (bounded: at most 10 s).
            ops_of = USES.get(name, ("embed", "search", "chat", "ingest"))
            with contextlib.suppress(TimeoutError):
                await wait_for(
                    lambda ops=ops_of: _true(any(rec.inflight[op] > 0 for op in ops)),  # type: ignore[misc]
                    10,
                    "busy",
                    0.005,
                )
            t0 = now()
            os.kill(pid, signal.SIGTERM)
            back[name] = await wait_serving(cs, name, pid, timeout=60)
            await asyncio.sleep(3)
        finally:
            stop.set()
            await load
        flying = [o for o in own(rec, tenant) if o.started < t0 < o.ended]
        in_flight[name] = len(flying)
        lost[name] = sum(1 for o in flying if o.verdict != "ok")
    problems = await finish_jobs(rec, tenant, ledger, writer.jobs, 120)
    verdicts, _ = await invariants(cs, rec, tenant, ledger)
    targets = [
        Verdict(
            "in-flight lost = 0",
            not any(lost.values()),
            ", ".join(f"{k} {lost[k]}/{in_flight[k]}" for k in lost),
        )
    ]
    if problems:
        verdicts.append(Verdict("jobs", False, "; ".join(problems[:3])))
    figures = "; ".join(
        f"{k}: {lost[k]} of {in_flight[k]} in flight lost, back in {back[k]:.1f}s" for k in lost
    )
    return Result(
        "3 SIGTERM under load",
        f"SIGTERM {', '.join(profile.sigterm_services)}",
        f"{profile.clients} clients: 1-doc ingest, search, embed, chat",
        figures,
        verdicts,
        targets=targets,
    )


# -- 7. a paid provider failing: 429, 5xx, slow ------------------------------------------
VOYAGE = "voyage-3.5"
OPENAI_CHAT = "gpt-4o-mini"


async def provider_faults(cs: ChaosStack, rec: Recorder, profile: Profile) -> Result:
    """Paid embeddings (Voyage) and chat (OpenAI) through their wire fakes: healthy, every
    call 429, every call 503, every call slower than PROVIDER_TIMEOUT. Attempts per
    request are counted at the fakes; failing calls must fall back to the free model."""
    tenant = await new_tenant(rec, "s7")
    ledger = Ledger()
    await seed(rec, tenant, ledger, 8)
    n = profile.provider_requests
    phases: list[tuple[str, list[int], float]] = [
        ("healthy", [], 0.0),
        ("429", [429] * 10_000, 0.0),
        ("503", [503] * 10_000, 0.0),
        ("slow", [], 3.0),
    ]
    emb_attempts = chat_attempts = requests = 0
    fallbacks: dict[str, str] = {}
    mixed = 0
    for phase, failures, delay in phases:
        cs.voyage.reset(failures=list(failures), delay_s=delay)
        cs.openai.reset(failures=list(failures), first_token_delay_s=delay)
        fell_back = 0
        for i in range(n):
            texts = [paragraph(secrets.randbelow(10**9), 8)]  # unique: no cache hit
            outcome, body = await rec.call(
                "embed",
                tenant,
                "POST",
                "/api/v1/embeddings",
                json={"texts": texts, "model": VOYAGE},
            )
            if outcome.status == 200:
                dims = {len(e.get("values", [])) for e in body.get("embeddings", [])}
                mixed += int(len(dims) != 1 or dims != {int(body.get("dimensions", 0))})
                fell_back += int(body.get("model") != VOYAGE)
            outcome, body = await rec.call(
                "chat",
                tenant,
                "POST",
                "/api/v1/chat",
                json={
                    "message": f"Where is the harbour lantern {i}?",
                    "collection": COLLECTION,
                    "model": OPENAI_CHAT,
                },
            )
            if outcome.status == 200:
                fell_back += int(body.get("model") != OPENAI_CHAT)
        requests += n
        emb_attempts += cs.voyage.request_count
        chat_attempts += len(cs.openai.script.requests)
        fallbacks[phase] = f"{fell_back}/{2 * n}"
    cs.voyage.reset()
    cs.openai.reset()
    verdicts = [check_requests(own(rec, tenant))]
    bound = 1.2 * requests
    targets = [
        Verdict(
            "attempts <= 1.2x requests",
            emb_attempts <= bound and chat_attempts <= bound,
            f"embeddings {emb_attempts}, chat {chat_attempts} attempts, {requests} requests each",
        )
    ]
    failing = [p for p, _, _ in phases[1:]]
    verdicts.append(
        Verdict(
            "fallback used",
            all(fallbacks[p] == f"{2 * n}/{2 * n}" for p in failing) and mixed == 0,
            f"answers from the fallback per phase {fallbacks}; mixed-model answers {mixed}",
        )
    )
    verdicts.append(await check_accounting(rec, tenant))
    figures = (
        f"{requests} embeddings + {requests} chats over 4 phases (healthy, 429, 503, slow > "
        f"PROVIDER_TIMEOUT 2 s); provider attempts per request: embeddings "
        f"{emb_attempts / requests:.2f}, chat {chat_attempts / requests:.2f}; fallback answers "
        f"{fallbacks}"
    )
    return Result(
        "7 paid provider faults",
        "Voyage + OpenAI fakes: 429, 503, slow",
        f"{n} embeddings + {n} chats per phase",
        figures,
        verdicts,
        targets=targets,
    )


# -- 8. network faults between the retriever and the embedder (Toxiproxy) ----------------
# The deadline of each direct search: a partitioned embedder must cost no more than this.
NETWORK_DEADLINE_S = 3.0


async def rpc_counts(metrics_port: int, service: str, method: str) -> Counter[str]:
    """ragline_rpc_requests_total of one method of a process, by status code."""
    out: Counter[str] = Counter()
    for sample in await metric_samples(metrics_port):
        labels = sample.labels
        if (
            sample.name == "ragline_rpc_requests_total"
            and labels.get("service") == service
            and labels.get("method", "").endswith(method)
        ):
            out[labels.get("code", "")] += int(sample.value)
    return out


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values`, 0 when there are none."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def p50_ms(outcomes: list[Outcome]) -> str:
    """The median latency of the successes, or "-" without any."""
    took = [o.ended - o.started for o in outcomes if o.verdict == "ok"]
    return f"{1000 * percentile(took, 0.5):.0f} ms" if took else "-"


async def network_faults(cs: ChaosStack, rec: Recorder, profile: Profile) -> Result:
    """A retriever replica reaches the embedder through Toxiproxy: +200 ms, a jittery link,
    then a partition, then healed. Searches go straight to that replica with a 3 s
    deadline; the embedder's own request count shows whether anything multiplied calls."""
    tenant = await new_tenant(rec, "s8")
    ledger = Ledger()
    await seed(rec, tenant, ledger, 16)
    embedder_metrics = cs.cfg.metrics_ports["embedder"]
    outcomes: dict[str, list[Outcome]] = {"warm": []}
    phase = ["warm"]  # the phase the searches are counted in
    with toxiproxy(cs.cfg.log_dir / "toxiproxy.log") as toxi:
        proxy_port = toxi.proxy("embedder", cs.cfg.service_addr("embedder"))
        port, metrics = free_port(), free_port()
        proc = cs.start_extra("retriever", port, metrics, EMBEDDER_ADDR=f"127.0.0.1:{proxy_port}")
        try:
            await wait_for(lambda: _true(listening(port)), 180, "the proxied replica", 0.2)
            identity = cs.identity(tenant.name)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = ret_grpc.RetrieverServiceStub(channel)

                async def search_direct() -> None:
                    # A new query each time: no cached vector or result hides the link.
                    query = f"harbour lantern {secrets.token_hex(4)}"
                    outcome = await direct_search(
                        stub, tenant, identity, query, NETWORK_DEADLINE_S, late_is_lost=True
                    )
                    outcomes.setdefault(phase[0], []).append(outcome)

                await wait_for(
                    lambda: _direct_ok(search_direct, outcomes["warm"]),
                    60,
                    "a search through the proxy",
                    0.2,
                )
                before = await rpc_counts(embedder_metrics, "embedder", "CreateEmbeddings")

                async def run(name: str, seconds: float) -> None:
                    phase[0] = name
                    stop = asyncio.Event()
                    await run_load([search_direct], profile.clients, stop, seconds, 0.05)

                run_s = profile.network_phase_s
                await run("baseline", run_s)
                toxi.add("embedder", "slow", "latency", "downstream", latency=200)
                await run("latency +200 ms", run_s)
                toxi.clear("embedder")
                toxi.add("embedder", "jitter", "latency", "downstream", latency=100, jitter=100)
                await run("jitter 100±100 ms", run_s)
                toxi.clear("embedder")
                for stream in ("upstream", "downstream"):
                    toxi.add("embedder", f"cut-{stream}", "timeout", stream, timeout=0)
                await run("partition", run_s)
                toxi.clear("embedder")
                healed = now()
                await run("healed", 3 * run_s)
            after = await rpc_counts(embedder_metrics, "embedder", "CreateEmbeddings")
            retriever_codes = await rpc_counts(metrics, "retriever", "Search")
        finally:
            cs.stop_extra(proc)
    measured = [o for name, got in outcomes.items() if name != "warm" for o in got]
    verdicts, catch_up = await invariants(cs, rec, tenant, ledger)
    verdicts[0] = check_requests(measured + own(rec, tenant))
    embeds = sum(after.values()) - sum(before.values())
    cut = outcomes.get("partition", [])
    after_heal = outcomes.get("healed", [])
    last_error = max((o.ended for o in after_heal if o.verdict != "ok"), default=healed)
    slowest_cut = max((o.ended - o.started for o in cut), default=0.0)
    per_phase = "; ".join(
        f"{name}: {errors(got)}/{len(got)} errors, p50 {p50_ms(got)}"
        for name, got in outcomes.items()
        if name != "warm"
    )
    targets = [
        Verdict(
            "no retry storm: embedder calls <= 1.2x searches",
            embeds <= 1.2 * len(measured),
            f"{embeds} embedder calls for {len(measured)} searches",
        ),
        Verdict(
            "a slow link costs latency, not errors",
            errors(outcomes.get("latency +200 ms", [])) == 0
            and errors(outcomes.get("jitter 100±100 ms", [])) == 0,
            "errors under latency "
            f"{errors(outcomes.get('latency +200 ms', []))}, under jitter "
            f"{errors(outcomes.get('jitter 100±100 ms', []))}",
        ),
        Verdict(
            "partitioned searches end by the deadline + 1 s",
            slowest_cut <= NETWORK_DEADLINE_S + 1,
            f"slowest {slowest_cut:.2f}s, deadline {NETWORK_DEADLINE_S:g}s",
        ),
    ]
    figures = (
        f"{per_phase}; partition: slowest answer {slowest_cut:.2f}s (deadline "
        f"{NETWORK_DEADLINE_S:g}s); zero errors {max(0.0, last_error - healed):.1f}s after "
        f"healing; embedder calls {embeds} for {len(measured)} searches; the replica's Search "
        f"codes {dict(retriever_codes)}; index caught up in {catch_up:.1f}s"
    )
    return Result(
        "8 network faults",
        "Toxiproxy retriever→embedder: +200 ms, 100±100 ms jitter, partition",
        f"{profile.clients} searchers straight to the proxied replica, {run_s:g}s per phase",
        figures,
        verdicts,
        targets=targets,
    )


# -- 9. overload: a ramp to twice the measured capacity -----------------------------------
def _vegeta(
    base_url: str, tenant: Tenant, folder: Path, count: int, *args: str
) -> list[dict[str, Any]]:
    """One vegeta attack of `count` searches, each with a query of its own (no cached
    vector or result), and its per-request results (status, latency, headers, body). A Go
    client: a Python one on these 2 cores starves and measures its own queueing."""
    folder.mkdir(parents=True, exist_ok=True)
    targets = folder / f"targets-{secrets.token_hex(4)}.json"
    headers = {k.title(): [v] for k, v in tenant.headers().items()}
    headers["Content-Type"] = ["application/json"]
    with open(targets, "w") as out:
        for _ in range(count):
            body = json.dumps(
                {"query": f"lantern {secrets.token_hex(6)}", "collection": COLLECTION}
            )
            line = {
                "method": "POST",
                "url": f"{base_url}/api/v1/search",
                "header": headers,
                "body": base64.b64encode(body.encode()).decode(),
            }
            out.write(json.dumps(line) + "\n")
    attack = subprocess.run(  # noqa: S603 - our own pinned binary and arguments
        [str(VEGETA), "attack", "-format=json", f"-targets={targets}", *args],
        capture_output=True,
        check=True,
        timeout=600,
    )
    encoded = subprocess.run(  # noqa: S603
        [str(VEGETA), "encode", "--to", "json"],
        input=attack.stdout,
        capture_output=True,
        check=True,
        timeout=120,
    )
    targets.unlink()
    return [json.loads(line) for line in encoded.stdout.splitlines() if line.strip()]


def _outcome(tenant: Tenant, result: dict[str, Any]) -> Outcome:
    """A vegeta result as an Outcome, timed on the wall clock (epoch seconds)."""
    status = int(result["code"])
    latency = int(result["latency"]) / 1e9
    stamp = str(result["timestamp"])  # RFC 3339 with nanoseconds: keep microseconds
    head, _, frac = stamp.partition(".")
    digits = "".join(c for c in frac if c.isdigit())[:6]
    started = datetime.fromisoformat(f"{head}.{digits or '0'}+00:00").timestamp()
    body: Any = None
    with contextlib.suppress(ValueError, TypeError):
        body = json.loads(base64.b64decode(result.get("body") or b""))
    reason, message = error_info(body) if status != 200 else ("", "")
    if status == 0:
        message = str(result.get("error", ""))[:200]
    verdict, why = classify(status, reason, message)
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    if status == 429 and not headers.get("retry-after"):
        verdict, why = "bad", f"429 {reason} without Retry-After"
    outcome = Outcome(
        "search", tenant.name, started, started + latency, status, reason, message, verdict, why
    )
    outcome.counted = status != 0
    return outcome


def _goodput(outcomes: list[Outcome], seconds: float) -> float:
    """Successes per second that ended within `seconds` of the first request's start (an
    answer after the window is not goodput of the window)."""
    if not outcomes:
        return 0.0
    start = min(o.started for o in outcomes)
    return sum(1 for o in outcomes if o.status == 200 and o.ended - start <= seconds) / seconds


async def overload(cs: ChaosStack, rec: Recorder, profile: Profile) -> Result:
    """Capacity first (vegeta's closed loop, 2 to 16 workers: the best successes per
    second), then an open loop at twice that rate. Admission control (MAX_IN_FLIGHT) must
    shed the excess early with 429 + Retry-After, so goodput holds and nothing waits out
    its deadline."""
    if not VEGETA.exists():
        raise RuntimeError("vegeta not found: `make test-tools` installs it")
    tenant = await new_tenant(rec, "s9")
    ledger = Ledger()
    await seed(rec, tenant, ledger, 16)
    folder = cs.cfg.run_dir / "overload"
    step_s = profile.overload_step_s
    steps: list[tuple[int, float]] = []
    outcomes: list[Outcome] = []
    for workers in (2, 4, 8, 16):
        results = await asyncio.to_thread(
            _vegeta,
            cs.cfg.base_url,
            tenant,
            folder,
            int(step_s * 400),
            "-rate=0",
            f"-workers={workers}",
            f"-max-workers={workers}",
            f"-duration={step_s:g}s",
            f"-timeout={DEADLINE_S + 5:g}s",
        )
        step = [_outcome(tenant, r) for r in results]
        steps.append((workers, _goodput(step, step_s)))
        outcomes += step
    peak = max(rate for _, rate in steps)
    seconds = profile.overload_s
    rate = max(1, round(2 * peak))
    results = await asyncio.to_thread(
        _vegeta,
        cs.cfg.base_url,
        tenant,
        folder,
        int(rate * seconds) + 10,
        f"-rate={rate}/s",
        f"-duration={seconds:g}s",
        f"-timeout={DEADLINE_S + 5:g}s",
        "-max-workers=4000",
    )
    ramp = [_outcome(tenant, r) for r in results]
    outcomes += ramp
    rec.outcomes += outcomes
    verdicts, catch_up = await invariants(cs, rec, tenant, ledger)
    ok = [o for o in ramp if o.status == 200]
    good = _goodput(ramp, seconds)
    shed = [o for o in ramp if o.status == 429]
    # Waited out the deadline: no answer, 504, or any answer that came after it.
    late = [o for o in ramp if o.status in (0, 504) or o.ended - o.started >= DEADLINE_S]

    ok_s = [o.ended - o.started for o in ok]
    shed_s = [o.ended - o.started for o in shed]
    shed_p50_ms, shed_p99 = 1000 * percentile(shed_s, 0.5), percentile(shed_s, 0.99)
    targets = [
        Verdict(
            "goodput >= 80% of peak at 2x",
            good >= 0.8 * peak,
            f"{good:.0f}/s against a peak of {peak:.0f}/s ({100 * good / max(peak, 1e-9):.0f}%)",
        ),
        Verdict(
            "excess shed early, nothing times out",
            not late,
            f"{len(shed)} shed with 429 (p99 {shed_p99:.2f}s), {len(late)} timed out",
        ),
    ]
    figures = (
        "capacity (vegeta workers: successes/s) "
        + ", ".join(f"{c}: {r:.0f}" for c, r in steps)
        + f"; offered {rate}/s for {seconds:g}s: {len(ramp)} requests, goodput {good:.0f}/s "
        f"({100 * good / max(peak, 1e-9):.0f}% of peak), {len(shed)} shed with 429 + "
        f"Retry-After (p50 {shed_p50_ms:.0f} ms), {len(late)} timed out; successes "
        f"p50 {percentile(ok_s, 0.5):.2f}s p99 {percentile(ok_s, 0.99):.2f}s; statuses "
        f"{dict(Counter(f'{o.status} {o.reason}'.strip() for o in ramp))}; index caught up "
        f"in {catch_up:.1f}s"
    )
    return Result(
        "9 overload",
        "open-loop searches at 2x the measured capacity (vegeta)",
        f"capacity: 2-16 workers x {step_s:g}s; then {seconds:g}s at 2x peak",
        figures,
        verdicts,
        targets=targets,
    )


SCENARIOS: dict[str, Scenario] = {
    "ingest-kill": ingest_kills,
    "replica-kill": replica_kill,
    "db-down": database_down,
    "redis-down": redis_down,
    "sigterm": sigterm_each,
    "auth-down": auth_down,
    "provider-faults": provider_faults,
    "network-faults": network_faults,
    "overload": overload,
}
