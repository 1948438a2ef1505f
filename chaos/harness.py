"""The battery's stack and clients: a real stack on free loopback ports in a temp folder,
tenants with their own keys, and load that records every request's outcome.

Every process the battery starts is recorded by pid and stopped by it, also on failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ragline_core.caller import IDENTITY_HEADER, Caller, InternalTokens
from ragline_stack.stack import ROOT, Stack, free_port_config
from tests.support.fake_llm import FakeLlm
from tests.support.fake_providers import FakeProvider

# The gateway's deadline for every request; a client waits this + 1 s before it calls the
# request hung (the invariant: an answer within the deadline + 1 s).
DEADLINE_S = 10.0
CLIENT_WAIT_S = DEADLINE_S + 1.0
# The collection every tenant of the battery writes to: the same name under several
# tenants, so a search that crossed tenants would show it.
COLLECTION = "chaos"
# The admin development key (VALID_API_KEYS defaults: tenant dev-1, every scope) and a
# second tenant whose documents under COLLECTION must never be seen by the others.
ADMIN_KEY = "dev-key-1"
DECOY_KEY = "dev-key-2"
DECOY_PREFIX = "decoy-"
COMPONENTS = ("auth", "embedder", "retriever", "chat", "ingest", "database", "redis")
WORDS = ["harbour", "lantern", "orchard", "glacier", "meadow", "canyon", "quarry", "summit"]


def now() -> float:
    return time.monotonic()


@dataclass
class Outcome:
    """One request's answer as the client saw it."""

    op: str
    tenant: str
    started: float
    ended: float
    status: int  # 0: no answer (hung past the deadline + 1 s, or the connection failed)
    reason: str = ""
    message: str = ""
    # "ok", "clear" (an error a client can act on) or "bad" (a violation), and why.
    verdict: str = "ok"
    why: str = ""
    # The tenant is known to the gateway: the request is counted in usage analytics.
    counted: bool = True


def error_info(body: Any) -> tuple[str, str]:
    if not isinstance(body, dict):
        return "", ""
    reason = ""
    for detail in body.get("details") or []:
        if isinstance(detail, dict) and detail.get("reason"):
            reason = str(detail["reason"])
    return reason, str(body.get("message", ""))


def classify(
    status: int, reason: str, message: str, allowed: tuple[int, ...] = ()
) -> tuple[str, str]:
    """(verdict, why) of an answer: success, a clear error, or a violation."""
    if 200 <= status < 300:
        return "ok", ""
    if status in (429, 504) or status in allowed:
        return "clear", ""
    if status == 503:
        text = f"{reason} {message}".lower()
        if reason.endswith("_UNAVAILABLE") or any(c in text for c in COMPONENTS):
            return "clear", ""
        return "bad", f"503 naming no component: {reason or message!r}"
    if status == 0:
        return "bad", message or "no answer"
    return "bad", f"{status} {reason} {message}"[:200]


@dataclass
class Tenant:
    """A tenant made for one scenario (own key, own usage), prefixing its document ids."""

    name: str
    key: str
    prefix: str

    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.key}"}


@dataclass
class Ledger:
    """What the battery asked the stack to store, and which answers acknowledged it."""

    # document id -> content of its last acknowledged write (a document is written again
    # only once its previous write is acknowledged or given up).
    acked: dict[str, str] = field(default_factory=dict)
    # document id -> every content ever sent (an unacknowledged write may still land).
    attempted: dict[str, set[str]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)

    def attempt(self, doc_id: str, content: str) -> None:
        self.attempted.setdefault(doc_id, set()).add(content)

    def ack(self, doc_id: str, content: str) -> None:
        self.acked[doc_id] = content
        self.deleted.discard(doc_id)

    def ack_delete(self, doc_id: str) -> None:
        self.acked.pop(doc_id, None)
        self.deleted.add(doc_id)


class Recorder:
    """Every outcome of a scenario, and the calls that make them."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.outcomes: list[Outcome] = []
        # Calls started and not yet answered, per op (to signal a service mid-request).
        self.inflight: Counter[str] = Counter()
        self.client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(CLIENT_WAIT_S),
            limits=httpx.Limits(max_connections=64),
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def call(
        self,
        op: str,
        tenant: Tenant,
        method: str,
        path: str,
        *,
        allowed: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> tuple[Outcome, Any]:
        """One request; its outcome is recorded, its JSON body returned (None if none)."""
        started = now()
        headers = {**tenant.headers(), **kwargs.pop("headers", {})}
        body: Any = None
        self.inflight[op] += 1
        try:
            reply = await self.client.request(method, path, headers=headers, **kwargs)
            status = reply.status_code
            with contextlib.suppress(ValueError):
                body = reply.json()
        except httpx.TimeoutException:
            status, body = 0, {"message": f"no answer within {CLIENT_WAIT_S:g}s (hung)"}
        except httpx.HTTPError as exc:
            status, body = 0, {"message": f"connection failed: {type(exc).__name__}"}
        finally:
            self.inflight[op] -= 1
        reason, message = error_info(body) if status >= 300 or status == 0 else ("", "")
        verdict, why = classify(status, reason, message, allowed)
        outcome = Outcome(op, tenant.name, started, now(), status, reason, message, verdict, why)
        # Refused before the tenant was known: not tenant usage (docs/gateway.md).
        outcome.counted = status not in (0, 401) and reason != "AUTH_UNAVAILABLE"
        if op == "search" and status == 200 and isinstance(body, dict):
            foreign = [
                h.get("document_id", "")
                for h in body.get("hits", [])
                if not str(h.get("document_id", "")).startswith(tenant.prefix)
            ]
            if foreign:
                outcome.verdict, outcome.why = "bad", f"another tenant's data: {foreign[:3]}"
        self.outcomes.append(outcome)
        return outcome, body


def paragraph(seed: int, words: int) -> str:
    rng = __import__("random").Random(seed)
    return " ".join(f"{rng.choice(WORDS)}{rng.randrange(1000)}" for _ in range(words))


async def run_load(
    ops: list[Callable[[], Awaitable[Any]]],
    clients: int,
    stop: asyncio.Event,
    max_seconds: float,
    pause_s: float = 0.02,
) -> int:
    """`clients` loops calling `ops` in turn until `stop` is set or `max_seconds` pass
    (bounded both ways); the number of calls made."""
    deadline = now() + max_seconds
    calls = 0

    async def client(i: int) -> None:
        nonlocal calls
        k = i
        while not stop.is_set() and now() < deadline:
            await ops[k % len(ops)]()
            calls += 1
            k += 1
            await asyncio.sleep(pause_s)

    await asyncio.gather(*(client(i) for i in range(clients)))
    return calls


async def wait_for(
    check: Callable[[], Awaitable[Any]], timeout: float, what: str, interval: float = 0.2
) -> float:
    """Awaits `check()` until truthy; the seconds it took (raises after `timeout`)."""
    started = now()
    while True:
        if await check():
            return now() - started
        if now() - started > timeout:
            raise TimeoutError(f"not {what} after {timeout:g}s")
        await asyncio.sleep(interval)


class ChaosStack:
    """One stack for a whole run, plus the extra processes scenarios start, and wire-level
    fakes of the paid providers (Voyage embeddings, OpenAI chat) on loopback."""

    def __init__(self, run_dir: Path, **env: str) -> None:
        self.token_key = secrets.token_urlsafe(48)
        self.voyage = FakeProvider("voyage")
        self.openai = FakeLlm("openai")
        cfg = free_port_config(
            run_dir,
            LOG_LEVEL="INFO",
            INTERNAL_TOKEN_KEYS=self.token_key,
            DEV_KEYS_TIER="enterprise",
            # A killed ingest's running job is taken over within seconds, not the default 30.
            JOB_STALE_AFTER_S="3",
            VOYAGE_AI_API_KEY="pa-chaos-fake-key-0123456789",
            VOYAGE_BASE_URL=self.voyage.base_url,
            OPENAI_API_KEY="sk-chaos-fake-key-0123456789",
            CHAT_OPENAI_BASE_URL=self.openai.base_url,
            # The first answer of a failing paid model comes from these.
            EMBEDDING_FALLBACK_MODELS="all-MiniLM-L6-v2",
            CHAT_FALLBACK_MODELS="extractive",
            PROVIDER_TIMEOUT="2",
            PROVIDER_BACKOFF_BASE="0.05",
            PROVIDER_BACKOFF_MAX="0.2",
            **env,
        )
        cfg.database = "ragline_chaos"
        # The overload scenario (9) measures the services, not the per-key rate limits.
        cfg.rate_limit_scale = 100
        cfg.request_timeout_s = DEADLINE_S
        cfg.max_request_bytes = 2 * 1024 * 1024
        self.cfg = cfg
        self.stack = Stack(cfg)
        self.extra: list[subprocess.Popen[bytes]] = []

    @property
    def mongo_uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.cfg.mongo_port}"

    def identity(self, tenant: str) -> tuple[tuple[str, str], ...]:
        """gRPC metadata for calling a service's port straight, as the gateway would."""
        scopes = ("embeddings", "search", "chat", "ingest", "analytics", "admin")
        caller = Caller(tenant, "chaos", scopes, "enterprise", "api_key")
        return ((IDENTITY_HEADER, InternalTokens([self.token_key]).mint(caller, 3600)),)

    def start_extra(
        self, name: str, port: int, metrics_port: int, **env: str
    ) -> subprocess.Popen[bytes]:
        """Another process of a service on `port` (same stores), stopped by `stop_all`."""
        environ = self.cfg.env()
        environ[f"{name.upper()}_ADDR"] = f"127.0.0.1:{port}"
        environ[f"{name.upper()}_METRICS_PORT"] = str(metrics_port)
        environ.update(env)
        log = self.cfg.log_dir / f"{name}-{port}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", f"ragline_{name}"],
                env=environ,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.extra.append(proc)
        return proc

    def stop_extra(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, sig)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)

    def stop_all(self) -> None:
        for proc in self.extra:
            self.stop_extra(proc)
        self.stack.stop_all()
        for fake in (self.voyage, self.openai):
            with contextlib.suppress(Exception):
                fake.stop()


@contextlib.contextmanager
def chaos_stack(keep: bool = False, **env: str) -> Iterator[ChaosStack]:
    """Starts the stack in a temp folder; stops every process it started on the way out."""
    run_dir = Path(tempfile.mkdtemp(prefix="ragline-chaos-"))
    running = ChaosStack(run_dir, **env)
    try:
        running.voyage.start()
        running.openai.start()
        running.stack.start_all(timeout=300)
        yield running
    except BaseException:
        for name in running.stack.components():
            path = running.stack.log_path(name)
            if path.exists():
                print(f"--- {name} (last lines) ---\n" + path.read_text()[-1500:], file=sys.stderr)
        raise
    finally:
        running.stop_all()
        if not keep:
            shutil.rmtree(run_dir, ignore_errors=True)


@contextlib.asynccontextmanager
async def recorder(base_url: str) -> AsyncIterator[Recorder]:
    rec = Recorder(base_url)
    try:
        yield rec
    finally:
        await rec.close()


async def new_tenant(rec: Recorder, label: str) -> Tenant:
    """A tenant with its own enterprise key (its usage is the scenario's alone)."""
    name = f"chaos-{label}-{secrets.token_hex(3)}"
    admin = Tenant("dev-1", ADMIN_KEY, "")
    for _ in range(20):  # the auth service may be catching up after a previous scenario
        reply = await rec.client.post(
            "/api/v1/keys",
            json={
                "tenant": name,
                "scopes": ["embeddings", "search", "chat", "ingest", "analytics"],
                "tier": "enterprise",
            },
            headers=admin.headers(),
        )
        if reply.status_code == 200:
            return Tenant(name, reply.json()["key"], f"{label}-")
        await asyncio.sleep(0.5)
    raise RuntimeError(f"could not create a key: {reply.status_code} {reply.text[:200]}")


async def seed_decoy(rec: Recorder) -> None:
    """The decoy tenant's documents under COLLECTION, matching every battery query."""
    docs = [
        {"id": f"{DECOY_PREFIX}{i}", "title": "decoy", "content": paragraph(10_000 + i, 60)}
        for i in range(8)
    ]
    reply = await rec.client.post(
        "/api/v1/ingest",
        json={"collection": COLLECTION, "documents": docs},
        headers={"authorization": f"Bearer {DECOY_KEY}"},
    )
    if reply.status_code != 200:
        raise RuntimeError(f"decoy ingest failed: {reply.status_code} {reply.text[:200]}")
