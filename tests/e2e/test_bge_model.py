"""bge-small-en-v1.5, the optional local embedding model, chosen per collection through the
real Envoy: listed and available, embeds 384-d unit vectors, and a collection embedded with
it finds each question's passage by dense search (the query instruction added on the way)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

pytestmark = pytest.mark.e2e

BGE = "bge-small-en-v1.5"
DOCS = [
    ("Mitochondria", "The mitochondrion is the organelle that produces most of the cell's ATP."),
    ("Rust", "Rust guarantees memory safety without a garbage collector through ownership."),
    ("Westphalia", "The Peace of Westphalia ended the Thirty Years' War in 1648."),
    ("Photosynthesis", "Photosynthesis turns light, water and carbon dioxide into sugar."),
]
QUESTIONS = [
    "Which organelle makes the energy of a cell?",
    "How does Rust stay memory safe without garbage collection?",
    "When did the Thirty Years' War end?",
    "How do plants make sugar from light?",
]


async def test_bge_is_listed_and_available(api):
    models = (await api.get("/api/v1/embedding-models", params={"page_size": 100})).json()
    by_name = {m["name"]: m for m in models["models"]}
    assert by_name[BGE]["available"] is True
    assert (by_name[BGE]["dimensions"], by_name[BGE]["max_tokens"]) == (384, 512)


async def test_bge_embeds_unit_vectors_of_its_own(api):
    reply = await api.post("/api/v1/embeddings", json={"text": "hello bge", "model": BGE})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["model"] == BGE and body["dimensions"] == 384
    assert abs(np.linalg.norm(body["embeddings"][0]["values"]) - 1.0) < 1e-3


async def test_a_bge_collection_finds_each_questions_passage(api):
    collection = f"bge{uuid.uuid4().hex[:10]}"
    reply = await api.post(
        "/api/v1/ingest",
        json={
            "collection": collection,
            "embedding_model": BGE,
            "documents": [{"title": t, "content": c} for t, c in DOCS],
        },
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["job"]["state"] == "JOB_STATE_SUCCEEDED", body
    ids = body["document_ids"]
    for question, expected in zip(QUESTIONS, ids, strict=True):
        found = await api.post(
            "/api/v1/search",
            json={"query": question, "collection": collection, "mode": "SEARCH_MODE_DENSE"},
        )
        assert found.status_code == 200, found.text
        assert found.json()["hits"][0]["document_id"] == expected, question
