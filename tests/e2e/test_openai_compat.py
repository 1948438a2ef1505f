"""The OpenAI-compatible routes as tools probe them, with the `openai` SDK against the live
gateway: model lookup, `created`, errors in OpenAI's shape, a model name the provider serves
beyond the catalogue (the paid provider is a wire-level fake), and the default collection."""

from __future__ import annotations

import uuid

import openai
import pytest

from tests.support.auth import DEV_KEY

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
