"""The Python SDK (clients/python) against the suite's stack, as a user calls it: every area
on both transports (REST and native gRPC through the gateway, same typed results), the
error classes (404, 400 with field violations, 401, 403, 429 with retry_after), paginating
iterators across pages, streaming chat events, job watch progress, idempotent ingest, and
the async client."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ragline_client import (
    ApiKeyState,
    AsyncClient,
    ChatUsage,
    Citation,
    Client,
    DocumentInput,
    FinishReason,
    InvalidArgumentError,
    Job,
    JobState,
    MessageRole,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    SearchMode,
    StreamDelta,
    StreamDone,
    StreamPing,
    StreamStart,
    UnauthenticatedError,
)
from ragline_stack.stack import Stack
from tests.support.auth import DEV_KEY

pytestmark = pytest.mark.e2e

TRANSPORTS = ["rest", "grpc"]
DOCS = [
    DocumentInput(
        "Envoy transcodes JSON requests to gRPC and back.",
        title="Envoy",
        metadata={"category": "proxy", "year": 2016},
    ),
    DocumentInput(
        "Redis keeps data in memory and persists it to disk.",
        title="Redis",
        metadata={"category": "store", "year": 2009},
    ),
    DocumentInput(
        "FerretDB speaks the MongoDB wire protocol on top of SQLite.",
        title="FerretDB",
        metadata={"category": "store", "year": 2021},
    ),
]


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(params=TRANSPORTS)
def client(request, stack: Stack) -> Iterator[Client]:
    with Client(stack.cfg.base_url, DEV_KEY, prefer_grpc=request.param == "grpc") as c:
        yield c


@pytest.fixture
def collection(client: Client) -> Iterator[str]:
    name = _name("sdk")
    result = client.ingest(name, DOCS, wait=True)
    assert result.job is not None and result.job.state is JobState.SUCCEEDED, result
    yield name
    client.delete_collection(name)


def test_embeddings_and_paginated_models(client):
    reply = client.embed(["hello world", "goodbye"])
    assert reply.model == "all-MiniLM-L6-v2" and reply.dimensions == 384
    assert [e.index for e in reply.embeddings] == [0, 1]
    assert all(len(e.values) == 384 for e in reply.embeddings)
    one = client.embed("just one")
    assert len(one.embeddings) == 1 and one.embeddings[0].token_count > 0
    # page_size 1 walks every page; the same list as the default page size.
    paged = [m.name for m in client.list_embedding_models(page_size=1)]
    assert paged == [m.name for m in client.list_embedding_models()] and len(paged) > 2
    pages = list(client.list_embedding_models(page_size=1).pages())
    assert len(pages) == len(paged) and pages[-1].next_page_token == ""


def test_search_with_every_option(client, collection):
    results = client.search("what transcodes JSON?", collection, limit=2, facets=["category"])
    assert results.hits[0].title == "Envoy" and results.mode is SearchMode.HYBRID
    assert results.hits[0].metadata == {"category": "proxy", "year": 2016}
    [facet] = results.facets
    assert facet.field == "category" and "proxy" in {v.value for v in facet.values}
    filtered = client.search("data", collection, filters={"category": "store"})
    assert {h.title for h in filtered.hits} == {"Redis", "FerretDB"}
    dense = client.search("memory database", collection, mode=SearchMode.DENSE, rerank=True)
    assert dense.mode is SearchMode.DENSE and dense.reranked and dense.hits
    keyword = client.search("SQLite", collection, mode="SEARCH_MODE_KEYWORD")
    assert keyword.mode is SearchMode.KEYWORD and keyword.hits[0].title == "FerretDB"
    first = client.search("protocol data JSON", collection, page_size=1)
    assert len(first.hits) == 1 and first.next_page_token
    second = client.search(
        "protocol data JSON", collection, page_size=1, page_token=first.next_page_token
    )
    assert second.hits and second.hits[0].chunk_id != first.hits[0].chunk_id
    assert "ferretdb" in [s.lower() for s in client.suggest(collection, "ferr")]


def test_caller_configuration_and_index_status(client, collection):
    me = client.caller()
    assert me.tenant == "dev-1" and "admin" in me.scopes and me.credential_type == "api_key"
    config = client.get_configuration()
    services = {svc.service: svc for svc in config.services}
    assert {"embedder", "retriever", "auth"} <= set(services)
    auth = {x.name: x for x in services["auth"].settings}
    assert auth["API_KEY_PEPPER"].redacted and auth["API_KEY_PEPPER"].value == "[set]"
    assert services["auth"].report_time is not None
    free = next(t for t in config.rate_limit_tiers if t.tier == "free")
    assert {x.endpoint_group: x.requests_per_minute for x in free.limits}["chat"] == 20
    client.search("what transcodes JSON?", collection)  # the replica loads the collection
    status = client.get_index_status(collection)
    assert status.collection == collection and status.loaded and status.indexed_chunks == 3
    assert isinstance(status.database_version, int) and status.database_version >= 1
    with pytest.raises(NotFoundError):
        client.get_index_status("no-such-collection")


def test_documents_and_collections_paginate_get_and_delete(client, collection):
    docs = list(client.list_documents(collection, page_size=1))
    assert sorted(d.title for d in docs) == ["Envoy", "FerretDB", "Redis"]
    pages = list(client.list_documents(collection, page_size=2).pages())
    assert [len(p.items) for p in pages] == [2, 1]
    envoy = next(d for d in docs if d.title == "Envoy")
    full = client.get_document(collection, envoy.document_id)
    assert full.content == DOCS[0].content and full.chunk_count == 1
    info = client.get_collection(collection)
    assert info.document_count == 3 and info.dimensions == 384
    assert collection in [c.name for c in client.list_collections(page_size=1)]
    assert client.delete_document(collection, envoy.document_id).chunks_deleted == 1
    with pytest.raises(NotFoundError) as caught:
        client.get_document(collection, envoy.document_id)
    assert caught.value.reason.endswith("NOT_FOUND")
    assert client.get_collection(collection).document_count == 2


def test_upload_file_and_folder(client, tmp_path: Path):
    name = _name("sdk-files")
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("Kestrel is a language that compiles to WebAssembly.")
    (tmp_path / "b.md").write_text("# Orchids\n\nWater moth orchids once a week.")
    (tmp_path / "sub" / "c.html").write_text("<html><body><p>Quokkas smile.</p></body></html>")
    (tmp_path / "skip.bin").write_bytes(b"\x00\x01")
    seen: list[str] = []
    results = client.ingest_folder(name, tmp_path, wait=True, on_file=lambda p, r: seen.append(p))
    assert sorted(Path(p).name for p in seen) == ["a.txt", "b.md", "c.html"]
    assert all(r.job is not None and r.job.state is JobState.SUCCEEDED for r in results)
    one = client.upload_file(name, b"Capybaras are calm rodents.", filename="capy.txt", wait=True)
    assert one.extracted_chars > 0 and one.job is not None and one.job.finished
    hits = client.search("what do quokkas do?", name).hits
    assert hits[0].text.startswith("Quokkas")
    assert client.get_collection(name).document_count == 4
    assert client.delete_collection(name).documents_deleted == 4


def test_job_watch_reports_progress_until_done(client):
    name = _name("sdk-job")
    docs = [
        DocumentInput(f"Document {i} is about topic {i} and nothing else.", title=f"d{i}")
        for i in range(40)
    ]
    # More documents than the server waits for: the reply comes before the job ends.
    started = client.ingest(name, docs)
    assert started.job is not None and started.job.documents_total == 40
    updates: list[Job] = []
    final = client.wait_for_job(started.job_id, on_progress=updates.append)
    assert final.state is JobState.SUCCEEDED and final.documents_done == 40 and final.progress == 1
    assert updates and updates[-1].finished
    progress = [u.progress for u in updates]
    assert progress == sorted(progress)  # never goes back
    assert client.get_job(started.job_id) == final
    client.delete_collection(name)


def test_ingest_idempotency_key_replays_the_job(client):
    name = _name("sdk-idem")
    key = uuid.uuid4().hex
    first = client.ingest(name, DOCS[:1], idempotency_key=key, wait=True)
    again = client.ingest(name, DOCS[:1], idempotency_key=key)
    assert again.job_id == first.job_id and again.document_ids == first.document_ids
    client.delete_collection(name)


def test_chat_plain_streaming_and_conversations(client, collection):
    answer = client.chat("What does Envoy transcode?", collection=collection, model="extractive")
    assert "JSON" in answer.answer and answer.finish_reason is FinishReason.STOP
    assert answer.citations and answer.citations[0].title == "Envoy"
    assert answer.citations[0].quote in DOCS[0].content
    stream = client.chat_stream(
        "And what does Redis do?",
        conversation_id=answer.conversation_id,
        collection=collection,
        model="extractive",
    )
    events = [e for e in stream if not isinstance(e, StreamPing)]
    assert isinstance(events[0], StreamStart) and isinstance(events[-1], StreamDone)
    assert events[0].conversation_id == answer.conversation_id
    kinds = {type(e) for e in events}
    assert {StreamDelta, Citation, ChatUsage} <= kinds
    streamed = stream.response()
    assert streamed.answer == "".join(e.text for e in events if isinstance(e, StreamDelta))
    assert "memory" in streamed.answer and streamed.finish_reason is FinishReason.STOP
    conversation = client.get_conversation(answer.conversation_id)
    assert [m.role for m in conversation.messages] == [
        MessageRole.USER,
        MessageRole.ASSISTANT,
        MessageRole.USER,
        MessageRole.ASSISTANT,
    ]
    assert conversation.messages[-1].content == streamed.answer
    listed = [c.conversation_id for c in client.list_conversations(page_size=1)]
    assert answer.conversation_id in listed and len(listed) == len(set(listed))
    assert "extractive" in [m.name for m in client.list_chat_models(page_size=2)]
    assert client.delete_conversation(answer.conversation_id).deleted_messages == 4
    with pytest.raises(NotFoundError):
        client.get_conversation(answer.conversation_id)


def test_keys_tokens_and_usage(client, stack):
    tenant = _name("sdk-tenant")
    created = client.create_api_key(tenant, ["search", "embeddings"], name="sdk", tier="free")
    assert created.key.startswith("rl_live_") and created.api_key.state is ApiKeyState.ACTIVE
    key_id = created.api_key.key_id
    assert [k.key_id for k in client.list_api_keys(tenant=tenant, page_size=1)] == [key_id]
    assert sorted(client.get_api_key(key_id).scopes) == ["embeddings", "search"]
    with Client(stack.cfg.base_url, created.key, prefer_grpc=client.prefer_grpc) as own:
        token = own.create_token(ttl_seconds=60)
        assert token.token_type == "Bearer" and 0 < token.expires_in <= 60
        assert own.embed("via key").dimensions == 384
        # A JWT works as the credential too.
        with Client(stack.cfg.base_url, token.access_token, prefer_grpc=client.prefer_grpc) as jwt:
            assert jwt.embed("via token").dimensions == 384
        with pytest.raises(PermissionDeniedError) as denied:
            own.chat("no chat scope")
        assert denied.value.code == 7
    rotated = client.rotate_api_key(key_id, grace_period_seconds=30)
    assert rotated.key != created.key and rotated.previous is not None
    assert rotated.previous.key_id == key_id and rotated.api_key.key_id != key_id
    assert client.revoke_api_key(rotated.api_key.key_id).state is ApiKeyState.REVOKED
    # Usage is counted a second or two after the requests (the gateway's batch, the flush).
    deadline = time.monotonic() + 30
    usage = client.get_usage(granularity="GRANULARITY_DAY")
    while not usage.total.requests and time.monotonic() < deadline:
        time.sleep(0.5)
        usage = client.get_usage(granularity="GRANULARITY_DAY")
    assert usage.tenant == "dev-1" and usage.total.requests > 0 and usage.endpoints
    assert usage.series and usage.series[0].start_time is not None
    # The dashboard's fields: latency, per credential, the spend cap.
    assert usage.total.p95_latency_ms > 0
    assert usage.keys and sum(k.stats.requests for k in usage.keys) == usage.total.requests
    assert usage.spend_cap.reset_time is not None
    now = datetime.now(UTC)
    window = client.get_usage(start_time=now - timedelta(hours=2), end_time=now)
    assert window.start_time is not None and window.start_time >= now - timedelta(
        hours=2, seconds=1
    )
    assert window.total.requests > 0
    health = client.health()
    assert health.status == "SERVING" and health.components["retriever"] == "SERVING"


def test_error_classes(client, stack):
    with pytest.raises(NotFoundError) as missing:
        client.get_job("no-such-job")
    assert missing.value.reason == "JOB_NOT_FOUND" and missing.value.code == 5
    with pytest.raises(InvalidArgumentError) as bad:
        client.search("", _name("c"))
    assert "query" in [v.field for v in bad.value.field_violations]
    with pytest.raises(InvalidArgumentError) as bad_token:
        list(client.list_collections(page_token="not-a-token"))
    assert bad_token.value.reason == "INVALID_PAGE_TOKEN"
    with Client(stack.cfg.base_url, "rl_live_unknown", prefer_grpc=client.prefer_grpc) as stranger:
        with pytest.raises(UnauthenticatedError) as unknown:
            stranger.embed("x")
        assert unknown.value.code == 16


def test_rate_limit_is_raised_with_retry_after(client, stack):
    created = client.create_api_key(_name("sdk-limited"), ["embeddings"], tier="free")
    # Free tier: 10 tokens a minute per key; a minute boundary may reset the window once.
    caught: RateLimitedError | None = None
    with Client(
        stack.cfg.base_url, created.key, prefer_grpc=client.prefer_grpc, max_retries=0
    ) as limited:
        for _ in range(25):
            try:
                limited.create_token()
            except RateLimitedError as err:
                caught = err
                break
    assert caught is not None, "25 tokens a minute were never limited"
    assert caught.reason == "RATE_LIMITED" and caught.code == 8
    assert caught.retry_after is not None and 0 <= caught.retry_after <= 60


def test_both_transports_return_the_same_results(stack, tmp_path):
    name = _name("sdk-same")
    with (
        Client(stack.cfg.base_url, DEV_KEY) as rest,
        Client(stack.cfg.base_url, DEV_KEY, prefer_grpc=True) as grpc,
    ):
        rest.ingest(name, DOCS, wait=True)
        query = {"query": "where is data kept?", "collection": name, "facets": ["category"]}
        assert rest.search(**query) == grpc.search(**query)
        assert rest.get_collection(name) == grpc.get_collection(name)
        assert list(rest.list_documents(name)) == list(grpc.list_documents(name))
        rest.delete_collection(name)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_async_client(stack, transport):
    name = _name("sdk-async")
    async with AsyncClient(stack.cfg.base_url, DEV_KEY, prefer_grpc=transport == "grpc") as client:
        ingested = await client.ingest(name, DOCS, wait=True)
        assert ingested.job is not None and ingested.job.state is JobState.SUCCEEDED
        hits = (await client.search("what transcodes JSON?", name)).hits
        assert hits[0].title == "Envoy"
        titles = sorted([d.title async for d in client.list_documents(name, page_size=1)])
        assert titles == ["Envoy", "FerretDB", "Redis"]
        jobs = [j async for j in client.watch_job(ingested.job_id)]
        assert jobs[-1].state is JobState.SUCCEEDED
        stream = client.chat_stream("What does Envoy do?", collection=name, model="extractive")
        kinds = [type(e) async for e in stream]
        assert kinds[0] is StreamStart and kinds[-1] is StreamDone
        assert "JSON" in (await stream.response()).answer
        with pytest.raises(NotFoundError):
            await client.get_job("no-such-job")
        assert (await client.caller()).tenant == "dev-1"
        assert (await client.get_index_status(name)).indexed_chunks == 3
        assert (await client.get_configuration()).rate_limit_tiers
        assert (await client.delete_collection(name)).documents_deleted == 3


def test_readme_quick_start_runs(stack):
    readme = (Path(__file__).resolve().parents[2] / "clients" / "python" / "README.md").read_text()
    code = readme.split("## Quick start", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) <= 10
    code = code.replace("http://localhost:8000", stack.cfg.base_url)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "Envoy transcodes JSON to gRPC." in out.stdout
