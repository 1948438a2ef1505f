"""Documents in, the right chunks out: ingest and search through the real Envoy."""

from __future__ import annotations

import asyncio
import io
import uuid
import zipfile

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.assertions import error_body, reason_of
from tests.support.documents import docx_with, pdf_with_text
from tests.support.fake_providers import Call

pytestmark = pytest.mark.e2e

DOCS = [
    {
        "title": "Python packaging",
        "content": "Use pyproject.toml to declare build backends "
        "and dependencies. Wheels are the binary distribution format for Python packages.",
        "metadata": {"category": "tutorial", "year": 2023, "tags": ["python", "packaging"]},
    },
    {
        "title": "Sourdough bread",
        "content": "Feed the starter flour and water daily. A long "
        "cold fermentation gives sourdough its sour taste and open crumb.",
        "metadata": {"category": "recipe", "year": 2021},
    },
    {
        "title": "Envoy proxy",
        "content": "Envoy transcodes JSON requests to gRPC with the "
        "grpc_json_transcoder filter and a protobuf descriptor set.",
        "metadata": {"category": "tutorial", "year": 2024, "level": "advanced"},
    },
    {
        "title": "Tomato soup",
        "content": "Roast tomatoes with garlic, then blend them with "
        "stock and basil for a smooth soup.",
        "metadata": {"category": "recipe", "year": 2024},
    },
]


def collection_name() -> str:
    return f"c{uuid.uuid4().hex[:10]}"


async def ingest(api, collection: str, documents: list[dict], **extra) -> dict:
    response = await api.post(
        "/api/v1/ingest", json={"documents": documents, "collection": collection, **extra}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def search(api, collection: str, query: str, **extra) -> dict:
    response = await api.post(
        "/api/v1/search", json={"query": query, "collection": collection, **extra}
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
async def corpus(api):
    name = collection_name()
    body = await ingest(api, name, DOCS)
    assert body["job"]["state"] == "JOB_STATE_SUCCEEDED", body
    return name, body["document_ids"]


async def test_ingest_then_search_finds_the_right_chunk(api, corpus):
    name, ids = corpus
    for mode in ("SEARCH_MODE_HYBRID", "SEARCH_MODE_DENSE", "SEARCH_MODE_KEYWORD"):
        body = await search(api, name, "how do I ferment sourdough starter", mode=mode)
        assert body["hits"], mode
        top = body["hits"][0]
        assert top["document_id"] == ids[1], (mode, top)
        assert top["title"] == "Sourdough bread" and "starter" in top["text"]
        assert top["metadata"]["category"] == "recipe"
        assert body["mode"] == mode
    # Left out, the mode is the default, and the reply says which.
    assert (await search(api, name, "sourdough"))["mode"] == "SEARCH_MODE_HYBRID"


async def test_reingest_is_idempotent_and_changes_replace(api, corpus):
    name, ids = corpus
    again = await ingest(api, name, DOCS)
    assert again["document_ids"] == ids
    assert again["job"]["documents_unchanged"] == len(DOCS)
    listed = (await api.get(f"/api/v1/collections/{name}/documents")).json()["documents"]
    assert len(listed) == len(DOCS)
    # A given id with new content replaces the old chunks, visible to search at once.
    doc = {"id": "stable-1", "title": "Note", "content": "The secret word is avocado."}
    await ingest(api, name, [doc])
    assert (await search(api, name, "avocado", mode="SEARCH_MODE_KEYWORD"))["hits"][0][
        "document_id"
    ] == "stable-1"
    await ingest(api, name, [{**doc, "content": "The secret word is pineapple."}])
    assert (await search(api, name, "avocado", mode="SEARCH_MODE_KEYWORD"))["hits"] == []
    hit = (await search(api, name, "pineapple", mode="SEARCH_MODE_KEYWORD"))["hits"][0]
    assert hit["document_id"] == "stable-1" and "pineapple" in hit["text"]


async def test_delete_document_is_visible_to_search_at_once(api, corpus):
    name, ids = corpus
    response = await api.delete(f"/api/v1/collections/{name}/documents/{ids[1]}")
    assert response.status_code == 200, response.text
    assert response.json()["chunks_deleted"] >= 1
    hits = (await search(api, name, "sourdough starter", mode="SEARCH_MODE_KEYWORD"))["hits"]
    assert all(h["document_id"] != ids[1] for h in hits)
    error_body(await api.get(f"/api/v1/collections/{name}/documents/{ids[1]}"), 404)
    error_body(await api.delete(f"/api/v1/collections/{name}/documents/{ids[1]}"), 404)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"category": "tutorial"}, {0, 2}),
        ({"category": {"$ne": "tutorial"}}, {1, 3}),
        ({"year": {"$in": [2021, 2023]}}, {0, 1}),
        ({"year": {"$nin": [2021, 2023]}}, {2, 3}),
        ({"year": {"$gt": 2023}}, {2, 3}),
        ({"year": {"$gte": 2023}}, {0, 2, 3}),
        ({"year": {"$lt": 2023}}, {1}),
        ({"year": {"$lte": 2023}}, {0, 1}),
        ({"level": {"$exists": True}}, {2}),
        ({"tags": "python"}, {0}),
        ({"$and": [{"category": "recipe"}, {"year": 2024}]}, {3}),
        ({"$or": [{"year": 2021}, {"level": "advanced"}]}, {1, 2}),
    ],
)
async def test_filters_apply_inside_the_search(api, corpus, filters, expected):
    name, ids = corpus
    body = await search(
        api, name, "tomato bread python envoy", filters=filters, limit=10, mode="SEARCH_MODE_DENSE"
    )
    assert {ids.index(h["document_id"]) for h in body["hits"]} == expected


async def test_limit_hits_come_back_when_that_many_match(api):
    name = collection_name()
    docs = [
        {
            "title": f"doc {i}",
            "content": f"generic filler text number {i} about apples",
            "metadata": {"even": i % 2 == 0},
        }
        for i in range(12)
    ]
    await ingest(api, name, docs)
    body = await search(
        api, name, "oranges", filters={"even": True}, limit=6, mode="SEARCH_MODE_DENSE"
    )
    assert len(body["hits"]) == 6
    assert all(h["metadata"]["even"] is True for h in body["hits"])


async def test_pagination_and_facets(api, corpus):
    name, _ = corpus
    first = await search(
        api,
        name,
        "soup bread proxy packaging",
        limit=4,
        page_size=2,
        facets=["category"],
        mode="SEARCH_MODE_DENSE",
    )
    assert len(first["hits"]) == 2 and first["next_page_token"]
    second = await search(
        api,
        name,
        "soup bread proxy packaging",
        limit=4,
        page_size=2,
        facets=["category"],
        mode="SEARCH_MODE_DENSE",
        page_token=first["next_page_token"],
    )
    assert len(second["hits"]) == 2 and not second["next_page_token"]
    seen = {h["chunk_id"] for h in first["hits"]} | {h["chunk_id"] for h in second["hits"]}
    assert len(seen) == 4
    [facet] = first["facets"]
    assert facet["field"] == "category"
    assert {v["value"]: v["count"] for v in facet["values"]} == {"tutorial": 2, "recipe": 2}


async def test_fuzzy_keyword_matching_and_suggestions(api, corpus):
    name, ids = corpus
    body = await search(api, name, "sourdouhg", mode="SEARCH_MODE_KEYWORD")
    assert body["hits"] and body["hits"][0]["document_id"] == ids[1]
    assert body["corrections"] == {"sourdouhg": "sourdough"}
    response = await api.get(f"/api/v1/collections/{name}/suggestions", params={"prefix": "ferm"})
    assert response.status_code == 200, response.text
    assert "fermentation" in response.json()["suggestions"]


RERANK_MODEL = "rerank-2.5-lite"  # the retriever's default VOYAGE_RERANK_MODEL


def rerank_calls(fake_voyage) -> list[Call]:
    return [c for c in fake_voyage.script.calls if c.path.endswith("/rerank")]


async def voyage_rerank_errors(stack) -> float:
    """ragline_provider_requests_total{provider=voyage, model=<rerank>, outcome=error} as
    the retriever exports it: the searches whose Voyage rerank failed and fell back."""
    async with httpx.AsyncClient() as client:
        url = f"http://127.0.0.1:{stack.cfg.metrics_ports['retriever']}/metrics"
        text = (await client.get(url, timeout=10)).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "ragline_provider_requests_total" and sample.labels == {
                "provider": "voyage",
                "model": RERANK_MODEL,
                "outcome": "error",
            }:
                return float(sample.value)
    return 0.0


async def test_voyage_rerank_order_is_the_result_order(api, corpus, fake_voyage):
    """The stack has a Voyage key, so `rerank` asks Voyage's rerank API (the wire fake).
    The fake ranks the candidates in reverse of the order they were sent (the fused
    order), which puts the obvious best hit last: only Voyage's order can produce that."""
    name, ids = corpus
    fake_voyage.reset()
    body = await search(api, name, "blend roasted tomatoes", rerank=True)
    assert body["reranked"] is True
    [call] = rerank_calls(fake_voyage)
    assert call.body["query"] == "blend roasted tomatoes" and call.body["model"] == RERANK_MODEL
    sent = call.body["documents"]
    assert len(sent) == len(body["hits"]) == 4
    assert [h["text"] for h in body["hits"]] == sent[::-1]
    assert [h["score"] for h in body["hits"]] == pytest.approx([1.0, 0.75, 0.5, 0.25])
    # The fused order (and the local reranker) put the tomato soup first.
    assert ids[3] != body["hits"][0]["document_id"] and ids[3] == body["hits"][-1]["document_id"]


async def test_voyage_rerank_failure_falls_back_to_the_local_reranker_visibly(
    api, corpus, fake_voyage, stack
):
    name, ids = corpus
    errors_before = await voyage_rerank_errors(stack)
    fake_voyage.reset(failures=[500])
    try:
        body = await search(api, name, "blend roasted tomatoes", rerank=True)
        asked = rerank_calls(fake_voyage)
    finally:
        fake_voyage.reset()
    assert len(asked) == 1  # Voyage was asked once (no retries) and answered 500
    assert body["reranked"] is True
    assert body["hits"][0]["document_id"] == ids[3]  # the local reranker's order
    assert await voyage_rerank_errors(stack) == errors_before + 1


async def test_collections_and_documents_are_listed_described_and_deleted(api, corpus):
    name, ids = corpus
    described = (await api.get(f"/api/v1/collections/{name}")).json()
    assert described == {
        "name": name,
        "embedding_model": "all-MiniLM-L6-v2",
        "dimensions": 384,
        "document_count": 4,
        "chunk_count": described["chunk_count"],
    }
    assert described["chunk_count"] >= 4
    doc = (await api.get(f"/api/v1/collections/{name}/documents/{ids[0]}")).json()
    assert doc["content"] == DOCS[0]["content"] and doc["metadata"]["year"] == 2023
    page = (await api.get(f"/api/v1/collections/{name}/documents", params={"page_size": 3})).json()
    assert len(page["documents"]) == 3 and page["next_page_token"]
    rest = (
        await api.get(
            f"/api/v1/collections/{name}/documents",
            params={"page_size": 3, "page_token": page["next_page_token"]},
        )
    ).json()
    assert len(rest["documents"]) == 1
    names = [
        c["name"]
        for c in (await api.get("/api/v1/collections", params={"page_size": 1000})).json()[
            "collections"
        ]
    ]
    assert name in names
    deleted = await api.delete(f"/api/v1/collections/{name}")
    assert deleted.json()["documents_deleted"] == 4
    error_body(await api.post("/api/v1/search", json={"query": "x", "collection": name}), 404)


async def test_other_embedding_model_is_409(api, corpus):
    name, _ = corpus
    response = await api.post(
        "/api/v1/ingest",
        json={
            "documents": [{"title": "t", "content": "c"}],
            "collection": name,
            "embedding_model": "voyage-3.5",
        },
    )
    body = error_body(response, 409)
    assert reason_of(body) == "EMBEDDING_MODEL_MISMATCH"


async def test_idempotency_key_replays_the_first_result(api):
    name = collection_name()
    key = uuid.uuid4().hex
    payload = {"documents": [{"title": "t", "content": "idempotent content"}], "collection": name}
    first = await api.post("/api/v1/ingest", json=payload, headers={"Idempotency-Key": key})
    second = await api.post("/api/v1/ingest", json=payload, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 200
    assert first.json()["job_id"] == second.json()["job_id"]
    other = await api.post(
        "/api/v1/ingest",
        json={**payload, "collection": name + "x"},
        headers={"Idempotency-Key": key},
    )
    assert reason_of(error_body(other, 409)) == "IDEMPOTENCY_KEY_REUSED"


async def test_large_ingest_runs_as_a_job_with_progress(api):
    name = collection_name()
    docs = [
        {"title": f"doc {i}", "content": f"Background job document number {i}. " * 5}
        for i in range(40)
    ]
    body = await ingest(api, name, docs)
    assert body["job"]["state"] in ("JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED")
    job_id = body["job_id"]
    for _ in range(600):
        job = (await api.get(f"/api/v1/jobs/{job_id}")).json()
        if job["state"] == "JOB_STATE_SUCCEEDED":
            break
        assert job["state"] != "JOB_STATE_FAILED", job
        await asyncio.sleep(0.1)
    assert job["documents_done"] == 40 and job["chunks_done"] >= 40
    error_body(await api.get("/api/v1/jobs/nope"), 404)


async def test_upload_files_of_each_format(api):
    name = collection_name()
    html = (
        b"<html><head><style>x{}</style></head><body><h1>Gardening</h1>"
        b"<p>Prune roses in late winter.</p><script>alert(1)</script></body></html>"
    )
    for filename, data, ctype, needle in [
        ("notes.txt", b"Plain text about kayaking.", "text/plain", "kayaking"),
        (
            "guide.md",
            b"# Setup\n\nInstall the widget.\n\n## Use\n\nPress the button.",
            "text/markdown",
            "widget",
        ),
        ("page.html", html, "text/html", "roses"),
        (
            "paper.pdf",
            pdf_with_text(["Glaciers carve fjords.", "Moraines mark their edges."]),
            "application/pdf",
            "Moraines mark their edges",
        ),
        (
            "memo.docx",
            docx_with(
                "Quarterly memo",
                ["Lighthouse keepers log the weather."],
                [["region", "storms"], ["north", "12"]],
            ),
            "application/octet-stream",  # the extension decides
            "Lighthouse keepers",
        ),
    ]:
        response = await api.post(
            f"/api/v1/collections/{name}/documents:upload",
            params={"filename": filename},
            content=data,
            headers={"content-type": ctype},
        )
        assert response.status_code == 200, response.text
        doc_id = response.json()["document_id"]
        doc = (await api.get(f"/api/v1/collections/{name}/documents/{doc_id}")).json()
        assert needle in doc["content"]
        assert "alert" not in doc["content"]
    # A .docx keeps its headings (as Markdown, for chunking) and its tables' text.
    memo = (await api.get(f"/api/v1/collections/{name}/documents/{doc_id}")).json()
    assert memo["content"].startswith("# Quarterly memo")
    assert "north | 12" in memo["content"]
    hits = (await search(api, name, "storms by region", mode="SEARCH_MODE_KEYWORD"))["hits"]
    assert hits and hits[0]["document_id"] == doc_id
    bad = await api.post(
        f"/api/v1/collections/{name}/documents:upload",
        params={"filename": "x.exe"},
        content=b"MZ",
        headers={"content-type": "application/octet-stream"},
    )
    assert reason_of(error_body(bad, 400)) == "UNSUPPORTED_FILE_TYPE"


def zip_bomb() -> bytes:
    """A small .docx-named zip that inflates to 300 MB."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\0" * (300 * 1024 * 1024))
    return out.getvalue()


@pytest.mark.parametrize(
    ("filename", "data", "reason"),
    [
        ("broken.pdf", lambda: b"%PDF-1.4 not really", "BAD_PDF"),
        ("broken.docx", lambda: b"PK not a zip", "BAD_DOCX"),
        ("bomb.docx", zip_bomb, "FILE_TOO_LARGE"),
    ],
)
async def test_unreadable_uploads_are_400_saying_why(api, filename, data, reason):
    response = await api.post(
        f"/api/v1/collections/{collection_name()}/documents:upload",
        params={"filename": filename},
        content=data(),
        headers={"content-type": "application/octet-stream"},
    )
    assert reason_of(error_body(response, 400)) == reason


@pytest.mark.parametrize(
    ("payload", "status", "needle"),
    [
        ({"documents": [], "collection": "c"}, 400, "documents"),
        (
            {"documents": [{"title": "t", "content": "  "}], "collection": "c"},
            400,
            "documents[0].content",
        ),
        (
            {"documents": [{"title": "t", "content": "x"}], "collection": "bad name!"},
            400,
            "collection",
        ),
        (
            {
                "documents": [{"title": "t", "content": "x", "metadata": {"$where": 1}}],
                "collection": "c",
            },
            400,
            "$where",
        ),
        (
            {
                "documents": [{"title": "t", "content": "x"}],
                "collection": "c",
                "embedding_model": "nope",
            },
            400,
            "embedding_model",
        ),
    ],
)
async def test_bad_ingest_input_is_400_naming_it(api, payload, status, needle):
    body = error_body(await api.post("/api/v1/ingest", json=payload), status)
    assert needle in body["message"]


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({"query": "", "collection": "c"}, "query"),
        ({"query": "x", "collection": "c", "limit": 0}, "limit"),
        ({"query": "x", "collection": "c", "limit": 101}, "limit"),
        ({"query": "x", "collection": "c", "mode": "magic"}, "mode"),
        # The v0 lower-case form is not an enum name: a 400 naming the field.
        ({"query": "x", "collection": "c", "mode": "dense"}, "mode"),
        ({"query": "x", "collection": "c", "filters": {"a": {"$regex": "x"}}}, "$regex"),
        ({"query": "x", "collection": "c", "filters": {"$where": "1"}}, "$where"),
        ({"query": "x", "collection": "c", "filters": {"y": {"$gt": [1]}}}, "$gt"),
    ],
)
async def test_bad_search_input_is_400_naming_it(api, payload, needle):
    body = error_body(await api.post("/api/v1/search", json=payload), 400)
    assert needle in body["message"]


async def test_unknown_collection_is_404(api):
    body = error_body(
        await api.post("/api/v1/search", json={"query": "x", "collection": collection_name()}), 404
    )
    assert reason_of(body) == "COLLECTION_NOT_FOUND"


async def test_search_cache_never_serves_stale_hits(api):
    name = collection_name()
    await ingest(api, name, [{"title": "a", "content": "zebras live in Africa"}])
    first = await search(api, name, "zebras", mode="SEARCH_MODE_KEYWORD")
    assert len(first["hits"]) == 1
    await ingest(api, name, [{"title": "b", "content": "zebras are striped horses"}])
    second = await search(api, name, "zebras", mode="SEARCH_MODE_KEYWORD")
    assert len(second["hits"]) == 2


async def test_a_deleted_and_recreated_collection_shows_none_of_the_old_data(api):
    name = collection_name()
    await ingest(api, name, [{"id": "old", "content": "walruses sleep on ice floes"}])
    assert (await search(api, name, "walruses", mode="SEARCH_MODE_KEYWORD"))["hits"]  # cached now
    response = await api.delete(f"/api/v1/collections/{name}")
    assert response.status_code == 200, response.text
    await ingest(api, name, [{"id": "new", "content": "walruses have tusks"}])
    for mode in ("SEARCH_MODE_KEYWORD", "SEARCH_MODE_HYBRID"):
        hits = (await search(api, name, "walruses", mode=mode))["hits"]
        assert [h["document_id"] for h in hits] == ["new"], mode


async def test_document_over_the_size_limit_and_too_many_documents_are_400(api):
    big = {
        "documents": [
            {"title": "ok", "content": "fine"},
            {"title": "big", "content": "x" * 50_001},
        ],
        "collection": "c",
    }
    body = error_body(await api.post("/api/v1/ingest", json=big), 400)
    assert "documents[1].content" in body["message"]
    assert reason_of(body) == "DOCUMENT_TOO_LARGE"
    many = {
        "documents": [{"title": "t", "content": f"doc {i}"} for i in range(201)],
        "collection": "c",
    }
    body = error_body(await api.post("/api/v1/ingest", json=many), 400)
    assert reason_of(body) == "TOO_MANY_DOCUMENTS" and "200" in body["message"]


async def test_watch_job_streams_progress_over_grpc(api, gateway_channel):
    from ragline.ingest.v1 import ingest_service_pb2 as ingest_pb
    from ragline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc

    name = collection_name()
    docs = [{"title": f"w{i}", "content": f"Watched document {i}. " * 40} for i in range(30)]
    job_id = (await ingest(api, name, docs))["job_id"]
    stub = ingest_grpc.IngestServiceStub(gateway_channel)
    updates = [
        u.job async for u in stub.WatchJob(ingest_pb.WatchJobRequest(job_id=job_id), timeout=120)
    ]
    assert updates[-1].state == ingest_pb.JOB_STATE_SUCCEEDED
    assert updates[-1].documents_done == 30
    done = [u.documents_done for u in updates]
    assert done == sorted(done)  # progress only moves forward
