"""Per-tenant daily spend caps on paid models: once reached, paid calls are refused with
429 (chat falls back to a free model when one is configured); other tenants and free
models are unaffected."""

from __future__ import annotations

import uuid

import pytest

from tests.support.assertions import error_body, reason_of
from tests.support.gateway import bearer, create_key

pytestmark = pytest.mark.e2e


async def test_paid_embeddings_stop_at_the_tenant_cap(api, fake_openai):
    fake_openai.reset()
    key, _ = await create_key(api, "capped-tenant", ["embeddings"])
    headers = bearer(key)
    paid = {"model": "text-embedding-3-small"}
    first = await api.post(
        "/api/v1/embeddings", headers=headers, json={"text": f"spend {uuid.uuid4().hex}", **paid}
    )
    assert first.status_code == 200, first.text  # the first call crosses the tiny cap
    second = await api.post(
        "/api/v1/embeddings", headers=headers, json={"text": f"spend {uuid.uuid4().hex}", **paid}
    )
    body = error_body(second, 429)
    assert reason_of(body) == "SPEND_CAP_EXCEEDED" and "resets" in body["message"]
    calls = fake_openai.request_count
    # The local model is free: still served for the capped tenant.
    free = await api.post("/api/v1/embeddings", headers=headers, json={"text": "free"})
    assert free.status_code == 200
    # Another tenant is not affected; the refused call never reached the provider.
    other = await api.post("/api/v1/embeddings", json={"text": f"spend {uuid.uuid4().hex}", **paid})
    assert other.status_code == 200, other.text
    assert fake_openai.request_count == calls + 1
