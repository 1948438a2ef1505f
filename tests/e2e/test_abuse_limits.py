"""Cheap requests that cost a lot, through the real Envoy: each is refused (or bounded)
quickly, and another tenant's requests keep their latency while it runs."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.assertions import error_body, reason_of
from tests.support.auth import DEV_KEY_2
from tests.support.gateway import bearer, create_key, wait_until
from tests.support.hostile_files import (
    BLANK_TEXT_OP,
    docx_billion_laughs,
    docx_paragraph_bomb,
    pdf_heavy_content,
)

pytestmark = pytest.mark.e2e

MODELS = "/api/v1/embedding-models"
# AUTH_MAX_FAILURES_PER_ADDRESS's default, which the test stack keeps.
FAILURES_PER_ADDRESS = 30
Probe = Callable[[int], Awaitable[httpx.Response]]


def _name() -> str:
    return f"c{uuid.uuid4().hex[:10]}"


async def _ingest(client: httpx.AsyncClient, collection: str, documents: list[dict]) -> dict:
    reply = await client.post(
        "/api/v1/ingest", json={"collection": collection, "documents": documents}
    )
    assert reply.status_code == 200, reply.text
    job = reply.json()["job"]

    async def finished() -> bool:
        nonlocal job
        job = (await client.get(f"/api/v1/jobs/{job['job_id']}")).json()
        return job["state"] in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED")

    await wait_until(finished, timeout=180, interval=0.2)
    assert job["state"] == "JOB_STATE_SUCCEEDED", job
    return reply.json()


@pytest.fixture
async def victim(stack) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """Another tenant (dev-2) with a small collection of its own."""
    async with httpx.AsyncClient(
        base_url=stack.cfg.base_url, timeout=60, headers=bearer(DEV_KEY_2)
    ) as client:
        collection = _name()
        await _ingest(
            client,
            collection,
            [{"title": "Harbour", "content": "The harbour master logs every ship."}],
        )
        yield client, collection


async def _during(probe: Probe, attack: Awaitable[Any]) -> tuple[Any, float, list[float]]:
    """Runs `attack` while `probe` repeats; the attack's result and seconds, and the
    latency of every probe that ran meanwhile (at least one)."""
    stop = asyncio.Event()

    async def probing() -> list[float]:
        latencies: list[float] = []
        i = 0
        while not stop.is_set() or not latencies:
            started = time.monotonic()
            reply = await probe(i)
            assert reply.status_code == 200, reply.text
            latencies.append(time.monotonic() - started)
            i += 1
        return latencies

    task = asyncio.create_task(probing())
    started = time.monotonic()
    try:
        result = await attack
    finally:
        elapsed = time.monotonic() - started
        stop.set()
    return result, elapsed, await task


def _search_probe(victim: tuple[httpx.AsyncClient, str]) -> Probe:
    client, collection = victim

    def probe(i: int) -> Awaitable[httpx.Response]:
        # A new query each time: never answered from the search cache.
        body = {
            "query": f"harbour ship {i}",
            "collection": collection,
            "mode": "SEARCH_MODE_KEYWORD",
        }
        return client.post("/api/v1/search", json=body)

    return probe


def _report(case: str, elapsed: float, latencies: list[float]) -> None:
    print(
        f"\n{case}: answered in {elapsed:.2f} s; another tenant's {len(latencies)} requests "
        f"meanwhile: max {max(latencies) * 1000:.0f} ms, "
        f"median {sorted(latencies)[len(latencies) // 2] * 1000:.0f} ms"
    )


async def test_a_huge_in_list_is_400_at_once_and_stalls_no_one(api, victim):
    collection = _name()
    docs = [
        {
            "title": f"Doc {i}",
            "content": f"Shipping note {i} about harbours.",
            # A field every chunk has: each is compared with the filter's list.
            "metadata": {"tag": f"t{i}"},
        }
        for i in range(200)
    ]
    await _ingest(api, collection, docs)
    values = [f"value-{i:08d}" for i in range(50_000)]
    body = {"query": "harbour", "collection": collection, "mode": "SEARCH_MODE_KEYWORD"}
    huge = {**body, "filters": {"tag": {"$in": values}}}
    assert 850_000 < len(json.dumps(huge)) < 1_000_000  # the 900 KB that took 5.3 s
    reply, elapsed, latencies = await _during(
        _search_probe(victim), api.post("/api/v1/search", json=huge)
    )
    _report("900 KB $in list", elapsed, latencies)
    assert reason_of(error_body(reply, 400)) == "FILTER_TOO_LARGE"
    assert "the limit is" in reply.json()["message"]
    assert elapsed < 3 and max(latencies) < 1.5, (elapsed, latencies)
    # The largest list allowed is answered, and as cheaply.
    allowed = {**body, "filters": {"tag": {"$in": values[:1000]}}}
    reply, elapsed, latencies = await _during(
        _search_probe(victim), api.post("/api/v1/search", json=allowed)
    )
    _report("1000-value $in list (the limit)", elapsed, latencies)
    assert reply.status_code == 200 and reply.json()["hits"] == []
    assert elapsed < 3 and max(latencies) < 1.5, (elapsed, latencies)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _children(pid: int) -> list[str]:
    tasks = Path(f"/proc/{pid}/task").glob("*/children")
    return [c for t in tasks for c in t.read_text().split()]


def _ingest_pid(stack) -> int:
    child_pid = getattr(stack, "child_pid", None)  # a supervised stack runs it as a child
    pid = child_pid("ingest") if child_pid else None
    pid = pid or stack.pid("ingest")
    assert pid is not None
    return int(pid)


def _listing_probe(victim: tuple[httpx.AsyncClient, str]) -> Probe:
    """The other tenant's calls to the ingest service itself."""
    client, collection = victim
    return lambda _: client.get(f"/api/v1/collections/{collection}/documents")


async def _upload(api, filename: str, data: bytes) -> httpx.Response:
    return await api.post(
        f"/api/v1/collections/{_name()}/documents:upload",
        params={"filename": filename},
        content=data,
        headers={"content-type": "application/octet-stream"},
    )


@pytest.mark.parametrize(
    ("filename", "make", "reason"),
    [
        # 135 KB inflating to 34 MB of XML: held a core ~2 min, ingest 139 -> 730 MB.
        ("paragraphs.docx", docx_paragraph_bomb, "DOCUMENT_TOO_COMPLEX"),
        # XML entities nested ten deep: a 500 before.
        ("laughs.docx", docx_billion_laughs, "BAD_DOCX"),
        # 15 KB with a 5 MB content stream: 5.9 s of parsing.
        ("heavy.pdf", pdf_heavy_content, "DOCUMENT_TOO_COMPLEX"),
    ],
)
async def test_hostile_uploads_are_400_and_cost_the_service_nothing(
    api, stack, victim, filename, make, reason
):
    pid = _ingest_pid(stack)
    before = _rss_mb(pid)
    reply, elapsed, latencies = await _during(
        _listing_probe(victim), _upload(api, filename, make())
    )
    grown = _rss_mb(pid) - before
    _report(f"{filename} (ingest grew {grown:.0f} MB)", elapsed, latencies)
    body = error_body(reply, 400)
    assert reason_of(body) == reason, body
    assert reason == "BAD_DOCX" or "the limit" in body["message"], body
    assert elapsed < 8 and grown < 40 and max(latencies) < 1.5, (elapsed, grown, latencies)


async def test_a_slow_upload_is_cut_at_the_time_limit(api, stack, victim):
    """Twenty pages of 1 MB content streams (each under the page cap) of blank text take
    well over UPLOAD_EXTRACT_TIMEOUT_S (10 s) to read and yield no characters: the child is
    killed at the limit, on a fast machine too."""
    slow = pdf_heavy_content(1000 * 1024, 20, BLANK_TEXT_OP)
    upload = _upload(api, "slow.pdf", slow)
    reply, elapsed, latencies = await _during(_listing_probe(victim), upload)
    _report("slow.pdf", elapsed, latencies)
    assert reason_of(error_body(reply, 400)) == "EXTRACTION_TIMEOUT"
    assert 10 <= elapsed < 15 and max(latencies) < 1.5, (elapsed, latencies)
    assert not _children(_ingest_pid(stack))  # no extraction child outlives its request


async def test_unknown_keys_from_one_address_are_429_past_the_limit(api, stack):
    """Each unknown key cost a read of the key store; past AUTH_MAX_FAILURES_PER_ADDRESS
    an address is refused without one. Clients bind their own loopback address."""

    def client_from(address: str) -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(local_address=address)
        return httpx.AsyncClient(base_url=stack.cfg.base_url, transport=transport, timeout=30)

    key, _ = await create_key(api, f"t-{secrets.token_hex(4)}", ["embeddings"])
    address = f"127.0.{secrets.randbelow(200) + 1}.{secrets.randbelow(200) + 2}"
    async with client_from(address) as attacker, client_from("127.0.0.1") as neighbour:

        def guess() -> dict[str, str]:
            return bearer(f"rl_live_{secrets.token_urlsafe(32)}")

        for _ in range(FAILURES_PER_ADDRESS):
            reply = await attacker.get(MODELS, headers=guess())
            assert reason_of(error_body(reply, 401)) == "INVALID_API_KEY"
        reply = await attacker.get(MODELS, headers=guess())
        assert reason_of(error_body(reply, 429)) == "TOO_MANY_FAILED_ATTEMPTS"
        assert 1 <= int(reply.headers["retry-after"]) <= 60
        # While the window lasts, even a real key the auth service has not cached is
        # refused from there (no store read)...
        assert (await attacker.get(MODELS, headers=bearer(key))).status_code == 429
        # ...and nothing changes for other addresses.
        assert (await neighbour.get(MODELS, headers=guess())).status_code == 401
        assert (await neighbour.get(MODELS, headers=bearer(key))).status_code == 200


async def test_text_without_spaces_is_chunked_in_token_windows(api):
    """49,500 characters of Chinese without a space or full stop: one chunk before (its
    embedding stopped at 256 tokens), now windows of at most 200 tokens."""
    collection = _name()
    text = "检索增强生成是一种技术" * 4500
    body = await _ingest(api, collection, [{"title": "RAG", "content": text}])
    document_id = body["document_ids"][0]
    doc = (await api.get(f"/api/v1/collections/{collection}/documents/{document_id}")).json()
    assert doc["chunk_count"] >= 200, doc["chunk_count"]
    hits = (
        await api.post(
            "/api/v1/search",
            json={"query": "检索增强生成", "collection": collection, "limit": 3},
        )
    ).json()["hits"]
    assert hits and all(len(h["text"]) <= 2000 for h in hits)
