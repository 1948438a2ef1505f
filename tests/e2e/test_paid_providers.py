"""OpenAI and Voyage through their official SDKs, against wire-compatible local servers."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest

from tests.conftest import OPENAI_TEST_KEY, VOYAGE_TEST_KEY
from tests.support.assertions import error_body, reason_of
from tests.support.fake_providers import fake_vector

pytestmark = pytest.mark.e2e

PROVIDERS = [
    ("fake_openai", "text-embedding-3-small", 1536, OPENAI_TEST_KEY),
    ("fake_voyage", "voyage-3-large", 1024, VOYAGE_TEST_KEY),
]


@pytest.fixture
def provider(request):
    fixture, model, dims, key = request.param
    fake = request.getfixturevalue(fixture)
    fake.reset()
    yield fake, model, dims, key
    fake.reset()


def text() -> str:
    return f"paid provider text {uuid.uuid4().hex}"


@pytest.mark.parametrize("provider", PROVIDERS, indirect=True, ids=["openai", "voyage"])
async def test_success_returns_provider_vectors_and_usage(api, provider):
    fake, model, dims, key = provider
    texts = [text(), text()]
    response = await api.post("/api/v1/embeddings", json={"texts": texts, "model": model})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == model and body["dimensions"] == dims
    for t, item in zip(texts, body["embeddings"], strict=True):
        assert np.allclose(item["values"], fake_vector(model, t), atol=1e-6)
    assert body["usage"]["total_tokens"] > 0
    assert fake.script.auth_headers[-1] == f"Bearer {key}"


@pytest.mark.parametrize("provider", PROVIDERS, indirect=True, ids=["openai", "voyage"])
async def test_429_then_success_is_retried(api, provider):
    fake, model, _, _ = provider
    fake.reset(failures=[429])
    response = await api.post("/api/v1/embeddings", json={"text": text(), "model": model})
    assert response.status_code == 200, response.text
    assert fake.request_count == 2


@pytest.mark.parametrize("provider", PROVIDERS, indirect=True, ids=["openai", "voyage"])
async def test_5xx_until_attempts_run_out_is_503(api, provider):
    fake, model, _, _ = provider
    fake.reset(failures=[503, 500, 502, 500])
    response = await api.post("/api/v1/embeddings", json={"text": text(), "model": model})
    body = error_body(response, 503)
    assert reason_of(body) == "PROVIDER_UNAVAILABLE"
    assert fake.request_count == 3  # PROVIDER_MAX_ATTEMPTS, then give up


@pytest.mark.parametrize("provider", PROVIDERS, indirect=True, ids=["openai", "voyage"])
async def test_400_from_provider_is_not_retried(api, provider):
    fake, model, _, _ = provider
    fake.reset(failures=[400])
    body = error_body(
        await api.post("/api/v1/embeddings", json={"text": text(), "model": model}), 400
    )
    assert reason_of(body) == "PROVIDER_REJECTED_INPUT"
    assert fake.request_count == 1


@pytest.mark.parametrize("provider", PROVIDERS, indirect=True, ids=["openai", "voyage"])
async def test_provider_timeout_is_504(api, provider):
    fake, model, _, _ = provider
    fake.reset(delay_s=3.0)  # PROVIDER_TIMEOUT is 2 s in the test stack
    started = time.monotonic()
    body = error_body(
        await api.post("/api/v1/embeddings", json={"text": text(), "model": model}), 504
    )
    assert reason_of(body) in ("PROVIDER_TIMEOUT", "DEADLINE_EXCEEDED")
    assert time.monotonic() - started < 10
