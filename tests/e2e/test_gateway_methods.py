"""A method a REST path does not serve: 405 with a JSON error and `Allow`, from Envoy,
after authentication; unknown paths stay 404; the plain-HTTP chat routes keep working."""

from __future__ import annotations

import pytest

from ragline.embedder.v1 import embedder_service_pb2 as emb_pb
from ragline.embedder.v1 import embedder_service_pb2_grpc as emb_grpc
from tests.support.assertions import error_body, reason_of
from tests.support.gateway import bearer, cors_preflight

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/api/v1/search", "POST"),
        ("GET", "/api/v1/ingest", "POST"),
        ("PUT", "/api/v1/embeddings", "POST"),
        ("POST", "/api/v1/embedding-models", "GET"),
        ("PATCH", "/api/v1/collections/notes", "DELETE, GET"),
        ("POST", "/api/v1/collections/notes/documents/d1", "DELETE, GET"),
        ("GET", "/api/v1/collections/notes/documents:upload", "POST"),
        ("DELETE", "/api/v1/keys", "GET, POST"),
        ("GET", "/api/v1/keys/k1:revoke", "POST"),
        ("DELETE", "/api/v1/jobs/j1", "GET"),
        ("HEAD", "/api/v1/chat-models", "GET"),
    ],
)
async def test_wrong_method_on_a_real_path_is_405_with_allow(api, method, path, allow):
    reply = await api.request(method, path, json={} if method in ("PUT", "POST") else None)
    assert reply.status_code == 405, reply.text
    assert reply.headers["allow"] == allow
    if method != "HEAD":
        body = error_body(reply, 405)
        assert reason_of(body) == "METHOD_NOT_ALLOWED"
        assert method in body["message"] and path in body["message"]


async def test_405_comes_after_authentication(anon_api):
    # No key: 401, so the API's shape is not disclosed to anonymous callers.
    assert (await anon_api.delete("/api/v1/search")).status_code == 401


async def test_public_paths_answer_405_without_a_key(anon_api):
    for path in ("/openapi.json", "/health", "/.well-known/jwks.json", "/docs"):
        reply = await anon_api.put(path, json={})
        assert reason_of(error_body(reply, 405)) == "METHOD_NOT_ALLOWED"
        assert reply.headers["allow"] == "GET"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/nope"),
        ("DELETE", "/api/v1/collections/notes/documents/d1/extra"),
        ("GET", "/api/v1/collections/notes/documents/d1/chunks"),
        ("POST", "/api/v2/search"),
    ],
)
async def test_unknown_paths_stay_404_json(api, method, path):
    reply = await api.request(method, path, json={} if method == "POST" else None)
    assert reason_of(error_body(reply, 404)) == "NOT_FOUND"


async def test_served_methods_still_reach_the_services(api):
    assert (await api.get("/api/v1/embedding-models")).status_code == 200
    assert (await api.get("/api/v1/collections/no-such-collection")).status_code == 404
    reply = await api.post("/api/v1/search", json={"query": "x", "collection": "none"})
    assert reply.status_code in (200, 404), reply.text


async def test_plain_http_chat_routes_bypass_the_transcoder(api):
    # Served by chat's HTTP port, not by a proto binding: still reachable.
    models = await api.get("/v1/models")
    assert models.status_code == 200 and models.json()["object"] == "list"
    # Their wrong methods are answered by that server, as JSON.
    wrong = await api.delete("/v1/models")
    assert wrong.status_code == 405 and wrong.headers["content-type"].startswith("application/json")


async def test_cors_preflight_still_answered_on_a_real_path(anon_api):
    reply = await cors_preflight(anon_api, "/api/v1/search")
    assert reply.status_code == 200
    assert reply.headers["access-control-allow-origin"] == "http://localhost:3000"
    # Not a preflight: the path does not serve OPTIONS.
    plain = await anon_api.options("/api/v1/search", headers=bearer("dev-key-1"))
    assert plain.status_code == 405 and plain.headers["allow"] == "POST"


async def test_native_grpc_still_passes_the_transcoder(gateway_channel):
    reply = await emb_grpc.EmbedderServiceStub(gateway_channel).ListEmbeddingModels(
        emb_pb.ListEmbeddingModelsRequest(), timeout=10
    )
    assert reply.models
