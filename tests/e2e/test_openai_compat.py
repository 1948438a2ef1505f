"""The OpenAI-compatible routes as tools probe them, with the `openai` SDK against the live
gateway: model lookup, `created`, a model name the provider serves beyond the catalogue (the
paid provider is a wire-level fake), the default collection, POST /v1/embeddings (float and
base64, bad inputs), and errors in OpenAI's shape, including those the gateway itself makes
(no key, scope, rate limit, body cap, JSON depth, unknown path, wrong method)."""

from __future__ import annotations

import uuid

import httpx
import numpy as np
import openai
import pytest

from tests.support.assertions import error_body
from tests.support.auth import DEV_KEY
from tests.support.gateway import bearer, create_key, wait_until

pytestmark = pytest.mark.e2e


def _client(stack, key: str = DEV_KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{stack.cfg.base_url}/v1", api_key=key, max_retries=0)


async def _collection(api) -> str:
    name = f"c{uuid.uuid4().hex[:8]}"
    doc = {"title": "Envoy", "content": "Envoy transcodes JSON to gRPC for the services."}
    reply = await api.post("/api/v1/ingest", json={"collection": name, "documents": [doc]})
    assert reply.status_code == 200, reply.text
    return name


async def test_models_list_and_retrieve_with_created_set(stack):
    client = _client(stack)
    models = [m async for m in client.models.list()]
    assert "extractive" in {m.id for m in models}
    assert all(m.created > 1_700_000_000 for m in models)
    one = await client.models.retrieve("extractive")
    assert one.id == "extractive" and one.object == "model" and one.created > 0
    with pytest.raises(openai.NotFoundError) as err:
        await client.models.retrieve("no-such-model")
    assert err.value.code == "MODEL_NOT_FOUND"
    assert "no-such-model" in err.value.message


async def test_a_provider_model_outside_the_catalogue_is_passed_through(
    stack, api, fake_chat_openai
):
    fake_chat_openai.reset()
    collection = await _collection(api)
    reply = await _client(stack).chat.completions.create(
        model="gpt-3.5-turbo",
        messages=[{"role": "user", "content": "What does Envoy transcode?"}],
        extra_headers={"X-Ragline-Collection": collection},
    )
    assert reply.model == "gpt-3.5-turbo" and reply.created > 0
    assert fake_chat_openai.script.requests[-1]["model"] == "gpt-3.5-turbo"
    # Priced as unknown: no catalogue price.
    assert reply.model_extra is not None and reply.model_extra["estimated_cost_usd"] == 0
    # A name no configured provider serves stays a 400 naming the valid ones.
    with pytest.raises(openai.BadRequestError) as err:
        await _client(stack).chat.completions.create(
            model=f"mistral-large@{collection}", messages=[{"role": "user", "content": "hi"}]
        )
    assert err.value.code == "UNKNOWN_MODEL" and "extractive" in err.value.message


async def test_no_collection_names_the_default_and_how_to_choose(stack):
    with pytest.raises(openai.NotFoundError) as err:
        await _client(stack).chat.completions.create(
            model="extractive", messages=[{"role": "user", "content": "hi"}]
        )
    assert err.value.code == "COLLECTION_NOT_FOUND"
    assert "CHAT_DEFAULT_COLLECTION" in err.value.message
    assert "X-Ragline-Collection" in err.value.message


async def test_gateway_errors_reach_the_sdk_as_its_exception_classes(stack):
    with pytest.raises(openai.AuthenticationError):
        await _client(stack, "rl_live_not-a-key").models.list()


# -- POST /v1/embeddings ---------------------------------------------------------------------
MINILM = "all-MiniLM-L6-v2"


async def test_embeddings_with_the_sdk_as_float_and_base64_match_the_rest_api(api, stack):
    client = _client(stack)
    texts = [f"openai embeddings {uuid.uuid4().hex}", "a second text"]
    as_float = await client.embeddings.create(input=texts, model=MINILM, encoding_format="float")
    assert as_float.object == "list" and as_float.model == MINILM
    assert [d.index for d in as_float.data] == [0, 1]
    assert all(d.object == "embedding" and len(d.embedding) == 384 for d in as_float.data)
    assert as_float.usage.prompt_tokens > 0 and as_float.usage.total_tokens >= 0
    # The SDK asks for base64 unless told otherwise, and decodes it itself.
    as_base64 = await client.embeddings.create(input=texts, model=MINILM)
    raw = await client.embeddings.with_raw_response.create(
        input=texts[0], model=MINILM, encoding_format="base64"
    )
    assert isinstance(raw.http_response.json()["data"][0]["embedding"], str)
    reference = (await api.post("/api/v1/embeddings", json={"texts": texts})).json()
    for i, item in enumerate(reference["embeddings"]):
        assert np.allclose(as_float.data[i].embedding, item["values"], atol=1e-6)
        assert np.allclose(as_base64.data[i].embedding, item["values"], atol=1e-6)
    # One string, the default model, and `dimensions` equal to the model's size.
    one = await client.embeddings.create(input=texts[1], model="", dimensions=384, user="u-1")
    assert len(one.data) == 1 and one.model == MINILM
    assert np.allclose(one.data[0].embedding, reference["embeddings"][1]["values"], atol=1e-6)


async def test_embeddings_usage_is_counted_like_the_rest_route(api, anon_api, stack):
    key, _ = await create_key(api, f"t-{uuid.uuid4().hex[:8]}", ["embeddings", "analytics"])
    client = _client(stack, key)
    text = f"usage {uuid.uuid4().hex}"
    for _ in range(2):
        await client.embeddings.create(input=[text], model=MINILM, encoding_format="float")
    with pytest.raises(openai.BadRequestError):
        await client.embeddings.create(input=[""], model=MINILM)

    async def counted() -> bool:
        reply = await anon_api.get("/api/v1/analytics/usage", headers=bearer(key))
        by = {e["endpoint"]: e["stats"] for e in reply.json()["endpoints"]}
        stats = by.get("POST /v1/embeddings", {})
        return int(stats.get("requests", 0)) == 3 and int(stats.get("cache_hits", 0)) == 1

    await wait_until(counted, timeout=15, interval=0.3)
    reply = await anon_api.get("/api/v1/analytics/usage", headers=bearer(key))
    stats = {e["endpoint"]: e["stats"] for e in reply.json()["endpoints"]}["POST /v1/embeddings"]
    assert int(stats["errors"]) == 1 and int(stats["tokens_in"]) > 0
    assert int(stats["cache_lookups"]) == 2


@pytest.mark.parametrize(
    ("kwargs", "code", "param", "words"),
    [
        ({"input": ""}, "EMPTY_TEXT", "input", "input must not be empty"),
        ({"input": ["ok", "  "]}, "EMPTY_TEXT", "input[1]", "input[1] must not be empty"),
        ({"input": []}, "EMPTY_INPUT", "input", "empty list"),
        ({"input": ["x"] * 101}, "BATCH_TOO_LARGE", "input", "at most 100"),
        ({"input": [1, 2, 3]}, "TOKEN_INPUT_UNSUPPORTED", "input", "token arrays"),
        ({"input": [[1, 2], [3]]}, "TOKEN_INPUT_UNSUPPORTED", "input", "send the text"),
        ({"input": "x", "model": "no-such-embedder"}, "UNKNOWN_MODEL", "model", MINILM),
        ({"input": "x", "dimensions": 12}, "UNSUPPORTED_DIMENSIONS", "dimensions", "384"),
        (
            {"input": "x", "encoding_format": "int8"},
            "INVALID_ENCODING_FORMAT",
            "encoding_format",
            "base64",
        ),
        (
            {"input": "x", "extra_body": {"inptu": "y"}},
            "UNKNOWN_FIELD",
            "inptu",
            'unknown field "inptu"; valid fields here: input, model',
        ),
    ],
)
async def test_bad_embedding_requests_are_400_in_openai_shape(stack, kwargs, code, param, words):
    kwargs = {"model": MINILM, **kwargs}
    with pytest.raises(openai.BadRequestError) as err:
        await _client(stack).embeddings.create(**kwargs)
    assert err.value.code == code, err.value.body
    assert err.value.param == param
    assert err.value.type == "invalid_request_error"
    assert words in err.value.body["message"], err.value.body
    if code == "UNKNOWN_MODEL":
        assert "no-such-embedder" in err.value.body["message"]


async def test_embedding_bodies_that_are_not_requests(stack):
    async with _http(stack) as http:
        for content in (b"{not json", b'"a string"', b'{"input": {"a": 1}}', b'{"input": 5}'):
            reply = await http.post("/v1/embeddings", content=content)
            error = _openai_error(reply, 400)
            assert error["code"] in ("INVALID_JSON", "INVALID_INPUT"), error


async def test_a_chat_completion_typo_is_400_and_other_openai_parameters_pass(stack, api):
    collection = await _collection(api)
    client = _client(stack)
    with pytest.raises(openai.BadRequestError) as err:
        await client.chat.completions.create(
            model=f"extractive@{collection}",
            messages=[{"role": "user", "content": "What does Envoy transcode?"}],
            extra_body={"temprature": 0.2},
        )
    assert err.value.code == "UNKNOWN_FIELD" and err.value.param == "temprature"
    assert "temperature" in err.value.body["message"]
    reply = await client.chat.completions.create(
        model=f"extractive@{collection}",
        messages=[{"role": "user", "content": "What does Envoy transcode?"}],
        top_p=0.9,
        n=1,
        seed=7,
        user="u-1",
    )
    assert reply.choices[0].message.content


async def test_models_list_the_embedding_models_too(stack):
    client = _client(stack)
    models = {m.id: m for m in [m async for m in client.models.list()]}
    assert {MINILM, "text-embedding-3-small", "voyage-3-large"} <= set(models)
    assert models[MINILM].owned_by == "local"
    one = await client.models.retrieve("text-embedding-3-small")
    assert one.owned_by == "openai" and one.created > 0


# -- Errors the gateway itself makes, in OpenAI's shape ------------------------------------
def _openai_error(reply: httpx.Response, status: int) -> dict:
    """OpenAI's error object of a reply (next to the Status fields every error has)."""
    body = error_body(reply, status)
    error = body["error"]
    assert set(error) == {"message", "type", "code", "param"}, error
    assert isinstance(error["message"], str) and error["message"], error
    assert error["message"] == body["message"]
    return error


def _http(stack, key: str | None = DEV_KEY) -> httpx.AsyncClient:
    headers = bearer(key) if key else {}
    return httpx.AsyncClient(base_url=stack.cfg.base_url, timeout=60, headers=headers)


async def test_no_key_and_a_bad_key_are_401_in_openai_shape(stack):
    async with _http(stack, key=None) as http:
        for path in ("/v1/embeddings", "/v1/chat/completions", "/v1/nope"):
            error = _openai_error(await http.post(path, json={"input": "x"}), 401)
            assert error["type"] == "authentication_error" and error["code"], error
    with pytest.raises(openai.AuthenticationError) as err:
        await _client(stack, "rl_live_not-a-key").embeddings.create(input="x", model=MINILM)
    assert err.value.type == "authentication_error" and err.value.code
    # A JWT that is no JWT: refused by the gateway's JWT filter itself.
    with pytest.raises(openai.AuthenticationError) as err:
        await _client(stack, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln").models.list()
    assert err.value.code


async def test_a_missing_scope_is_403_in_openai_shape(api, anon_api, stack):
    key, _ = await create_key(api, f"t-{uuid.uuid4().hex[:8]}", ["chat"])
    with pytest.raises(openai.PermissionDeniedError) as err:
        await _client(stack, key).embeddings.create(input="x", model=MINILM)
    assert err.value.type == "permission_error" and err.value.code, err.value.body
    assert "embeddings" in err.value.body["message"]
    # The same key's JWT: refused by the gateway's RBAC (no auth service call).
    token = (await anon_api.post("/api/v1/tokens", json={}, headers=bearer(key))).json()
    with pytest.raises(openai.PermissionDeniedError) as err:
        await _client(stack, token["access_token"]).embeddings.create(input="x", model=MINILM)
    assert err.value.code == "SCOPE_DENIED" and err.value.type == "permission_error"


async def test_the_rate_limit_is_429_with_retry_after_in_openai_shape(api, stack):
    # Free tier: 20 chat-group calls a minute per key (GET /v1/models is in the chat group).
    key, _ = await create_key(api, f"t-{uuid.uuid4().hex[:8]}", ["chat"], tier="free")
    client = _client(stack, key)
    caught = None
    for _ in range(45):  # a minute boundary may reset the window once
        try:
            await client.models.list()
        except openai.RateLimitError as exc:
            caught = exc
            break
    assert caught is not None, "no 429 after 45 calls"
    assert caught.code == "RATE_LIMITED" and caught.type == "rate_limit_error"
    assert int(caught.response.headers["retry-after"]) >= 0


async def test_bodies_over_the_caps_are_413_in_openai_shape(stack):
    too_big = "x" * (stack.cfg.max_request_bytes + 1024)
    with pytest.raises(openai.APIStatusError) as err:
        await _client(stack).embeddings.create(input=too_big, model=MINILM)
    assert err.value.status_code == 413 and err.value.code == "REQUEST_TOO_LARGE"
    # The chat routes' smaller cap (64 KiB).
    with pytest.raises(openai.APIStatusError) as err:
        await _client(stack).chat.completions.create(
            model="extractive", messages=[{"role": "user", "content": "x" * 70_000}]
        )
    assert err.value.status_code == 413 and err.value.code == "REQUEST_TOO_LARGE"


async def test_json_nested_too_deep_is_400_in_openai_shape(stack):
    deep: dict = {"leaf": 1}
    for _ in range(40):
        deep = {"a": deep}
    async with _http(stack) as http:
        error = _openai_error(await http.post("/v1/embeddings", json={"input": deep}), 400)
    assert error["code"] == "JSON_TOO_DEEP" and error["type"] == "invalid_request_error"
    assert error["param"] is None


async def test_unknown_v1_paths_are_404_and_wrong_methods_405_in_openai_shape(stack):
    with pytest.raises(openai.NotFoundError) as err:
        await _client(stack).get("/no-such-endpoint", cast_to=object)
    assert err.value.code == "NOT_FOUND" and "/v1/no-such-endpoint" in err.value.body["message"]
    async with _http(stack) as http:
        error = _openai_error(await http.get("/v1/embeddings"), 405)
        assert error["code"] == "METHOD_NOT_ALLOWED"
        reply = await http.delete("/v1/models")
        assert _openai_error(reply, 405)["code"] == "METHOD_NOT_ALLOWED"
        assert "GET" in reply.headers["allow"]
