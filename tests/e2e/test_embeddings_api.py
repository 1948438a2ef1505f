"""Embeddings through the real Envoy: REST in, gRPC to the embedder, JSON out."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid

import numpy as np
import pytest

from tests.support.assertions import error_body, reason_of
from tests.support.reference import load_reference

pytestmark = pytest.mark.e2e


def unique(text: str) -> str:
    return f"{text} [{uuid.uuid4().hex[:8]}]"


async def test_single_text_returns_one_normalised_local_vector(api):
    response = await api.post("/api/v1/embeddings", json={"text": unique("hello world")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "all-MiniLM-L6-v2"
    assert body["dimensions"] == 384
    [item] = body["embeddings"]
    assert item["index"] == 0 and len(item["values"]) == 384
    assert abs(np.linalg.norm(item["values"]) - 1.0) < 1e-3
    assert item["truncated"] is False and item["cached"] is False
    assert item["token_count"] > 2
    assert body["usage"]["prompt_tokens"] == item["token_count"]


async def test_batch_keeps_order_and_matches_single_calls(api):
    texts = [unique(t) for t in ("the cat sat", "quantum field theory", "bonjour le monde")]
    batch = await api.post("/api/v1/embeddings", json={"texts": texts})
    assert batch.status_code == 200, batch.text
    items = batch.json()["embeddings"]
    assert [i["index"] for i in items] == [0, 1, 2]
    for text, item in zip(texts, items, strict=True):
        single = (await api.post("/api/v1/embeddings", json={"text": text})).json()
        assert single["embeddings"][0]["cached"] is True  # the batch filled the cache
        assert np.allclose(single["embeddings"][0]["values"], item["values"], atol=1e-6)


async def test_repeat_is_served_from_cache(api):
    text = unique("cache me if you can")
    first = (await api.post("/api/v1/embeddings", json={"text": text})).json()
    second = (await api.post("/api/v1/embeddings", json={"text": text})).json()
    assert first["cached_count"] == 0 and second["cached_count"] == 1
    assert second["embeddings"][0]["cached"] is True
    assert second["usage"]["total_tokens"] == 0  # nothing billed for a cached vector
    assert np.allclose(first["embeddings"][0]["values"], second["embeddings"][0]["values"])


async def test_reference_vectors_through_the_api(api):
    """The repository carries the reference vectors (tests/data/minilm): never skipped."""
    reference = load_reference()
    pairs = [
        (t, v) for t, v in zip(reference["texts"], reference["vectors"], strict=True) if t.strip()
    ]
    response = await api.post("/api/v1/embeddings", json={"texts": [t for t, _ in pairs]})
    assert response.status_code == 200, response.text
    got = np.asarray([e["values"] for e in response.json()["embeddings"]])
    want = np.asarray([v for _, v in pairs])
    cosines = np.sum(got * want, axis=1) / (
        np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1)
    )
    assert cosines.min() >= 0.999, cosines.min()


async def test_long_input_is_truncated_and_reported(api):
    long_text = unique(" ".join(["retrieval augmented generation"] * 400))
    body = (await api.post("/api/v1/embeddings", json={"texts": [long_text, "short"]})).json()
    assert body["truncated_count"] == 1
    assert body["embeddings"][0]["truncated"] is True
    assert body["embeddings"][0]["token_count"] == 256
    assert body["embeddings"][1]["truncated"] is False


async def test_int8_variant_is_its_own_model(api):
    body = (
        await api.post(
            "/api/v1/embeddings", json={"text": "fast", "model": "all-MiniLM-L6-v2-int8"}
        )
    ).json()
    assert body["model"] == "all-MiniLM-L6-v2-int8" and body["dimensions"] == 384


async def test_list_models_names_default_first(api):
    models = (await api.get("/api/v1/embedding-models")).json()["models"]
    assert models[0]["name"] == "all-MiniLM-L6-v2"
    by_name = {m["name"]: m for m in models}
    assert by_name["voyage-3-large"]["provider"] == "EMBEDDING_PROVIDER_VOYAGE"
    assert by_name["text-embedding-3-small"]["dimensions"] == 1536


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"text": ""}, "text"),
        ({"text": "   \n\t "}, "text"),
        ({}, "text"),
        ({"texts": ["ok", "  "]}, "texts[1]"),
        ({"text": "a", "texts": ["b"]}, "texts"),
    ],
)
async def test_empty_or_ambiguous_input_is_400_naming_the_field(api, payload, field):
    body = error_body(await api.post("/api/v1/embeddings", json=payload), 400)
    assert field in body["message"]


@pytest.mark.parametrize(
    "raw",
    [b'{"text": 123}', b'{"texts": [1, 2]}', b'{"text": ', b"not json", b"[1, 2]"],
)
async def test_wrong_types_or_malformed_json_is_400(api, raw):
    response = await api.post(
        "/api/v1/embeddings", content=raw, headers={"content-type": "application/json"}
    )
    error_body(response, 400)


async def test_too_many_texts_is_400(api):
    body = error_body(await api.post("/api/v1/embeddings", json={"texts": ["x"] * 101}), 400)
    assert "100" in body["message"] and reason_of(body) == "BATCH_TOO_LARGE"


async def test_unknown_model_is_400_listing_valid_models(api):
    body = error_body(
        await api.post("/api/v1/embeddings", json={"text": "x", "model": "gpt-embed-9000"}), 400
    )
    assert reason_of(body) == "UNKNOWN_MODEL"
    for valid in ("all-MiniLM-L6-v2", "text-embedding-3-small", "voyage-3-large"):
        assert valid in body["message"]


async def test_body_over_the_cap_is_413_json(api):
    huge = "a" * (2 * 1024 * 1024)
    body = error_body(await api.post("/api/v1/embeddings", json={"text": huge}), 413)
    assert reason_of(body) == "REQUEST_TOO_LARGE"


async def test_body_over_the_cap_is_413_even_while_auth_is_slow(api, stack):
    """A declared body over the cap is refused before the auth call: with ext_authz pending,
    Envoy stops reading a large body, and the upload could hang instead of failing.

    The reply is awaited while auth is still stopped: a 413 that only came once auth
    answered again would time out here."""
    auth = stack.child_pid("auth")  # the service itself, not its supervisor
    assert auth is not None
    os.kill(auth, signal.SIGSTOP)
    try:
        # Generous for a loaded machine. Had Envoy waited for auth, this would time out or
        # end in ext_authz's own failure (503 after its 2 s timeout), never a 413.
        reply = await asyncio.wait_for(
            api.post("/api/v1/embeddings", json={"text": "a" * (2 * 1024 * 1024)}), timeout=10
        )
    finally:
        os.kill(auth, signal.SIGCONT)
    assert reason_of(error_body(reply, 413)) == "REQUEST_TOO_LARGE"


async def test_unknown_path_is_404_json(api):
    body = error_body(await api.get("/api/v1/nope"), 404)
    assert reason_of(body) == "NOT_FOUND"


async def test_metrics_endpoint_serves_prometheus_text(api):
    response = await api.get("/metrics")
    assert response.status_code == 200
    assert "envoy_http_downstream_rq_total" in response.text
    assert "# TYPE" in response.text


@pytest.mark.parametrize("path", ["/api/v1/embedding-models", "/api/v1/chat-models"])
async def test_model_lists_page_like_every_list(api, path):
    everything = (await api.get(path)).json()
    assert not everything.get("next_page_token") and len(everything["models"]) > 2
    seen, token = [], ""
    while True:
        page = (await api.get(path, params={"page_size": 2, "page_token": token})).json()
        assert len(page["models"]) <= 2
        seen += [m["name"] for m in page["models"]]
        token = page.get("next_page_token", "")
        if not token:
            break
    assert seen == [m["name"] for m in everything["models"]]
    body = error_body(await api.get(path, params={"page_token": "not-a-token"}), 400)
    assert reason_of(body) == "INVALID_PAGE_TOKEN"
