"""The local model (real SmolLM2 on llama.cpp) runs in a supervised child process: a native
crash there fails the one answer in progress with MODEL_CRASHED (503, or an in-band error
event on a stream), the child is restarted, and the chat service, its other models and
/health carry on. A CPU without the runtime's instructions makes only the local model
unavailable, with the reason.

The crash is real: SIGSEGV to the worker, what a fault in a llama.cpp kernel does.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2

from ragline.chat.v1 import chat_service_pb2 as pb
from ragline.chat.v1 import chat_service_pb2_grpc as pb_grpc
from tests.conftest import free_port
from tests.support.assertions import error_body, reason_of
from tests.support.auth import DEV_KEY, DEV_TENANT
from tests.support.identity import as_tenant, identity_channel
from tests.support.processes import extra_service
from tests.support.websocket import ask

pytestmark = pytest.mark.e2e

WORKER_MODULE = b"ragline_chat.local_runtime.worker"
# Straight to a chat process, as the gateway would call it for the `api` fixture's key.
AS_DEV_TENANT = as_tenant(DEV_TENANT)
NO_AVX2_REASON = (
    "this CPU lacks avx2, fma: the local model's runtime needs sse4_2 avx avx2 fma f16c bmi2"
)
# Asks for a long answer, so the worker is still generating when it is killed.
LONG_ANSWER = "Write a long, detailed story about the Kestrel programming language and Nestbox."
KESTREL = (
    "Kestrel is a programming language created by Ines Varga in 2017. Kestrel programs "
    "compile to WebAssembly. The Kestrel package manager is called Nestbox."
)


# -- processes -------------------------------------------------------------------------------
def local_workers() -> list[dict[str, int]]:
    """Every live local model worker on this machine: pid, parent and process group."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if WORKER_MODULE not in (entry / "cmdline").read_bytes():
                continue
            state, ppid, pgrp = (entry / "stat").read_text().rpartition(")")[2].split()[:3]
        except OSError:
            continue
        if state != "Z":
            found.append({"pid": int(entry.name), "ppid": int(ppid), "pgrp": int(pgrp)})
    return found


def rpc_reason(exc: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason of a gRPC error's rich status."""
    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return str(info.reason)
    raise AssertionError(f"no ErrorInfo in {exc!r}")


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def until(check: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    """Polls `check` (sync or async) until it returns something truthy, which is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout:g}s (last: {value!r})")
        await asyncio.sleep(0.1)


# -- the session stack (through Envoy) ------------------------------------------------------------
@pytest.fixture(scope="module")
async def collection(stack) -> str:
    name = f"local-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(
        base_url=stack.cfg.base_url, timeout=120, headers={"authorization": f"Bearer {DEV_KEY}"}
    ) as api:
        reply = await api.post(
            "/api/v1/ingest",
            json={"collection": name, "documents": [{"title": "Kestrel", "content": KESTREL}]},
        )
        assert reply.status_code == 200, reply.text

        async def searchable() -> bool:
            found = await api.post("/api/v1/search", json={"query": "Kestrel", "collection": name})
            return found.status_code == 200 and bool(found.json()["hits"])

        await until(searchable, "searchable")
    return name


async def local_available(api: httpx.AsyncClient) -> bool:
    models = (await api.get("/api/v1/chat-models")).json()["models"]
    return bool(next(m for m in models if m["name"] == "local")["available"])


def stack_worker(stack) -> dict[str, int] | None:
    """The session chat service's worker: in the chat component's process group (whose
    leader is the chat process or a supervisor around it)."""
    group = stack.pid("chat")
    workers = [w for w in local_workers() if w["pgrp"] == group]
    return workers[0] if len(workers) == 1 else None


async def test_a_crash_mid_stream_ends_that_stream_and_the_service_carries_on(
    api, stack, collection
):
    await until(lambda: local_available(api), "local model available")
    before = await until(lambda: stack_worker(stack), "a worker")
    chat_pid = before["ppid"]
    events: list[dict[str, Any]] = []
    async with api.stream(
        "POST",
        "/api/v1/chat",
        json={
            "message": LONG_ANSWER,
            "model": "local",
            "collection": collection,
            "stream": True,
            "max_tokens": 512,
            "temperature": 0,
        },
        timeout=180,
    ) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            events.append(json.loads(line[5:]))
            if "delta" in events[-1] and sum("delta" in e for e in events) == 1:
                os.kill(before["pid"], signal.SIGSEGV)
    kinds = [next(iter(e)) for e in events if "ping" not in e]
    assert kinds[0] == "start" and "delta" in kinds and "done" not in kinds, kinds
    error = events[-1]["error"]
    assert error["reason"] == "MODEL_CRASHED" and error["code"] == 14, error
    assert "crashed (signal SIGSEGV)" in error["message"]

    # The chat process is the same one; /health stays green while the model restarts.
    assert alive(chat_pid)
    await restarted_with_health_green(api)
    second = await until(lambda: stack_worker(stack), "a new worker")
    assert second["pid"] != before["pid"] and second["ppid"] == chat_pid

    # A WebSocket answer gets the in-band error too, and the connection stays open.
    url = f"ws://127.0.0.1:{stack.cfg.api_port}/api/v1/chat/ws"
    headers = {"authorization": f"Bearer {DEV_KEY}"}
    async with aiohttp.ClientSession(headers=headers) as session, session.ws_connect(url) as ws:
        await ws.send_json(
            {"message": LONG_ANSWER, "model": "local", "collection": collection, "max_tokens": 512}
        )
        frames = []
        while not frames or not ({"done", "error"} & frames[-1].keys()):
            frames.append(await asyncio.wait_for(ws.receive_json(), 120))
            if "delta" in frames[-1] and sum("delta" in f for f in frames) == 1:
                os.kill(second["pid"], signal.SIGSEGV)
        assert frames[-1]["error"]["reason"] == "MODEL_CRASHED", frames[-1]
        # Still open: the next message on it is answered (default model, while the local
        # one restarts).
        again = await ask(ws, {"message": "Who created Kestrel?", "max_tokens": 32})
        assert "done" in again[-1], again[-1]
    await restarted_with_health_green(api)
    assert alive(chat_pid)

    # The next answer works, from the local model.
    reply = await api.post(
        "/api/v1/chat",
        json={
            "message": "Who created Kestrel?",
            "model": "local",
            "collection": collection,
            "max_tokens": 32,
            "temperature": 0,
        },
        timeout=180,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["model"] == "local" and reply.json()["answer"].strip()
    assert (await api.get("/health")).status_code == 200
    log = stack.log_path("chat").read_text()
    assert "local chat model worker died; restarting it" in log and "SIGSEGV" in log


async def restarted_with_health_green(api: httpx.AsyncClient) -> None:
    """Waits for the local model to be back, checking /health all the while."""
    deadline = time.monotonic() + 120
    while not await local_available(api):
        health = await api.get("/health")
        assert health.status_code == 200, health.text
        assert health.json()["components"]["chat"] == "SERVING"
        assert time.monotonic() < deadline, "the local model did not come back"
        await asyncio.sleep(0.1)


# -- a chat process of its own (no fallback, or a simulated CPU) ---------------------------------
async def list_models(addr: str) -> dict[str, pb.ChatModel]:
    async with identity_channel(addr) as channel:
        reply = await pb_grpc.ChatServiceStub(channel).ListChatModels(
            pb.ListChatModelsRequest(), timeout=10, metadata=AS_DEV_TENANT
        )
    return {m.name: m for m in reply.models}


def chat_request(collection: str, message: str, max_tokens: int) -> dict[str, Any]:
    return {
        "message": message,
        "model": "local",
        "collection": collection,
        "max_tokens": max_tokens,
        "temperature": 0,
    }


async def test_without_fallback_a_crash_is_503_model_crashed_unary_and_in_band_on_grpc(
    stack, collection, tmp_path
):
    port, http_port = free_port(), free_port()
    log = tmp_path / "chat.log"
    env = {
        "CHAT_FALLBACK_MODELS": "none",
        "PROVIDER_TIMEOUT": "120",
        "CHAT_HTTP_ADDR": f"127.0.0.1:{http_port}",
    }
    with extra_service(stack, "chat", port, free_port(), log, **env) as proc:
        addr = f"127.0.0.1:{port}"

        async def ready() -> bool:
            return (await list_models(addr))["local"].available

        await until(ready, "local model available")
        mine = [w for w in local_workers() if w["ppid"] == proc.pid]
        assert len(mine) == 1, mine
        async with identity_channel(addr) as channel:
            stub = pb_grpc.ChatServiceStub(channel)
            # Unary: kill the worker while it works on this answer (its CPU time moves).
            idle = cpu_ticks(mine[0]["pid"])
            call = asyncio.ensure_future(
                stub.Chat(
                    pb.ChatRequest(**chat_request(collection, LONG_ANSWER, 512)),
                    timeout=180,
                    metadata=AS_DEV_TENANT,
                )
            )
            await until(lambda: cpu_ticks(mine[0]["pid"]) > idle, "the worker busy")
            os.kill(mine[0]["pid"], signal.SIGSEGV)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert rpc_reason(caught.value) == "MODEL_CRASHED"
            assert "crashed (signal SIGSEGV)" in (caught.value.details() or "")

            # A native gRPC stream ends with an in-band error event.
            await until(ready, "local model restarted")
            [second] = [w for w in local_workers() if w["ppid"] == proc.pid]
            assert second["pid"] != mine[0]["pid"]
            kinds = []
            async for event in stub.StreamChat(
                pb.StreamChatRequest(**chat_request(collection, LONG_ANSWER, 512)),
                timeout=180,
                metadata=AS_DEV_TENANT,
            ):
                kinds.append(event.WhichOneof("event"))
                if kinds.count("delta") == 1 and kinds[-1] == "delta":
                    os.kill(second["pid"], signal.SIGSEGV)
                last = event
            assert "done" not in kinds and kinds[-1] == "error", kinds
            assert last.error.reason == "MODEL_CRASHED" and last.error.code == 14

            # Same chat process throughout; the next answer comes from the local model.
            await until(ready, "local model restarted")
            assert proc.poll() is None
            reply = await stub.Chat(
                pb.ChatRequest(**chat_request(collection, "Who created Kestrel?", 32)),
                timeout=180,
                metadata=AS_DEV_TENANT,
            )
            assert reply.model == "local" and reply.answer.strip()
        assert proc.poll() is None
    text = log.read_text()
    assert text.count("local chat model crashed while answering") == 2


async def test_a_cpu_without_avx2_makes_only_the_local_model_unavailable(
    stack, collection, tmp_path
):
    cpuinfo = tmp_path / "cpuinfo"
    flags = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c bmi1 bmi2 popcnt"  # no avx2, no fma
    cpuinfo.write_text("".join(f"processor\t: {i}\nflags\t\t: {flags}\n\n" for i in range(2)))
    port, http_port = free_port(), free_port()
    log = tmp_path / "chat.log"
    env = {
        "CHAT_LOCAL_CPUINFO_PATH": str(cpuinfo),
        "CHAT_FALLBACK_MODELS": "none",
        "CHAT_HTTP_ADDR": f"127.0.0.1:{http_port}",
    }
    with extra_service(stack, "chat", port, free_port(), log, **env) as proc:
        addr = f"127.0.0.1:{port}"

        async def settled() -> dict[str, pb.ChatModel] | None:
            models = await list_models(addr)
            return models if "local chat model unavailable" in log.read_text() else None

        models = await until(settled, "the CPU checked")
        assert not models["local"].available
        assert models["extractive"].available
        assert not [w for w in local_workers() if w["ppid"] == proc.pid]  # never started
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{http_port}",
            timeout=60,
            headers={**dict(AS_DEV_TENANT), "x-ragline-collection": collection},
        ) as edge:
            listed = (await edge.get("/v1/models")).json()["data"]
            local = next(m for m in listed if m["id"] == "local")
            assert local["available"] is False
            assert local["unavailable_reason"] == NO_AVX2_REASON
            refused = await edge.post(
                "/v1/chat/completions",
                json={"model": "local", "messages": [{"role": "user", "content": "hi"}]},
            )
            body = error_body(refused, 503)
            assert reason_of(body) == "PROVIDER_NOT_CONFIGURED"
            assert NO_AVX2_REASON in body["message"]
            answered = await edge.post(
                "/v1/chat/completions",
                json={
                    "model": "extractive",
                    "messages": [{"role": "user", "content": "Who created Kestrel?"}],
                },
            )
            assert answered.status_code == 200, answered.text
            assert "Ines Varga" in answered.json()["choices"][0]["message"]["content"]
        assert proc.poll() is None
    assert NO_AVX2_REASON in log.read_text()
