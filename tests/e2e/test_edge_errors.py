"""Bad input that got a 500 (or a wrong answer) through the real Envoy: each is a clean
4xx naming the problem now, and Envoy's own errors say nothing internal."""

from __future__ import annotations

import secrets
import uuid

import grpc
import pytest

from ragline.embedder.v1 import embedder_service_pb2 as emb_pb
from ragline.embedder.v1 import embedder_service_pb2_grpc as emb_grpc
from ragline.retriever.v1 import retriever_service_pb2 as ret_pb
from ragline.retriever.v1 import retriever_service_pb2_grpc as ret_grpc
from tests.support.assertions import error_body, reason_of
from tests.support.gateway import wait_until

pytestmark = pytest.mark.e2e

MAX_JSON_DEPTH = 32  # GatewayConfig.max_json_depth


def _nested(levels: int) -> dict:
    """An object `levels` deep (counting itself)."""
    value: dict = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize("levels", [34, 60, 98])
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/search", lambda deep: {"query": "q", "collection": "c", "filters": deep}),
        ("/api/v1/chat", lambda deep: {"message": "hi", "collection": "c", "filters": deep}),
        (
            "/api/v1/ingest",
            lambda deep: {
                "collection": "c",
                "documents": [{"title": "t", "content": "x", "metadata": deep}],
            },
        ),
    ],
)
async def test_json_nested_too_deep_is_400_not_500(api, path, body, levels):
    reply = await api.post(path, json=body(_nested(levels)))
    error = error_body(reply, 400)
    assert reason_of(error) == "JSON_TOO_DEEP"
    assert f"deeper than {MAX_JSON_DEPTH} levels" in error["message"]


async def test_brackets_inside_strings_do_not_count_as_nesting(api):
    query = '[{"a": ' * 60 + '\\"]' * 10
    reply = await api.post(
        "/api/v1/search", json={"query": query, "collection": f"c{uuid.uuid4().hex[:8]}"}
    )
    assert reason_of(error_body(reply, 404)) == "COLLECTION_NOT_FOUND"


async def test_a_scope_with_a_space_is_400_not_two_scopes(api):
    reply = await api.post(
        "/api/v1/keys", json={"tenant": f"t-{secrets.token_hex(3)}", "scopes": ["search admin"]}
    )
    error = error_body(reply, 400)
    assert reason_of(error) == "INVALID_SCOPE" and "'search admin'" in error["message"]


async def test_a_malformed_documents_page_token_is_400(api):
    collection = f"c{uuid.uuid4().hex[:8]}"
    reply = await api.post(
        "/api/v1/ingest",
        json={"collection": collection, "documents": [{"title": "t", "content": "x"}]},
    )
    assert reply.status_code == 200, reply.text
    for token in ("garbage!", "Zm9v", "ZGV2LTIvYy9k"):  # junk, "foo", another tenant's key
        reply = await api.get(
            f"/api/v1/collections/{collection}/documents", params={"page_token": token}
        )
        assert reason_of(error_body(reply, 400)) == "INVALID_PAGE_TOKEN", token


async def test_head_health_is_served_without_a_body(anon_api):
    reply = await anon_api.head("/health")
    assert reply.status_code == 200 and reply.content == b""
    assert (await anon_api.get("/health")).json()["status"] == "SERVING"


async def test_a_grpc_call_over_the_body_cap_is_resource_exhausted(gateway_channel, stack):
    stub = emb_grpc.EmbedderServiceStub(gateway_channel)
    text = "x" * (stack.cfg.max_request_bytes + 1024)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateEmbeddings(emb_pb.CreateEmbeddingsRequest(text=text), timeout=30)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_error_messages_do_not_echo_unbounded_input(api):
    operator = "$" + "x" * 50_000
    reply = await api.post(
        "/api/v1/search",
        json={"query": "q", "collection": "c", "filters": {"field": {operator: 1}}},
    )
    error = error_body(reply, 400)
    assert len(error["message"]) <= 1024 and "50001 characters" in error["message"]
    reply = await api.post(
        "/api/v1/collections/c/documents:upload",
        params={"filename": "n" * 5000 + ".exe"},
        content=b"MZ",
    )
    error = error_body(reply, 400)
    assert reason_of(error) == "UNSUPPORTED_FILE_TYPE" and len(error["message"]) < 300


async def test_a_service_down_is_503_naming_it_in_our_words(api, gateway_channel, stack):
    stack.stop("retriever")
    try:
        reply = await api.post("/api/v1/search", json={"query": "q", "collection": "c"})
        error = error_body(reply, 503)
        assert error["message"] == "the retriever service is unavailable; try again shortly"
        assert "upstream" not in reply.text and "reset" not in reply.text
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await ret_grpc.RetrieverServiceStub(gateway_channel).Search(
                ret_pb.SearchRequest(query="q", collection="c"), timeout=10
            )
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert caught.value.details() == "the retriever service is unavailable; try again shortly"
    finally:
        stack.start_service("retriever")
        stack.wait_port("retriever", stack.cfg.service_ports["retriever"], 120)

    async def serving() -> bool:
        reply = await api.post("/api/v1/search", json={"query": "q", "collection": "c"})
        return reply.status_code != 503

    await wait_until(serving, timeout=60, interval=0.3)


async def test_a_chunked_body_without_a_length_passes_the_body_cap_cleanly(api, stack):
    # The declared-body-cap Lua filter read tonumber(nil) on a chunked body: a Lua error
    # in Envoy's log for every such request.
    async def chunks():
        yield b'{"texts": ["chunked'
        yield b' body"]}'

    reply = await api.post(
        "/api/v1/embeddings", content=chunks(), headers={"content-type": "application/json"}
    )
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["embeddings"]) == 1
    log = stack.log_path("envoy").read_text(errors="replace")
    assert "bad argument" not in log
