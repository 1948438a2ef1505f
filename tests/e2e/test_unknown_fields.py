"""Unknown JSON fields are a 400 naming the field and the valid ones, on every REST route
(the transcoder drops them silently: envoy/json_fields.lua refuses them first), and the chat
WebSocket says the same in the same words (snake_case)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import aiohttp
import pytest

from tests.support.assertions import error_body, reason_of
from tests.support.auth import DEV_KEY
from tests.support.websocket import ask

pytestmark = pytest.mark.e2e


def _violation(error: dict[str, Any]) -> str:
    for detail in error["details"]:
        if detail["@type"].endswith("google.rpc.BadRequest"):
            return str(detail["field_violations"][0]["field"])
    raise AssertionError(f"no BadRequest in {error}")


def _unknown(reply: Any, field: str) -> dict[str, Any]:
    error = error_body(reply, 400)
    assert reason_of(error) == "UNKNOWN_FIELD", error
    assert f'unknown field "{field}"' in error["message"], error
    assert _violation(error) == field
    return error


async def test_a_typo_in_search_is_400_naming_it_and_the_valid_fields(api):
    reply = await api.post("/api/v1/search", json={"qeury": "x", "collection": "c"})
    error = _unknown(reply, "qeury")
    # Valid names in snake_case, as REST answers use them.
    assert "query, collection, limit" in error["message"] and "page_size" in error["message"]
    assert error["code"] == 3


async def test_a_body_on_a_list_route_is_400_listing_its_query_parameters(api):
    reply = await api.request(
        "GET",
        "/api/v1/collections",
        content=json.dumps({"limt": 1}),
        headers={"content-type": "application/json"},
    )
    error = _unknown(reply, "limt")
    assert "takes no JSON body" in error["message"] and "page_size" in error["message"]
    # ... and one the query string: still the transcoder's 400.
    reply = await api.get("/api/v1/collections", params={"limt": 1})
    assert reply.status_code == 400, reply.text


async def test_a_nested_typo_is_caught_with_its_path(api):
    doc = {"title": "t", "content": "x"}
    body = {"collection": "c", "documents": [doc, {**doc, "metdata": {"a": 1}}]}
    error = _unknown(await api.post("/api/v1/ingest", json=body), "documents[1].metdata")
    assert "title, content, metadata, id" in error["message"]


async def test_valid_bodies_pass_in_snake_case_and_camel_case_with_free_form_values(api):
    collection = f"c{uuid.uuid4().hex[:8]}"
    # Free-form Struct values (metadata, filters) may hold any names at any depth, and a
    # string may contain a key-like text or escaped quotes.
    doc = {
        "title": 'say "qeury": 1',
        "content": 'Envoy transcodes JSON. {"limt": 2}',
        "metadata": {"category": "tutorial", "nested": {"anything": [{"x": 1}]}},
    }
    reply = await api.post(
        "/api/v1/ingest",
        json={"collection": collection, "documents": [doc], "embeddingModel": "all-MiniLM-L6-v2"},
    )
    assert reply.status_code == 200, reply.text
    for body in (
        {"query": "envoy", "collection": collection, "page_size": 1, "filters": {"zz": "y"}},
        {"query": "envoy", "collection": collection, "pageSize": 1, "pageToken": ""},
    ):
        reply = await api.post("/api/v1/search", json=body)
        assert reply.status_code == 200, reply.text
    reply = await api.post("/api/v1/chat", json={"message": "What transcodes?", "maxTokens": 50,
                                                 "collection": collection})  # fmt: skip
    assert reply.status_code == 200, reply.text


async def test_openai_routes_keep_their_own_extra_fields(api):
    # The OpenAI shape carries fields of its own (n, user, seed...): not ours to refuse.
    collection = f"c{uuid.uuid4().hex[:8]}"
    doc = {"title": "t", "content": "Envoy transcodes JSON to gRPC."}
    reply = await api.post("/api/v1/ingest", json={"collection": collection, "documents": [doc]})
    assert reply.status_code == 200, reply.text
    reply = await api.post(
        "/v1/chat/completions",
        json={
            "model": f"extractive@{collection}",
            "messages": [{"role": "user", "content": "hi"}],
            "n": 1,
            "user": "u-1",
            "seed": 7,
        },
    )
    assert reply.status_code == 200, reply.text


async def test_the_websocket_names_an_unknown_field_the_same_way(stack):
    url = f"ws://127.0.0.1:{stack.cfg.api_port}/api/v1/chat/ws"
    async with (
        aiohttp.ClientSession(headers={"authorization": f"Bearer {DEV_KEY}"}) as session,
        session.ws_connect(url, protocols=("ragline.chat.v1",)) as ws,
    ):
        events = await ask(ws, {"message": "hi", "conversationID": "x"})
    error = events[-1]["error"]
    assert error["reason"] == "UNKNOWN_FIELD", error
    assert 'unknown field "conversationID"' in error["message"]
    assert "message, conversation_id, model" in error["message"]
    assert "conversationId" not in error["message"]
